"""`TaskInfo`: what one task is, as data (no behaviour, no imports above core).

Each task's module (`studio.ml.tasks.classification`, ...) holds its `TaskInfo`; the
behaviour of a task (its data, criterion, meter, evaluation forward, predictor) is the
task object in `studio.ml.tasks.registry`, which reads this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskInfo:
    """The identity of a task and the facts that differ between tasks.

    Code outside the task registry asks these questions instead of comparing task names.
    """

    name: str
    # annotation kinds the task learns from
    kinds: tuple[str, ...]
    # metric names the task reports; the first is what selects the best checkpoint
    metrics: tuple[str, ...]
    # one class per image (a tag), predicted as class probabilities
    image_label: bool = False
    # one class per pixel (a label map), validated and predicted on whole images
    label_map: bool = False
    # objects with boxes (the model computes its own losses; mAP measures it)
    is_detection: bool = False
    # objects carry masks (instance segmentation)
    has_masks: bool = False
    # the config section only this task has (None: the shared sections only)
    section: str | None = None
    # what "no labels" means for this task, for messages
    missing_labels: str = ""
    # what is labelled one by one: "images" (a tag or a label map) or "objects"
    unit: str = "images"
    # the labels of an image for messages ("class tags", "polygon or mask regions")
    label_noun: str = ""

    @property
    def selection_metric(self) -> str:
        """The metric that chooses the best checkpoint by default."""
        return self.metrics[0]

    @property
    def batch_mixing(self) -> bool:
        """Mixup / cutmix apply (a batch of images with image or pixel labels)."""
        return not self.is_detection

    def __str__(self) -> str:
        return self.name
