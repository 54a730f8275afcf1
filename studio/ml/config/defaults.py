"""Each task's defaults, said once: what a task (and, for detection and instance, its cpu
or gpu variant) sets differently from the schema's shared defaults
(`studio.ml.config.schema`), by JSON path.

Detection and instance have two variants, chosen by `recommended_variant` from the device:

* ``cpu``: the light ResNet-18 FPN models, trained from scratch on small inputs, sized so
  a few hundred images train in well under half an hour on two CPU cores
  (benchmarks/bench_detection.py);
* ``gpu``: torchvision's ResNet-50 FPN v2 models at their usual scale (COCO weights are
  used when ``pretrained`` is set to "coco" and the file is in the torch cache).
"""

from __future__ import annotations

import copy
from typing import Any

from studio.core.errors import ConfigError
from studio.ml.augment_spec import default_spec
from studio.ml.config.schema import METRICS, schema_fields
from studio.ml.tasks import task_of

VARIANTS = ("cpu", "gpu")

# the schema's shared defaults are classification's; the other tasks differ in these
_SEMANTIC: dict[str, Any] = {
    "model": "unet",
    # the benchmarked CPU-friendly U-Net (benchmarks/bench_isbi.py): working on 2x2 pixel
    # blocks, it is three times as wide as the old full-resolution width-8 default at every
    # level and still trains faster (width 16 took half the time for 0.3 points less
    # held-out accuracy)
    "model_options": {"depth": 4, "width": 24, "space_to_depth": 2},
    "image_size": 256,
    "resize_policy": "crop",  # train on crops at native scale, predict by tiles
    "optimizer.name": "adam", "optimizer.lr": 2e-3, "optimizer.weight_decay": 0.0,
    "scheduler.min_lr_factor": 0.02,
    "epochs": 45,
    "batch_size": 4,
    "samples_per_image": 4,  # random crops drawn from each image per epoch
    "early_stopping.metric": "mean_iou", "early_stopping.patience": 15,
}


def _detection(task: str, variant: str) -> dict[str, Any]:
    instance, cpu = task_of(task).has_masks, variant == "cpu"
    out: dict[str, Any] = {
        "loss.name": "model",  # the sum of the model's own losses
        "channels_last": False,  # RoIAlign and the detection heads gain nothing from NHWC
        # CPU: a budget of a few thousand image steps (about 20 minutes on two cores for a
        # few hundred images); GPU: torchvision's 26-epoch schedule
        "epochs": 12 if cpu else 26,
        "batch_size": 2 if cpu else 4,
        "samples_per_image": 2 if instance else 1,
        # windowed validation of large images costs as much as an epoch of training
        "val_every": 2 if instance and cpu else 1,
        # from scratch (no weights in the CPU variant) AdamW is the steadier start;
        # fine-tuning COCO weights on a GPU follows torchvision's SGD recipe
        "optimizer.name": "adamw" if cpu else "sgd", "optimizer.lr": 1e-3 if cpu else 0.01,
        "optimizer.nesterov": False,
        "grad_clip": 10.0,
        "early_stopping.metric": METRICS[task][0],
    }
    if instance:
        # nuclei-like objects at native scale: train on windows, predict window by window
        out.update({"model": "maskrcnn_resnet18_fpn" if cpu else "maskrcnn_resnet50_fpn_v2",
                    "image_size": 256, "resize_policy": "crop"})
        out["model_options"] = (
            {"anchor_sizes": [[16], [32], [64], [128]], "min_size": 384, "max_size": 384,
             "detections_per_image": 200} if cpu else
            {"anchor_sizes": [[16], [32], [64], [128], [256]], "min_size": 512,
             "max_size": 512, "detections_per_image": 300})
    else:
        out.update({"model": "fasterrcnn_resnet18_fpn" if cpu else "fasterrcnn_resnet50_fpn_v2",
                    "image_size": 640, "resize_policy": "resize"})
        out["model_options"] = (
            {"anchor_sizes": [[16], [32], [64], [128]], "min_size": 256, "max_size": 352}
            if cpu else {"anchor_sizes": [[16], [32], [64], [128], [256]], "min_size": 600,
                         "max_size": 1000})
    return out


def default_augment(task: str) -> dict:
    """The task's augmentation spec (every op, a few enabled)."""
    spec = default_spec()
    if task_of(task).label_map:
        # elastic deformation (the U-Net paper's key augmentation) and brightness/contrast
        # jitter. No vertical flips and no free rotation, although microscopy images have
        # no up and down: their annotations do. On ISBI 2012 the drawn membranes sit about
        # half a pixel above the dark ridge in every image; a model trained with those
        # flips cannot learn that offset, and held-out accuracy fell by 0.2-0.4 points
        # (benchmarks/bench_isbi.py). Horizontal flips leave a vertical offset alone.
        spec["elastic"].update(enabled=True, p=0.5)
        spec["brightness"]["enabled"] = True
        spec["contrast"]["enabled"] = True
    elif task_of(task).is_detection:
        # flips both ways (cells and nuclei have no up or down) and a little jitter
        spec["hflip"].update(enabled=True, p=0.5)
        spec["vflip"].update(enabled=True, p=0.5)
        spec["brightness"]["enabled"] = True
        spec["contrast"]["enabled"] = True
    return spec


def check_task(task: Any) -> str:
    """`task` when it names a task (ConfigError with path "task" otherwise)."""
    return task_of(task).name


def task_overrides(task: str, variant: str = "cpu") -> dict[str, Any]:
    """What `task` (`variant`) sets differently from the schema's shared defaults."""
    check_task(task)
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown config variant {variant!r}; use cpu or gpu.")
    if task_of(task).label_map:
        return copy.deepcopy(_SEMANTIC)
    if task_of(task).is_detection:
        return _detection(task, variant)
    return {}


def field_default(task: str, path: str, variant: str = "cpu", overrides=None) -> Any:
    """The default of the field at `path` for `task`."""
    overrides = task_overrides(task, variant) if overrides is None else overrides
    if path in overrides:
        return copy.deepcopy(overrides[path])
    for _attr, f in schema_fields(task):
        if f.metadata["spec"].path == path:
            return copy.deepcopy(f.metadata["spec"].default)
    raise KeyError(path)


def default_config(task: str, variant: str = "cpu") -> dict[str, Any]:
    """A complete config for `task` with every default (the JSON shape).

    `variant` ("cpu" or "gpu", see `recommended_variant`) matters for detection and
    instance, whose practical models differ by device; the other tasks have one default.
    """
    overrides = task_overrides(task, variant)
    out: dict[str, Any] = {"task": task}
    for _attr, f in schema_fields(task):
        path = f.metadata["spec"].path
        value = field_default(task, path, variant, overrides)
        node = out
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    out["augment"] = default_augment(task)
    return out


def default_model_options(task: str, model: str) -> dict[str, Any]:
    """The options a config of `task` gets for `model` when it gives none: the task's
    defaults for its default model (tuned for it), otherwise none (the model's own)."""
    for variant in VARIANTS:
        overrides = task_overrides(task, variant)
        if model == overrides.get("model", field_default(task, "model", overrides=overrides)):
            return copy.deepcopy(overrides.get("model_options", {}))
    return {}


def recommended_variant(device: str) -> str:
    """"gpu" for a CUDA device (as torch names it: "cuda", "cuda:1"), else "cpu"."""
    return "gpu" if str(device).startswith("cuda") else "cpu"
