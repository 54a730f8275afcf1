"""The typed run configuration: one dataclass per section, each field with its JSON path,
type, default, bounds, unit and help text (`FieldSpec`, in the field's metadata).

The JSON a run stores, the CLI prints and the form edits keeps its long-standing shape
(mostly flat: "epochs", "image_size", "optimizer.lr", "scheduler.min_lr_factor",
"model_options", "augment"); the typed object groups the same values by meaning
(`cfg.training.epochs`, `cfg.data.image_size`, `cfg.optimizer.lr`,
`cfg.schedule.min_lr_factor`, `cfg.model.options`). Each field's spec names its JSON path,
so `RunConfig.to_dict()` writes exactly that shape back.

The defaults written here are the ones every task shares; what one task (or its cpu/gpu
variant) sets differently is in `studio.ml.config.defaults`. Dataclasses rather than
pydantic: the schema is a few dozen flat fields whose checks (per-task choices,
model-dependent options, augmentation ops) are ours anyway, and the engine keeps its
dependencies to torch and NumPy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from studio.core.splits import SPLITS
from studio.ml.config.fields import FieldSpec
from studio.ml.tasks import (
    DETECTION_TASKS,
    FREEZE_MODES,
    PLAIN_TASKS,
    RESIZE_POLICIES,
    TASK,
    TASKS,
    task_of,
)

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau", "onecycle")
LOSS_NAMES = ("cross_entropy", "bce", "dice", "jaccard", "focal", "ce_dice", "mse", "mae")
DETECTION_LOSSES = ("model",)
DETECTION_POLICIES = ("resize", "crop")
# metric names by task (the first chooses the best checkpoint): the tasks' own
METRICS = {name: info.metrics for name, info in TASK.items()}
SEED_MAX = 2**32 - 1  # NumPy's seeds are 32-bit; torch takes these too


def fld(path: str, kind: str, default: Any, help: str, *, tasks: tuple = TASKS,
        task_choices: dict[str, tuple] | None = None, **kw: Any):
    """A dataclass field carrying its FieldSpec; `tasks` lists the tasks it exists for,
    `task_choices` an enum's choices where they differ by task."""
    spec = FieldSpec(path, kind, default, help, **kw)
    meta = {"spec": spec, "tasks": tasks, "task_choices": task_choices or {}}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: _copy(default), metadata=meta)
    return field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


@dataclass
class ModelConfig:
    name: str = fld("model", "str", "simple_cnn",
                    "The network to train (studio-cli info lists each task's models).",
                    label="Model")
    # the given options (complete or not): what is left out takes the model's own defaults
    options: dict = fld("model_options", "json", {},
                        "The model's own options (depth, width, anchor sizes...); each is "
                        "a field of its own, listed for the chosen model.",
                        label="Model options")
    pretrained: str | None = fld(
        "pretrained", "str", None,
        "Start from published weights: 'imagenet' (an ImageNet encoder), 'coco' (a whole "
        "detector, from the local torch cache) or the path of a checkpoint; null trains from "
        "scratch.", optional=True, label="Pretrained weights")
    dropout: float | None = fld(
        "dropout", "float", None,
        "Dropout before the classifier, for models that have one; null keeps the model's "
        "own default.", optional=True, minimum=0.0, maximum=0.99, label="Dropout")
    freeze_mode: str = fld(
        "freeze.mode", "enum", "none",
        "Which pretrained layers stay fixed: none, the backbone, all but the head, or the "
        "first N stages.", choices=FREEZE_MODES, label="Freeze")
    freeze_stages: int = fld("freeze.n_stages", "int", 0,
                             "With freeze mode first_n_stages: how many stages stay fixed.",
                             minimum=0, maximum=16, label="Frozen stages")
    unfreeze_epoch: int = fld(
        "finetune.unfreeze_epoch", "int", 0,
        "At this epoch (1-based) everything is unfrozen and the optimizer rebuilt; 0 never "
        "unfreezes.", minimum=0, maximum=100_000, unit="epoch", label="Unfreeze at epoch")
    backbone_lr_factor: float = fld(
        "finetune.backbone_lr_factor", "float", 1.0,
        "After unfreezing, the backbone learns at the learning rate times this factor.",
        minimum=0.0, maximum=10.0, unit="x", label="Backbone LR factor")


@dataclass
class DataConfig:
    image_size: int = fld("image_size", "int", 64,
                          "Side of the square images (or crops) the model trains on.",
                          minimum=1, maximum=8192, unit="px", label="Image size")
    resize_policy: str = fld(
        "resize_policy", "enum", "resize",
        "How images reach image_size: resize (stretch), crop (random crops at native scale; "
        "prediction goes tile by tile) or letterbox (scale and pad).",
        choices=RESIZE_POLICIES, task_choices={t: DETECTION_POLICIES for t in DETECTION_TASKS},
        label="Resize policy")
    samples_per_image: int = fld(
        "samples_per_image", "int", 1,
        "How many samples (random crops, augmented views) each image gives per epoch.",
        minimum=1, maximum=1024, label="Samples per image")
    crops_by_area: bool = fld(
        "crops_by_area", "bool", False,
        "With random crops: an image gives samples_per_image crops for each crop's worth of "
        "its area (at least samples_per_image), so large images are seen as densely as "
        "small ones.", label="Crops by area")
    channels: Any = fld("channels", "enum", "auto",
                        "Colour channels the model sees: auto (from the images), 1 or 3.",
                        choices=("auto", 1, 3), label="Channels")
    normalize: Any = fld(
        "normalize", "json", "auto",
        "Input normalisation: auto (ImageNet statistics for pretrained models, else the "
        "train split's), imagenet, dataset, or {\"mean\": [...], \"std\": [...]}.",
        label="Normalisation")
    normalize_max_images: int = fld(
        "normalize_max_images", "int", 200,
        "At most this many training images are read to measure the dataset's mean and "
        "standard deviation.", minimum=1, maximum=1_000_000, unit="images",
        label="Images for statistics")
    train_split: str = fld("splits.train", "enum", "train", "The split the model learns from.",
                           choices=SPLITS, label="Train split")
    val_split: str | None = fld(
        "splits.val", "enum", "val",
        "The split validated on after each epoch (early stopping, best model); null: none.",
        choices=(*SPLITS, None), label="Validation split")
    exclude: list = fld("splits.exclude", "int_list", [],
                        "Ids of images left out of training and validation (e.g. a "
                        "cross-validation fold).", minimum=0, max_len=10_000_000,
                        label="Excluded images")


@dataclass
class LossConfig:
    name: str = fld("loss.name", "enum", "cross_entropy",
                    "The training loss. Detection models train on their own losses "
                    "(\"model\": the sum of their parts).", choices=LOSS_NAMES,
                    task_choices={t: DETECTION_LOSSES for t in DETECTION_TASKS}, label="Loss")
    class_weights: list | None = fld(
        "loss.class_weights", "float_list", None,
        "One weight per class (rare classes count more); null weighs every class the same.",
        tasks=PLAIN_TASKS, optional=True, minimum=0.0, maximum=1e6, min_len=1, max_len=4096,
        label="Class weights")
    label_smoothing: float = fld(
        "loss.label_smoothing", "float", 0.0,
        "Cross entropy: this share of each target is spread over all classes.",
        tasks=PLAIN_TASKS, minimum=0.0, maximum=1.0, label="Label smoothing")
    focal_gamma: float = fld("loss.focal_gamma", "float", 2.0,
                             "Focal loss: how much easy examples are discounted.",
                             tasks=PLAIN_TASKS, minimum=0.0, maximum=10.0,
                             label="Focal gamma")
    dice_weight: float = fld("loss.dice_weight", "float", 0.5,
                             "ce_dice: weight of the dice term beside cross entropy.",
                             tasks=PLAIN_TASKS, minimum=0.0, maximum=100.0,
                             label="Dice weight")
    smooth: float = fld("loss.smooth", "float", 1.0,
                        "Dice / Jaccard: smoothing added to numerator and denominator.",
                        tasks=PLAIN_TASKS, minimum=0.0, maximum=1e6, label="Smoothing")


@dataclass
class OptimizerConfig:
    name: str = fld("optimizer.name", "enum", "adamw", "The optimizer.", choices=OPTIMIZERS,
                    label="Optimizer")
    lr: float = fld("optimizer.lr", "float", 1e-3,
                    "Learning rate (peak, after warm-up).", minimum=0.0, maximum=10.0,
                    min_exclusive=True, label="Learning rate")
    momentum: float = fld("optimizer.momentum", "float", 0.9,
                          "SGD and RMSprop: momentum.", minimum=0.0, maximum=1.0,
                          label="Momentum")
    nesterov: bool = fld("optimizer.nesterov", "bool", True,
                         "SGD: Nesterov momentum (when momentum > 0).", label="Nesterov")
    weight_decay: float = fld("optimizer.weight_decay", "float", 1e-4,
                              "L2 penalty on the weights (decoupled for AdamW).",
                              minimum=0.0, maximum=10.0, label="Weight decay")
    betas: list = fld("optimizer.betas", "float_list", [0.9, 0.999],
                      "Adam and AdamW: decay rates of the gradient's mean and variance.",
                      minimum=0.0, maximum=1.0, max_exclusive=True, min_len=2, max_len=2,
                      label="Betas")
    eps: float = fld("optimizer.eps", "float", 1e-8,
                     "Adam, AdamW and RMSprop: added to the denominator for stability.",
                     minimum=0.0, maximum=1.0, min_exclusive=True, label="Epsilon")


@dataclass
class ScheduleConfig:
    name: str = fld("scheduler.name", "enum", "cosine",
                    "How the learning rate changes: none, step (times gamma every step_size "
                    "epochs), cosine, plateau (times factor when validation stalls) or "
                    "onecycle.", choices=SCHEDULERS, label="Scheduler")
    warmup_epochs: float = fld("scheduler.warmup_epochs", "float", 1.0,
                               "Linear warm-up from a tenth of the learning rate.",
                               minimum=0.0, maximum=1000.0, unit="epochs", label="Warm-up")
    step_size: int = fld("scheduler.step_size", "int", 10,
                         "step: epochs between reductions.", minimum=1, maximum=100_000,
                         unit="epochs", label="Step size")
    gamma: float = fld("scheduler.gamma", "float", 0.1, "step: factor of each reduction.",
                       minimum=0.0, maximum=1.0, min_exclusive=True, label="Gamma")
    min_lr_factor: float = fld("scheduler.min_lr_factor", "float", 0.01,
                               "cosine: the final learning rate as a share of the peak.",
                               minimum=0.0, maximum=1.0, label="Final LR factor")
    patience: int = fld("scheduler.patience", "int", 3,
                        "plateau: epochs without improvement before a reduction.",
                        minimum=0, maximum=10_000, unit="epochs", label="Plateau patience")
    factor: float = fld("scheduler.factor", "float", 0.5, "plateau: factor of each reduction.",
                        minimum=0.0, maximum=1.0, min_exclusive=True, label="Plateau factor")
    pct_start: float = fld("scheduler.pct_start", "float", 0.3,
                           "onecycle: share of the steps spent rising to the peak.",
                           minimum=0.0, maximum=1.0, min_exclusive=True, max_exclusive=True,
                           label="Rising share")
    div_factor: float = fld("scheduler.div_factor", "float", 25.0,
                            "onecycle: the start learning rate is the peak divided by this.",
                            minimum=1.0, maximum=1e6, label="Start divisor")
    final_div_factor: float = fld(
        "scheduler.final_div_factor", "float", 1e4,
        "onecycle: the final learning rate is the start one divided by this.",
        minimum=1.0, maximum=1e9, label="Final divisor")


@dataclass
class TrainingConfig:
    epochs: int = fld("epochs", "int", 30, "Passes over the training images.", minimum=1,
                      maximum=100_000, unit="epochs", label="Epochs")
    batch_size: int = fld("batch_size", "int", 32, "Images (or crops) per optimizer step.",
                          minimum=1, maximum=65_536, unit="images", label="Batch size")
    l1: float = fld("l1", "float", 0.0, "L1 penalty on the weights added to the loss.",
                    minimum=0.0, maximum=10.0, label="L1 penalty")
    grad_clip: float = fld("grad_clip", "float", 0.0,
                           "Largest gradient norm before a step; 0 turns clipping off.",
                           minimum=0.0, maximum=1e6, label="Gradient clipping")
    val_every: int = fld("val_every", "int", 1, "Validate every this many epochs.",
                         minimum=1, maximum=10_000, unit="epochs", label="Validate every")
    overfit_patience: int = fld(
        "overfit_patience", "int", 3,
        "Warn of overfitting after this many epochs of rising validation loss while the "
        "training loss falls.", minimum=1, maximum=10_000, unit="epochs",
        label="Overfitting warning after")
    seed: int = fld("seed", "int", 0, "Seed of every random choice (weights, augmentation, "
                    "order).", minimum=0, maximum=SEED_MAX, label="Seed")
    deterministic: bool = fld("deterministic", "bool", False,
                              "Deterministic kernels: repeatable results, slower.",
                              label="Deterministic")
    tta: bool = fld("tta", "bool", False,
                    "Test-time augmentation: evaluation and prediction average over the flips "
                    "enabled in augmentation (classification, semantic segmentation and the "
                    "instance U-Net).", label="Test-time augmentation")


@dataclass
class HardwareConfig:
    device: str = fld("device", "str", "auto",
                      "Where to train: auto, cpu, cuda, cuda:N or mps.", label="Device")
    amp: bool = fld("amp", "bool", True,
                    "Mixed precision: float16 on CUDA; bfloat16 on a CPU that computes it "
                    "natively, for the instance U-Net. Faster, less memory.",
                    label="Mixed precision")
    channels_last: bool = fld("channels_last", "bool", True,
                              "NHWC memory layout (faster convolutions on CUDA and CPU).",
                              label="Channels last")
    num_workers: int = fld("num_workers", "int", 0,
                           "Processes that load images beside training; 0 loads in the "
                           "training process.", minimum=0, maximum=256, label="Loader workers")
    cpu_threads: int = fld("cpu_threads", "int", 0,
                           "Threads torch uses when training on the CPU; 0: torch's own "
                           "choice.", minimum=0, maximum=1024, label="CPU threads")
    cache_mb: float = fld("cache_mb", "float", 512.0,
                          "Decoded images kept in memory per process.", minimum=0.0,
                          maximum=1_048_576.0, unit="MB", label="Image cache")


@dataclass
class EarlyStoppingConfig:
    enabled: bool = fld("early_stopping.enabled", "bool", True,
                        "Stop when the metric has not improved for `patience` epochs.",
                        label="Early stopping")
    metric: str = fld("early_stopping.metric", "enum", "accuracy",
                      "The figure that picks the best epoch (and stops early).",
                      choices=("val_loss", "train_loss", *METRICS["classification"]),
                      task_choices={t: ("val_loss", "train_loss", *m)
                                    for t, m in METRICS.items()}, label="Selection metric")
    mode: str = fld("early_stopping.mode", "enum", "max",
                    "Whether a larger (max) or smaller (min) metric is better.",
                    choices=("min", "max"), label="Better is")
    patience: int = fld("early_stopping.patience", "int", 10,
                        "Epochs without improvement before stopping.", minimum=1,
                        maximum=100_000, unit="epochs", label="Patience")
    min_delta: float = fld("early_stopping.min_delta", "float", 0.0,
                           "Smallest change that counts as an improvement.", minimum=0.0,
                           maximum=1e6, label="Minimum improvement")


@dataclass
class DetectionConfig:
    score_threshold: float = fld(
        "detection.score_threshold", "float", 0.5,
        "Detections scoring below this are dropped (prediction and the evaluation's "
        "counts).", tasks=DETECTION_TASKS, minimum=0.0, maximum=1.0, label="Score threshold")
    nms_iou: float = fld("detection.nms_iou", "float", 0.5,
                         "Overlap (IoU) above which the weaker of two detections is dropped.",
                         tasks=DETECTION_TASKS, minimum=0.0, maximum=1.0, label="NMS IoU")
    max_detections: int = fld("detection.max_detections", "int", 100,
                              "At most this many detections per image.",
                              tasks=DETECTION_TASKS, minimum=1, maximum=100_000,
                              label="Max detections")
    tile_overlap: float = fld(
        "detection.tile_overlap", "float", 0.25,
        "Resize policy crop: overlap of neighbouring prediction windows.",
        tasks=DETECTION_TASKS, minimum=0.0, maximum=0.9, label="Tile overlap")


# attribute of RunConfig -> section class, in the order the JSON lists them
SECTIONS: dict[str, type] = {
    "model": ModelConfig, "data": DataConfig, "loss": LossConfig,
    "optimizer": OptimizerConfig, "schedule": ScheduleConfig, "training": TrainingConfig,
    "hardware": HardwareConfig, "early_stopping": EarlyStoppingConfig,
    "detection": DetectionConfig,
}


def section_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "spec" in f.metadata]


def schema_fields(task: str) -> list[tuple[str, dataclasses.Field]]:
    """(section attribute, dataclass field) of every field `task` has, in schema order."""
    out = []
    for attr, cls in SECTIONS.items():
        for f in section_fields(cls):
            if task in f.metadata["tasks"]:
                out.append((attr, f))
    return out


def task_spec(f: dataclasses.Field, task: str, default: Any, section: str = "") -> FieldSpec:
    """The field's spec as `task` sees it: its choices for the task and its default (and
    `section`, the RunConfig attribute it belongs to, when given)."""
    spec: FieldSpec = f.metadata["spec"]
    changes: dict[str, Any] = {"default": default}
    if section:
        changes["section"] = section
    choices = f.metadata["task_choices"].get(task)
    if choices is not None:
        changes["choices"] = choices
    return dataclasses.replace(spec, **changes)


@dataclass
class RunConfig:
    """A validated run configuration (made by `studio.ml.config.validate_config`).

    Read it by section (`cfg.optimizer.lr`); `to_dict()` gives the JSON the CLI, the store
    and the form use. `augment` is the checked augmentation spec
    (`studio.ml.augment_spec`: op -> {"enabled", "p", parameters}).
    """

    task: str
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: dict = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    detection: DetectionConfig | None = None

    @property
    def is_detection(self) -> bool:
        """Detection and instance segmentation (models that compute their own losses)."""
        return task_of(self.task).is_detection

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able config dict, in the shape runs have always been stored in."""
        out: dict[str, Any] = {"task": self.task}
        for attr, f in schema_fields(self.task):
            value = getattr(getattr(self, attr), f.name)
            _put(out, f.metadata["spec"].path, _copy(value))
        out["augment"] = _copy(self.augment)
        return out

    def __getitem__(self, key: str) -> Any:
        """The top-level JSON value `key` (a read-only view for callers that still index
        the JSON shape, such as the Train form's preflight); the engine reads attributes."""
        return self.to_dict()[key]


def _put(out: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node = out
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def get_path(cfg: dict, path: str, missing: Any = None) -> Any:
    """The value at dotted `path` of a JSON config, or `missing`."""
    node: Any = cfg
    for k in path.split("."):
        if not isinstance(node, dict) or k not in node:
            return missing
        node = node[k]
    return node
