"""The four task objects: what each task does differently, asked by name (`TASK[name]`).

A task object owns the behaviour that differs between tasks (its data and targets, its
criterion, its metric meter, the forward validation calls, and what a loaded model
predicts for one image) and answers the questions of its `TaskInfo`
(`TASK["instance"].has_masks`). It delegates to the code that implements it:
`studio.ml.datasets` and `studio.ml.tasks.detection.data` for data, `studio.ml.builders` for
the criterion, `studio.ml.metrics` and `studio.ml.tasks.detection.metrics` for meters,
`studio.ml.inference` and `studio.ml.tasks.detection.predict` for forwards, the methods of
`studio.ml.predict.Predictor` (passed in: that module imports this one) for prediction.

`fit`, its training session, evaluation and `Predictor.predict_array` ask these objects;
no module but this package compares task names. The modules this one builds on (named
above) ask the `TaskInfo` of `studio.ml.tasks.task_of` instead, as do `studio.ml.export`
and the config package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from torch import nn

from studio.core.errors import ConfigError
from studio.ml.augment_batch import BatchAugment
from studio.ml.builders import Criterion, DetectionCriterion, build_loss
from studio.ml.config import RunConfig
from studio.ml.datasets import ProjectDataset, RunData, build_run_data, read_split
from studio.ml.inference import eval_transform, window_forward
from studio.ml.metrics import ClassificationMeter, SegmentationMeter
from studio.ml.models import unet_instances
from studio.ml.tasks import IGNORE_INDEX, TaskInfo, task_of
from studio.ml.tasks.classification import CLASSIFICATION
from studio.ml.tasks.detection import DETECTION
from studio.ml.tasks.detection.data import build_detection_data, eval_dataset, read_detection_split
from studio.ml.tasks.detection.metrics import DetectionMeter
from studio.ml.tasks.detection.predict import evaluation_forward
from studio.ml.tasks.instance import INSTANCE, INSTANCE_METHODS, InstanceMethod, tune
from studio.ml.tasks.instance.split import split_instances
from studio.ml.tasks.semantic import SEMANTIC


class Task:
    """A task's behaviour; its facts (`name`, `kinds`, `metrics`, `is_detection`, ...) are
    its `info`'s, readable on the object itself."""

    def __init__(self, info: TaskInfo) -> None:
        self.info = info

    def __getattr__(self, name: str) -> Any:
        if name == "info":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.info, name)

    def __repr__(self) -> str:
        return f"<task {self.info.name}>"

    # --- data ---------------------------------------------------------------------------
    def read_split(self, project, split: str, class_ids: Sequence[int]):
        """The labelled images (or objects) of one split, for `class_ids`."""
        return read_split(project, self.info.name, split, class_ids)

    def eval_dataset(self, source, cfg: RunConfig, normalize: dict, channels: int):
        """Whole images of `source` without augmentation, as validation sees them."""
        return ProjectDataset(source, eval_transform(cfg, normalize["mean"], normalize["std"]),
                              channels)

    def run_data(self, project, cfg: RunConfig, log=None, **known) -> RunData:
        """The train / val datasets of a run (`known`: class_ids, normalize, channels of a
        resumed checkpoint, or None)."""
        return build_run_data(project, cfg, **known)

    # --- training -----------------------------------------------------------------------
    def criterion(self, cfg: RunConfig, num_classes: int) -> Criterion:
        """What `train_one_epoch` minimises: the configured loss on the model's logits."""
        return Criterion(build_loss(cfg, num_classes))

    def meter(self, num_classes: int, class_names: list[str] | None = None):
        """The metric accumulator (update(outputs, targets), compute(), reset())."""
        raise NotImplementedError

    def eval_forward(self, model: nn.Module, cfg: RunConfig, normalize: dict,
                     full_image: bool):
        """What validation calls instead of `model(images)`, or None for the model."""
        if full_image:
            return window_forward(model, cfg, normalize["mean"], normalize["std"])
        return None

    def batch_augment(self, cfg: RunConfig, num_classes: int) -> BatchAugment | None:
        """Mixup / cutmix of the task's batches, or None when none is enabled."""
        batch_augment = BatchAugment(cfg.augment, self.info.name, num_classes)
        return batch_augment if batch_augment.enabled else None

    # --- prediction ---------------------------------------------------------------------
    def predict(self, predictor, image, name: str = "", image_id: int | None = None):
        """What a loaded run's model (a `studio.ml.predict.Predictor`) predicts for one
        decoded image: a PredictionResult, or Detections."""
        raise NotImplementedError

    # --- methods ------------------------------------------------------------------------
    methods: tuple[InstanceMethod, ...] = ()  # the task's methods, where it has several

    def method(self, model_name: str) -> InstanceMethod | None:
        """The method a registered model implements (None: the task has one way only)."""
        return next((m for m in self.methods if model_name in m.models), None)

    def splits_maps(self, model: nn.Module | None) -> bool:
        """Whether a built model's predictions are per-pixel maps split into objects."""
        return False

    def split_parameters(self, model: nn.Module | None) -> dict[str, float]:
        """The split's own parameters of a map-splitting model and their values (its
        method's `split_parameters`, which Inspect offers as sliders, and "min_area");
        empty for the others."""
        return {}

    def keeping_maps(self, model: nn.Module | None):
        """A context in which the maps of every image the model splits are kept (the
        yielded list; None for models without maps)."""
        return contextlib.nullcontext()

    def split_tuning(self, model: nn.Module | None, flips: Sequence[tuple[int, ...]] = ((),)):
        """A context in which validation keeps what choosing the split's thresholds needs
        (the yielded `tune.KeptMaps`, for `tune_split`; None for models without a split),
        its maps averaged over the run's test-time `flips`, as evaluation will see them."""
        return contextlib.nullcontext()

    def tune_split(self, model: nn.Module, meter, kept, metric: str):
        """The split's best thresholds on what `meter` just measured (see
        `studio.ml.tasks.instance.tune`); None when there is nothing to choose."""
        return None


class ClassificationTask(Task):
    def meter(self, num_classes: int, class_names: list[str] | None = None):
        return ClassificationMeter(num_classes)

    def predict(self, predictor, image, name="", image_id=None):
        return predictor.classify_image(image, name, image_id)


class SemanticTask(Task):
    def meter(self, num_classes: int, class_names: list[str] | None = None):
        return SegmentationMeter(num_classes, ignore_index=IGNORE_INDEX)

    def predict(self, predictor, image, name="", image_id=None):
        return predictor.segment(image, name, image_id)


class DetectionTask(Task):
    """Detection, and with masks instance segmentation: the model computes its own
    losses; mAP measures validation."""

    def read_split(self, project, split: str, class_ids: Sequence[int]):
        return read_detection_split(project, self.info.name, split, class_ids)

    def eval_dataset(self, source, cfg: RunConfig, normalize: dict, channels: int):
        return eval_dataset(source, cfg, normalize, channels)

    def run_data(self, project, cfg: RunConfig, log=None, **known) -> RunData:
        return build_detection_data(project, cfg, log=log, **known)

    def criterion(self, cfg: RunConfig, num_classes: int) -> Criterion:
        return DetectionCriterion()

    def meter(self, num_classes: int, class_names: list[str] | None = None):
        return DetectionMeter(num_classes, class_names, masks=self.info.has_masks)

    def eval_forward(self, model, cfg, normalize, full_image):
        return evaluation_forward(model, cfg)

    def batch_augment(self, cfg: RunConfig, num_classes: int) -> None:
        return None  # batches are lists of targets: no mixup / cutmix

    def predict(self, predictor, image, name="", image_id=None):
        return predictor.detect(image, name, image_id)

    def flip_averaging(self, model: nn.Module, flips: Sequence[tuple[int, ...]]):
        """A context within which `model` predicts the mean over `flips` (test-time
        augmentation, config "tta"); ConfigError for more than the image as it is where
        the model cannot (the configs of such models refuse "tta")."""
        if any(flips):
            raise ConfigError(f"Test-time flips ('tta') are not available for this "
                              f"{self.info.name} model; of the detection-task models only "
                              "the instance U-Net averages over flips.")
        return contextlib.nullcontext()


@contextlib.contextmanager
def _tuning(model, flips):
    # thresholds chosen on maps without the flips evaluation averages over lost 0.05 of
    # validation mask mAP50 on DSB 2018 once the flips were on (0.83 -> 0.78)
    with unet_instances.flip_averaging(model, flips), \
            unet_instances.keeping_maps(model, tune.KeptMaps()) as kept:
        yield kept


class InstanceTask(DetectionTask):
    """Instance segmentation: detection with masks, by either of its methods
    (`studio.ml.tasks.instance.INSTANCE_METHODS`). For the per-pixel method it owns how
    predictions are split: the split's parameters a model was built with, keeping the
    maps a prediction splits, and splitting kept maps again with other parameters."""

    methods = INSTANCE_METHODS

    def splits_maps(self, model: nn.Module | None) -> bool:
        return isinstance(model, unet_instances.UNetInstances)

    def split_parameters(self, model):
        if not self.splits_maps(model):
            return {}
        heads = model.roi_heads
        return {"seed_threshold": float(heads.seed_threshold),
                "mask_threshold": float(heads.mask_threshold), "min_area": heads.min_area}

    def keeping_maps(self, model):
        if not self.splits_maps(model):
            return contextlib.nullcontext()
        return unet_instances.keeping_maps(model)

    def flip_averaging(self, model, flips):
        if self.splits_maps(model):
            return unet_instances.flip_averaging(model, flips)
        return super().flip_averaging(model, flips)

    def split_tuning(self, model, flips=((),)):
        if not self.splits_maps(model):
            return contextlib.nullcontext()
        return _tuning(model, flips)

    def tune_split(self, model, meter, kept, metric: str):
        if kept is None or not self.splits_maps(model):
            return None
        return tune.tune_split(model, meter, kept, metric)

    def split_maps(self, maps: dict, seed_threshold: float, mask_threshold: float,
                   min_area: int):
        """The (H, W) label map 1..N of kept maps ({"foreground", "boundary", "distance"},
        0..1) split with these parameters, without running the network."""
        return split_instances(maps["foreground"], maps["boundary"], maps["distance"],
                               seed_threshold, mask_threshold, min_area)


TASK: dict[str, Task] = {
    CLASSIFICATION.name: ClassificationTask(CLASSIFICATION),
    SEMANTIC.name: SemanticTask(SEMANTIC),
    DETECTION.name: DetectionTask(DETECTION),
    INSTANCE.name: InstanceTask(INSTANCE),
}


def task(name: str | TaskInfo) -> Task:
    """The task object of a task name (ConfigError for an unknown one)."""
    return TASK[task_of(name).name]
