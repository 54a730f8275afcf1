"""Object detection: boxes (from box, polygon and mask objects).

Its code is the `studio.ml.detection` subpackage (data, metrics, predict, export) and the
detectors of `studio.ml.models.detection`; its task object is
`studio.ml.tasks.registry.DetectionTask`.
"""

from __future__ import annotations

from studio.core.rasterize import REGION_KINDS
from studio.ml.tasks.info import TaskInfo

DETECTION = TaskInfo(
    "detection", kinds=("box", *REGION_KINDS),
    metrics=("box_map50", "box_map", "box_map75", "box_ar100"),
    is_detection=True, section="detection",
    missing_labels="no image has a box, polygon or mask object", unit="objects",
    label_noun="box, polygon or mask objects")
