"""Instance segmentation: objects with masks (from polygon and mask objects).

It shares detection's code (`studio.ml.tasks.detection`, with masks on). It offers two
methods (`INSTANCE_METHODS`): boxes first, then a mask per box (Mask R-CNN), and
per-pixel maps split into objects (the instance U-Net, `studio.ml.models.unet_instances`,
split by `.split` beside this file). Its task object,
`studio.ml.tasks.registry.InstanceTask`, says which method a model is, and splits the
maps of the second.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.rasterize import REGION_KINDS
from studio.ml.tasks.info import TaskInfo

INSTANCE = TaskInfo(
    "instance", kinds=tuple(REGION_KINDS),
    metrics=("mask_map50", "mask_map", "mask_map75", "mask_ar100", "box_map50", "box_map",
             "box_map75", "box_ar100"),
    is_detection=True, has_masks=True, section="detection",
    missing_labels="no image has a polygon or mask object (boxes alone have no mask)",
    unit="objects", label_noun="polygon or mask objects")


@dataclass(frozen=True)
class InstanceMethod:
    """One way of finding instances: its models (registry names), what it is for, and
    whether its predictions are per-pixel maps split into objects (with the split's own
    parameters, `split_parameters`, that Inspect offers as sliders)."""

    key: str
    title: str
    models: tuple[str, ...]
    description: str
    splits_maps: bool = False
    split_parameters: tuple[str, ...] = ()


BOXES_FIRST = InstanceMethod(
    "boxes_first", "Boxes, then masks (Mask R-CNN)",
    ("maskrcnn_resnet18_fpn", "maskrcnn_resnet50_fpn_v2"),
    "proposes boxes, then a mask inside each: for objects of any size, few per image")
MAPS_SPLIT = InstanceMethod(
    "maps_split", "Per-pixel maps, split into objects (instance U-Net)", ("unet_instances",),
    "U-Net + seeded watershed (foreground, touching borders, distance): for many small "
    "touching objects such as nuclei; fast on a CPU",
    splits_maps=True, split_parameters=("seed_threshold", "mask_threshold"))
INSTANCE_METHODS = (BOXES_FIRST, MAPS_SPLIT)
