"""Training configs: one plain, JSON-serialisable dict holding every option of a run.

`default_config(task)` gives a complete config; `validate_config(cfg, project)` fills in
what is missing and rejects bad values with a ConfigError that says what to change,
before any model is built or any run is recorded.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from studio.core.errors import ConfigError
from studio.core.splits import SPLITS
from studio.ml.augment_spec import default_spec, validate_spec
from studio.ml.detection import config as detection_config
from studio.ml.tasks import DETECTION_TASKS, FREEZE_MODES, RESIZE_POLICIES, TASKS, task_class_ids

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau", "onecycle")
METRICS = {
    "classification": ("accuracy", "macro_f1", "macro_precision", "macro_recall", "micro_f1",
                       "weighted_f1"),
    "semantic": ("mean_iou", "mean_dice", "pixel_accuracy", "mean_precision", "mean_recall"),
    **detection_config.METRICS,
}


def _common() -> dict[str, Any]:
    return {
        "model_options": {},
        # None | "imagenet" | "coco" (detection models) | path of a local checkpoint
        "pretrained": None,
        "freeze": {"mode": "none", "n_stages": 0},
        # at epoch `unfreeze_epoch` (1-based; 0 = never) everything is unfrozen and the
        # optimizer rebuilt with the backbone at lr * backbone_lr_factor
        "finetune": {"unfreeze_epoch": 0, "backbone_lr_factor": 1.0},
        "channels": "auto",  # "auto" | 1 | 3
        # "auto": ImageNet statistics for pretrained models, else the train split's;
        # or "imagenet", "dataset", or {"mean": [...], "std": [...]}
        "normalize": "auto",
        "normalize_max_images": 200,
        "l1": 0.0,
        "dropout": None,  # None keeps the model's own default
        "grad_clip": 0.0,  # max gradient norm; 0 = off
        "amp": True,  # mixed precision; only ever used on CUDA
        "channels_last": True,  # NHWC memory layout on CUDA and CPU (faster convolutions)
        "seed": 0,
        "deterministic": False,
        "device": "auto",  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
        "num_workers": 0,
        "cpu_threads": 0,  # torch intra-op threads when training on the CPU; 0 = torch's own
        "cache_mb": 512,  # decoded-image cache per process
        "val_every": 1,
        # test-time augmentation: evaluation and prediction average the class probabilities
        # over the flips enabled in "augment" (studio.ml.predict); validation during
        # training does not use it
        "tta": False,
        "overfit_patience": 3,
        "splits": {"train": "train", "val": "val"},
    }


def _loss(task: str, name: str) -> dict[str, Any]:
    from studio.ml.losses import default_loss

    return {**default_loss(task), "name": name}


def default_config(task: str, variant: str = "cpu") -> dict[str, Any]:
    """A complete config for `task` with every default.

    `variant` ("cpu" or "gpu", see `recommended_variant`) matters for detection and
    instance, whose practical models differ by device; the other tasks have one default.
    """
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    cfg = _common()
    if task in DETECTION_TASKS:
        cfg.update(detection_config.detection_defaults(task, variant))
        cfg["augment"] = detection_config.augment_defaults(default_spec())
        return cfg
    if task == "classification":
        cfg.update({
            "task": task,
            "model": "simple_cnn",
            "image_size": 64,
            "resize_policy": "resize",
            "loss": _loss(task, "cross_entropy"),
            "optimizer": {"name": "adamw", "lr": 1e-3, "momentum": 0.9, "nesterov": True,
                          "weight_decay": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8},
            "scheduler": {"name": "cosine", "warmup_epochs": 1, "step_size": 10,
                          "gamma": 0.1, "min_lr_factor": 0.01, "patience": 3,
                          "factor": 0.5, "pct_start": 0.3, "div_factor": 25.0,
                          "final_div_factor": 1e4},
            "epochs": 30,
            "batch_size": 32,
            "early_stopping": {"enabled": True, "metric": "accuracy", "mode": "max",
                               "patience": 10, "min_delta": 0.0},
        })
    else:
        cfg.update({
            "task": task,
            "model": "unet",
            # the benchmarked CPU-friendly U-Net (benchmarks/bench_isbi.py): working on
            # 2x2 pixel blocks, it is three times as wide as the old full-resolution
            # width-8 default at every level and still trains faster (width 16 took half
            # the time for 0.3 points less held-out accuracy)
            "model_options": {"depth": 4, "width": 24, "space_to_depth": 2},
            "image_size": 256,
            "resize_policy": "crop",  # train on crops at native scale, predict by tiles
            "loss": _loss(task, "cross_entropy"),
            "optimizer": {"name": "adam", "lr": 2e-3, "momentum": 0.9, "nesterov": True,
                          "weight_decay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8},
            "scheduler": {"name": "cosine", "warmup_epochs": 1, "step_size": 10,
                          "gamma": 0.1, "min_lr_factor": 0.02, "patience": 3,
                          "factor": 0.5, "pct_start": 0.3, "div_factor": 25.0,
                          "final_div_factor": 1e4},
            "epochs": 45,
            "batch_size": 4,
            "samples_per_image": 4,  # random crops drawn from each image per epoch
            "early_stopping": {"enabled": True, "metric": "mean_iou", "mode": "max",
                               "patience": 15, "min_delta": 0.0},
        })
    cfg["augment"] = default_spec()
    if task == "semantic":
        # elastic deformation (the U-Net paper's key augmentation) and brightness/contrast
        # jitter. No vertical flips and no free rotation, although microscopy images have
        # no up and down: their annotations do. On ISBI 2012 the drawn membranes sit about
        # half a pixel above the dark ridge in every image; a model trained with those
        # flips cannot learn that offset, and held-out accuracy fell by 0.2-0.4 points
        # (benchmarks/bench_isbi.py). Horizontal flips leave a vertical offset alone.
        spec = cfg["augment"]
        spec["elastic"].update(enabled=True, p=0.5)
        spec["brightness"]["enabled"] = True
        spec["contrast"]["enabled"] = True
    if task == "classification":
        cfg["samples_per_image"] = 1
    return cfg


def merge(base: dict, override: dict) -> dict:
    """Deep merge: nested dicts combine, every other value of `override` wins."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _number(cfg: dict, path: str, *, minimum: float | None = None, positive: bool = False,
            integer: bool = False, maximum: float | None = None) -> None:
    node, keys = cfg, path.split(".")
    for k in keys[:-1]:
        node = node[k]
    value = node[keys[-1]]
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (not integer and not math.isfinite(value)):
        raise ConfigError(f"'{path}' must be {kind}, got {value!r}.")
    if positive and value <= 0:
        raise ConfigError(f"'{path}' must be greater than 0, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"'{path}' must be at least {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"'{path}' must be at most {maximum}, got {value!r}.")


def _choice(value: Any, allowed, what: str) -> None:
    if value not in allowed:
        raise ConfigError(f"Unknown {what} {value!r}; use one of: {', '.join(map(str, allowed))}.")


def validate_config(cfg: dict | None, project=None) -> dict[str, Any]:
    """Fill defaults into `cfg` and check every value; ConfigError names the first problem.

    With a project, also checks that the task has labels and the train split has images.
    """
    from studio.ml.models.registry import check_pretrained, get_spec

    cfg = dict(cfg or {})
    task = cfg.get("task", "classification")
    _choice(task, TASKS, "task")
    unknown = set(cfg) - set(default_config(task)) - {"task"}
    if unknown:
        raise ConfigError(f"Unknown config option(s): {', '.join(sorted(unknown))}. Print a "
                          "complete config with `studio-cli train --print-default-config`.")
    defaults = default_config(task)
    if "model_options" in cfg or cfg.get("model", defaults["model"]) != defaults["model"]:
        # given options replace the defaults' (which belong to the default model); options
        # left out take the model's own defaults
        defaults["model_options"] = {}
    cfg = merge(defaults, cfg)

    spec = get_spec(cfg["model"])
    if spec.task != task:
        raise ConfigError(f"Model {cfg['model']!r} is a {spec.task} model, but the task is "
                          f"{task!r}; choose one of the {task} models.")
    if not isinstance(cfg["model_options"], dict):
        raise ConfigError("'model_options' must be a dict of option names and values.")
    bad = set(cfg["model_options"]) - set(spec.default_options)
    if bad:
        raise ConfigError(f"Model {spec.name!r} has no option(s) {', '.join(sorted(bad))}; its "
                          f"options are: {', '.join(spec.default_options) or 'none'}.")
    _number(cfg, "optimizer.lr", positive=True)
    _number(cfg, "batch_size", integer=True, positive=True)
    _number(cfg, "epochs", integer=True, minimum=1)
    _number(cfg, "image_size", integer=True, positive=True, maximum=8192)
    if cfg["image_size"] < spec.min_size:
        raise ConfigError(f"Model {spec.name!r} needs images of at least {spec.min_size} px; "
                          f"'image_size' is {cfg['image_size']}.")
    _number(cfg, "samples_per_image", integer=True, minimum=1)
    _number(cfg, "optimizer.weight_decay", minimum=0)
    _number(cfg, "optimizer.momentum", minimum=0, maximum=1)
    _number(cfg, "l1", minimum=0)
    _number(cfg, "grad_clip", minimum=0)
    _number(cfg, "seed", integer=True)
    _number(cfg, "num_workers", integer=True, minimum=0)
    _number(cfg, "cpu_threads", integer=True, minimum=0)
    _number(cfg, "cache_mb", minimum=0)
    _number(cfg, "val_every", integer=True, minimum=1)
    _number(cfg, "overfit_patience", integer=True, minimum=1)
    _number(cfg, "normalize_max_images", integer=True, minimum=1)
    _number(cfg, "finetune.unfreeze_epoch", integer=True, minimum=0)
    _number(cfg, "finetune.backbone_lr_factor", minimum=0)
    _number(cfg, "early_stopping.patience", integer=True, minimum=1)
    _number(cfg, "early_stopping.min_delta", minimum=0)
    _number(cfg, "scheduler.warmup_epochs", minimum=0)
    _number(cfg, "scheduler.step_size", integer=True, minimum=1)
    _number(cfg, "scheduler.gamma", positive=True)
    _number(cfg, "scheduler.min_lr_factor", minimum=0, maximum=1)
    _number(cfg, "freeze.n_stages", integer=True, minimum=0)
    _choice(cfg["optimizer"]["name"], OPTIMIZERS, "optimizer")
    _choice(cfg["scheduler"]["name"], SCHEDULERS, "scheduler")
    _choice(cfg["resize_policy"], RESIZE_POLICIES, "resize policy")
    _choice(cfg["freeze"]["mode"], FREEZE_MODES, "freeze mode")
    _choice(cfg["channels"], ("auto", 1, 3), "'channels' value")
    _choice(cfg["early_stopping"]["mode"], ("min", "max"), "early-stopping mode")
    _choice(cfg["early_stopping"]["metric"], ("val_loss", "train_loss", *METRICS[task]),
            "early-stopping metric")
    if cfg["dropout"] is not None:
        _number(cfg, "dropout", minimum=0, maximum=0.99)
    check_pretrained(spec, cfg["pretrained"])
    if cfg["freeze"]["mode"] != "none" and cfg["pretrained"] is None:
        raise ConfigError("Freezing layers only makes sense with pretrained weights; set "
                          "'pretrained' or use freeze mode 'none'.")
    norm = cfg["normalize"]
    if isinstance(norm, dict):
        if not {"mean", "std"} <= set(norm) or any(float(s) <= 0 for s in norm["std"]):
            raise ConfigError("'normalize' as a dict needs 'mean' and positive 'std' lists.")
    elif norm not in ("auto", "imagenet", "dataset"):
        raise ConfigError(f"'normalize' must be 'auto', 'imagenet', 'dataset' or a dict, "
                          f"got {norm!r}.")
    device = str(cfg["device"])
    if not (device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")):
        raise ConfigError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.")
    _choice(cfg["splits"].get("train"), SPLITS, "train split")
    _choice(cfg["splits"].get("val"), (*SPLITS, None), "val split")
    exclude = cfg["splits"].get("exclude", [])
    if not isinstance(exclude, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in exclude):
        raise ConfigError(f"'splits.exclude' must be a list of image ids (images left out of "
                          f"training and validation), got {exclude!r}.")
    try:
        cfg["augment"] = validate_spec(cfg["augment"]) or cfg["augment"]
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"Bad augmentation spec: {exc}") from exc
    if not isinstance(cfg["tta"], bool):
        raise ConfigError(f"'tta' must be true or false, got {cfg['tta']!r}.")
    if cfg["tta"] and not any(cfg["augment"].get(op, {}).get("enabled")
                              for op in ("hflip", "vflip")):
        raise ConfigError("'tta' averages predictions over the flips the model was trained "
                          "with, but augmentations 'hflip' and 'vflip' are both off; enable "
                          "one of them or set 'tta' to false.")
    if task in DETECTION_TASKS:
        detection_config.check_detection_config(cfg, spec)
        if project is not None:
            check_project(cfg, project)
        return cfg
    from studio.ml.losses import build_loss

    weights = cfg["loss"].get("class_weights")
    n_classes = len(weights) if isinstance(weights, (list, tuple)) else 2
    try:
        build_loss(cfg["loss"], task, n_classes)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"Bad loss settings {cfg['loss']!r}: {exc}") from exc
    if project is not None:
        check_project(cfg, project)
    return cfg


def check_project(cfg: dict, project) -> None:
    """The project has labels for the task and images in the train split."""

    task = cfg["task"]
    class_ids = task_class_ids(project, task)
    if task in DETECTION_TASKS:
        detection_config.check_detection_project(cfg, project, class_ids)
    if not class_ids:
        what = ("no image has a class tag" if task == "classification"
                else "no image has a polygon or mask region")
        raise ConfigError(f"This project has no labels for {task}: {what}. Label some "
                          "images first.")
    train = cfg["splits"]["train"]
    if project.count_images(split=train) == 0:
        raise ConfigError(f"The '{train}' split has no images. Split the project first "
                          "(e.g. `studio-cli split PROJECT`), or choose another train split.")
