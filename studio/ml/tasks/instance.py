"""Instance segmentation: objects with masks (from polygon and mask objects).

It shares detection's code (`studio.ml.detection`, with masks on) and Mask R-CNN models;
its task object is `studio.ml.tasks.registry.InstanceTask`.
"""

from __future__ import annotations

from studio.core.rasterize import REGION_KINDS
from studio.ml.tasks.info import TaskInfo

INSTANCE = TaskInfo(
    "instance", kinds=tuple(REGION_KINDS),
    metrics=("mask_map50", "mask_map", "mask_map75", "mask_ar100", "box_map50", "box_map",
             "box_map75", "box_ar100"),
    is_detection=True, has_masks=True, section="detection",
    missing_labels="no image has a polygon or mask object (boxes alone have no mask)",
    unit="objects", label_noun="polygon or mask objects")
