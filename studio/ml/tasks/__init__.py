"""What the engine can learn, said once: the four tasks (`TASK`, `task_of`), the
annotation kinds each learns from, the ignore index of label maps, resize policies and
freeze modes.

A leaf package: config, datasets, models, losses, metrics, the CLI and the GUI read these
facts from here rather than spelling task names again. One subpackage per task, side by
side (classification, semantic, detection, instance): its `__init__` holds the task's
`TaskInfo` (no torch), its modules the task's own code (meters, detection's data,
matching, prediction and export, the instance split). Their behaviour behind one
interface (data, criterion, meter, evaluation forward, predictor) is
`studio.ml.tasks.registry`.
"""

from __future__ import annotations

from studio.core.errors import ConfigError
from studio.ml.tasks.classification import CLASSIFICATION
from studio.ml.tasks.detection import DETECTION
from studio.ml.tasks.info import TaskInfo
from studio.ml.tasks.instance import INSTANCE
from studio.ml.tasks.semantic import SEMANTIC

TASK: dict[str, TaskInfo] = {t.name: t for t in (CLASSIFICATION, SEMANTIC, DETECTION,
                                                  INSTANCE)}
TASKS = tuple(TASK)
# label-map value of "not labelled": never a class, skipped by losses and metrics
IGNORE_INDEX = 255
RESIZE_POLICIES = ("resize", "crop", "letterbox")
FREEZE_MODES = ("none", "backbone", "all_but_head", "first_n_stages")
# ImageNet statistics, for models pretrained on it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# detection learns boxes from any object; instance segmentation needs a region (a mask)
TASK_KINDS = {t.name: t.kinds for t in TASK.values()}
# the tasks of the detection family (its config section, its models and code)
DETECTION_TASKS = tuple(t.name for t in TASK.values() if t.is_detection)
# the tasks of plain models (logits in, a configured loss)
PLAIN_TASKS = tuple(t.name for t in TASK.values() if not t.is_detection)

__all__ = ["CLASSIFICATION", "DETECTION", "DETECTION_TASKS", "FREEZE_MODES", "IGNORE_INDEX",
           "IMAGENET_MEAN", "IMAGENET_STD", "INSTANCE", "PLAIN_TASKS", "RESIZE_POLICIES",
           "SEMANTIC", "TASK", "TASKS", "TASK_KINDS", "TaskInfo", "task_class_ids",
           "task_kinds", "task_of"]


def task_of(task: str | TaskInfo) -> TaskInfo:
    """The `TaskInfo` of a task name (a TaskInfo is returned as is); ConfigError (path
    "task") for a name that is not one of TASKS."""
    if isinstance(task, TaskInfo):
        return task
    info = TASK.get(task) if isinstance(task, str) else None
    if info is None:
        raise ConfigError(f"Unknown task {task!r}; use one of: {', '.join(TASKS)}.",
                          path="task")
    return info


def task_kinds(task: str) -> tuple[str, ...]:
    """The annotation kinds a task learns from (tags, or regions)."""
    return task_of(task).kinds


def task_class_ids(project, task: str) -> list[int]:
    """Ids of the project's classes (in class order) that have annotations for `task`."""
    used = project.class_ids_in_use(task_kinds(task))
    return [c.id for c in project.classes() if c.id in used]
