"""Defaults and checks of detection and instance configs (used by studio.ml.config).

Two variants per task, chosen by :func:`recommended_variant` from the device:

* ``cpu``: the light ResNet-18 FPN models, trained from scratch on small inputs, sized so
  a few hundred images train in well under half an hour on two CPU cores
  (benchmarks/bench_detection.py);
* ``gpu``: torchvision's ResNet-50 FPN v2 models at their usual scale (COCO weights are
  used when ``pretrained`` is set to "coco" and the file is in the torch cache).

Detection-only options sit in the config's ``detection`` section: ``score_threshold``,
``nms_iou`` and ``max_detections`` for prediction, ``tile_overlap`` for the "crop"
policy (train on ``image_size`` windows at native scale, predict window by window).
"""

from __future__ import annotations

import math
from typing import Any

from studio.core.errors import ConfigError
from studio.ml.tasks import DETECTION_TASKS

VARIANTS = ("cpu", "gpu")
METRICS = {
    "detection": ("box_map50", "box_map", "box_map75", "box_ar100"),
    "instance": ("mask_map50", "mask_map", "mask_map75", "mask_ar100", "box_map50",
                 "box_map", "box_map75", "box_ar100"),
}
PREDICT_DEFAULTS = {"score_threshold": 0.5, "nms_iou": 0.5, "max_detections": 100,
                    "tile_overlap": 0.25}
DETECTION_POLICIES = ("resize", "crop")


def recommended_variant(device: str) -> str:
    """"gpu" for a CUDA device (as torch names it: "cuda", "cuda:1"), else "cpu"."""
    return "gpu" if str(device).startswith("cuda") else "cpu"


def detection_defaults(task: str, variant: str = "cpu") -> dict[str, Any]:
    """The task-specific part of a complete detection / instance config."""
    if task not in DETECTION_TASKS:
        raise ConfigError(f"{task!r} is not a detection task; use detection or instance.")
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown config variant {variant!r}; use cpu or gpu.")
    instance = task == "instance"
    cpu = variant == "cpu"
    cfg: dict[str, Any] = {
        "task": task,
        "loss": {"name": "model"},  # the sum of the model's own losses
        "channels_last": False,  # RoIAlign and the detection heads gain nothing from NHWC
        # CPU: a budget of a few thousand image steps (about 20 minutes on two cores for
        # a few hundred images); GPU: torchvision's 26-epoch schedule
        "epochs": 12 if cpu else 26,
        "batch_size": 2 if cpu else 4,
        "samples_per_image": 2 if instance else 1,
        # windowed validation of large images costs as much as an epoch of training
        "val_every": 2 if instance and cpu else 1,
        # from scratch (no weights in the CPU variant) AdamW is the steadier start;
        # fine-tuning COCO weights on a GPU follows torchvision's SGD recipe
        "optimizer": ({"name": "adamw", "lr": 1e-3} if cpu else {"name": "sgd", "lr": 0.01})
        | {"momentum": 0.9, "nesterov": False, "weight_decay": 1e-4, "betas": [0.9, 0.999],
           "eps": 1e-8},
        "scheduler": {"name": "cosine", "warmup_epochs": 1, "step_size": 10, "gamma": 0.1,
                      "min_lr_factor": 0.01, "patience": 3, "factor": 0.5, "pct_start": 0.3,
                      "div_factor": 25.0, "final_div_factor": 1e4},
        "grad_clip": 10.0,
        "early_stopping": {"enabled": True, "metric": METRICS[task][0], "mode": "max",
                           "patience": 10, "min_delta": 0.0},
        "detection": dict(PREDICT_DEFAULTS),
    }
    if instance:
        # nuclei-like objects at native scale: train on windows, predict window by window
        cfg.update(model="maskrcnn_resnet18_fpn" if cpu else "maskrcnn_resnet50_fpn_v2",
                   image_size=256, resize_policy="crop")
        cfg["model_options"] = ({"anchor_sizes": [[16], [32], [64], [128]], "min_size": 384,
                                 "max_size": 384, "detections_per_image": 200}
                                if cpu else {"anchor_sizes": [[16], [32], [64], [128], [256]],
                                             "min_size": 512, "max_size": 512,
                                             "detections_per_image": 300})
    else:
        cfg.update(model="fasterrcnn_resnet18_fpn" if cpu else "fasterrcnn_resnet50_fpn_v2",
                   image_size=640, resize_policy="resize")
        cfg["model_options"] = ({"anchor_sizes": [[16], [32], [64], [128]], "min_size": 256,
                                 "max_size": 352}
                                if cpu else {"anchor_sizes": [[16], [32], [64], [128], [256]],
                                             "min_size": 600, "max_size": 1000})
    return cfg


def augment_defaults(spec: dict) -> dict:
    """Flips both ways (cells and nuclei have no up or down) and a little photometric
    jitter; the rest of the spec keeps its defaults."""
    spec["hflip"].update(enabled=True, p=0.5)
    spec["vflip"].update(enabled=True, p=0.5)
    spec["brightness"]["enabled"] = True
    spec["contrast"]["enabled"] = True
    return spec


def _positive_number(section: dict, key: str, *, integer: bool = False, maximum=None) -> None:
    value = section.get(key)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value < 0 or (
            integer and value < 1) or (maximum is not None and value > maximum):
        kind = "a positive integer" if integer else "a number"
        limit = f" in [0, {maximum}]" if maximum is not None else ""
        raise ConfigError(f"'detection.{key}' must be {kind}{limit}, got {value!r}.")


def check_detection_config(cfg: dict, spec) -> None:
    """Detection-specific checks (options of the model, policy, thresholds, augmentation)."""
    if cfg["resize_policy"] not in DETECTION_POLICIES:
        raise ConfigError(f"Resize policy {cfg['resize_policy']!r} does not apply to "
                          f"{cfg['task']}; use 'resize' (the model scales each image to "
                          "min_size/max_size) or 'crop' (windows of image_size).")
    if spec.check_options is not None:
        from studio.ml.builders import model_options

        merged = {**spec.default_options, **model_options(cfg)}
        spec.check_options(merged)
    section = cfg.get("detection")
    if not isinstance(section, dict) or set(section) - set(PREDICT_DEFAULTS):
        raise ConfigError(f"'detection' must be a dict of {', '.join(PREDICT_DEFAULTS)}.")
    _positive_number(section, "score_threshold", maximum=1)
    _positive_number(section, "nms_iou", maximum=1)
    _positive_number(section, "max_detections", integer=True)
    _positive_number(section, "tile_overlap", maximum=0.9)
    if cfg["loss"].get("name") != "model" or set(cfg["loss"]) - {"name"}:
        raise ConfigError("Detection models train on their own losses: 'loss' must be "
                          "{\"name\": \"model\"}.")
    for op in ("elastic", "crop", "gaussian_noise", "cutout", "mixup", "cutmix", "sharpen"):
        if cfg["augment"][op]["enabled"]:
            raise ConfigError(f"Augmentation {op!r} is not available for {cfg['task']} (it "
                              "would not move boxes and masks with the image); disable it.")
    if cfg["tta"]:
        raise ConfigError(f"'tta' is not available for {cfg['task']}; set it to false.")


def check_detection_project(cfg: dict, project, class_ids: list[int]) -> None:
    """The project has objects for the task (checked before any work starts)."""
    if not class_ids:
        what = ("no image has a box, polygon or mask object" if cfg["task"] == "detection"
                else "no image has a polygon or mask object (boxes alone have no mask)")
        raise ConfigError(f"This project has no labels for {cfg['task']}: {what}. Label "
                          "some objects first.")
