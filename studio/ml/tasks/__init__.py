"""What the engine can learn, said once: tasks, the annotation kinds each learns from,
the ignore index of label maps, resize policies and freeze modes.

A leaf module: config, datasets, models, losses, metrics, the CLI and the GUI read these
names from here rather than spelling them again.
"""

from __future__ import annotations

from studio.core.rasterize import REGION_KINDS

TASKS = ("classification", "semantic", "detection", "instance")
# label-map value of "not labelled": never a class, skipped by losses and metrics
IGNORE_INDEX = 255
RESIZE_POLICIES = ("resize", "crop", "letterbox")
FREEZE_MODES = ("none", "backbone", "all_but_head", "first_n_stages")
# ImageNet statistics, for models pretrained on it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# detection learns boxes from any object; instance segmentation needs a region (a mask)
TASK_KINDS = {"classification": ("tag",), "semantic": tuple(REGION_KINDS),
              "detection": ("box", *REGION_KINDS), "instance": tuple(REGION_KINDS)}
DETECTION_TASKS = ("detection", "instance")


def task_kinds(task: str) -> tuple[str, ...]:
    """The annotation kinds a task learns from (tags, or regions)."""
    return TASK_KINDS[task]


def task_class_ids(project, task: str) -> list[int]:
    """Ids of the project's classes (in class order) that have annotations for `task`."""
    used = project.class_ids_in_use(task_kinds(task))
    return [c.id for c in project.classes() if c.id in used]
