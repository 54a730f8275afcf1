"""Recommended training settings from a dataset fingerprint, each with its reason.

In the spirit of nnU-Net's self-configuration: `recommend(project, task, mirror, device)`
reads the project's fingerprint (`studio.ml.fingerprint`) and derives a complete config
(`Plan.config`, valid for `studio.ml.config.validate_config`), one plain sentence per
chosen value (`Plan.reasons`, keyed by dotted config path) and the questions the data
cannot answer (`Plan.questions`; today one: may an image be mirrored or rotated?).

The rules, in short (budgets are those of the benchmarked configs, benchmarks/):
- classification: small or small-image datasets train the simple CNN from scratch at
  about their native size (never below what its pooling stages need); colour photos
  of 64 px or more fine-tune a pretrained ResNet-18 when its weights are cached. Batch
  about 1/16 of the training set (4..64); about 1,000 optimizer steps; inverse-sqrt
  class weights when the largest class has 3x the images of the smallest.
- semantic: a U-Net trained on crops at native resolution; on a CPU the 2x2-block
  U-Net with 256-px crops and batch 4, on a GPU the full-resolution one with the crop
  and batch the device memory holds. Dice + cross entropy when the rarest class has
  under 10 % of the labelled pixels; about 1,440 optimizer steps.
- mirroring and rotation follow the answer to the mirror question, except along an axis
  where the labels sit consistently off the structures they mark (a label offset that a
  flip would reverse, and the model could no longer learn).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import ConfigError
from studio.ml.config import RunConfig
from studio.ml.fingerprint import fingerprint
from studio.ml.tasks import task_of

__all__ = ["MIRROR_QUESTION", "Plan", "Question", "fingerprint", "plan_from_fingerprint",
           "recommend"]

CLASSIFICATION_STEPS = 1000  # digits: ~19 steps x 40-53 epochs (benchmarks/bench_digits.py)
SEMANTIC_STEPS = 1440  # ISBI 2012: 24 steps x 60 epochs; 45 epochs held out 0.9197, 60: 0.9207
IMBALANCE_WEIGHTS = 3.0  # classification: largest / smallest class -> class weights
RARE_PIXELS = 0.10  # semantic: rarest class below this fraction of pixels -> Dice + CE
OFFSET_PX = 1.0  # a consistent label offset this large blocks a flip (see offset_limit)
OFFSET_AGREEMENT = 0.8
SMALL_VAL = 1000  # fewer validation images: select on validation loss
GPU_MEMORY_FRACTION = 0.6  # of the free memory, for the batch (as Ultralytics AutoBatch)


@dataclass
class Question:
    """Something the data cannot tell; the GUI asks it, the CLI takes it as a flag."""

    key: str
    text: str
    examples: dict[str, list[str]]
    choices: tuple[str, ...]
    answer: str | None
    affects: list[str]
    # where the plan departs from the answer, and why (for the place the answer is given)
    note: str = ""


MIRROR_QUESTION = ("Can an image be mirrored (left-right, up-down) or rotated without "
                   "changing its label?")
MIRROR_EXAMPLES = {"yes": ["cells", "tissue", "aerial and satellite images"],
                   "no": ["digits", "letters and text", "street scenes (the sky is up)"]}


@dataclass
class Plan:
    """A recommended config, a reason per chosen value, and the open questions."""

    config: dict[str, Any]
    reasons: dict[str, str]
    questions: list[Question]
    fingerprint: dict[str, Any] = field(repr=False)

    def explain(self) -> str:
        """The reasons and the questions as plain lines (for a terminal)."""
        lines = [f"{path}: {text}" for path, text in self.reasons.items()]
        for q in self.questions:
            state = f"answered {q.answer}" if q.answer else "unanswered"
            lines.append(f"question ({q.key}, {state}): {q.text} Yes e.g. "
                         f"{', '.join(q.examples['yes'])}; no e.g. {', '.join(q.examples['no'])}.")
            if q.note:
                lines.append(f"note ({q.key}): {q.note}")
        return "\n".join(lines)


def recommend(project, task: str | None = None, mirror: str | bool | None = None,
              device: str = "auto") -> Plan:
    """The recommended config for `task` on `project` (see the module docstring).

    `mirror`: the answer to MIRROR_QUESTION ("yes"/"no", True/False, None = not answered:
    no flips or rotations until it is). `device`: the device to plan for and train on.
    """
    return plan_from_fingerprint(fingerprint(project, task, device), mirror)


def _answer(mirror: str | bool | None) -> str | None:
    if mirror is None or isinstance(mirror, bool):
        return None if mirror is None else ("yes" if mirror else "no")
    value = str(mirror).strip().lower()
    if value not in ("yes", "no"):
        raise ConfigError(f"The mirror answer must be 'yes' or 'no', got {mirror!r}.")
    return value


def plan_from_fingerprint(fp: dict, mirror: str | bool | None = None) -> Plan:
    """The plan for a fingerprint (`fingerprint(...)`'s dict); pure, no project needed."""
    from studio.ml.config import default_config, validate_config
    from studio.ml.tasks import TASKS

    task = fp["task"]
    answer = _answer(mirror)
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    run = validate_config(default_config(task))
    reasons: dict[str, str] = {}
    run.hardware.device = fp["device"]["requested"]
    reasons["device"] = f"{run.hardware.device}: the plan is made for {_device_text(fp)}."
    run.data.train_split = fp["splits"]["train"]
    run.data.val_split = fp["splits"]["val"] or "val"
    if task_of(task).image_label:
        _classification(run, fp, reasons)
    elif task_of(task).label_map:
        _semantic(run, fp, reasons)
    else:
        _by_device(run, fp, reasons)
    _selection(run, fp, reasons)
    note = _mirroring(run, fp, answer, reasons)
    question = Question("mirror", MIRROR_QUESTION, MIRROR_EXAMPLES, ("yes", "no"), answer,
                        ["augment.hflip", "augment.vflip", "augment.rotation", "tta"], note)
    # the values set above are checked again as a whole (the JSON is the Plan's format)
    return Plan(validate_config(run).to_dict(), reasons, [question], fp)


# --- shared helpers ----------------------------------------------------------------------
def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(1.0, x)))))


def _clamp(x: int, low: int, high: int) -> int:
    return max(low, min(high, x))


def _optimizer(run: RunConfig, name: str, lr: float, weight_decay: float) -> None:
    run.optimizer.name, run.optimizer.lr, run.optimizer.weight_decay = name, lr, weight_decay


def _cosine(run: RunConfig, min_lr_factor: float) -> None:
    """Cosine decay after one warm-up epoch."""
    schedule = run.schedule
    schedule.name, schedule.warmup_epochs, schedule.min_lr_factor = "cosine", 1, min_lr_factor


def _epochs(steps_per_epoch: int, budget: int, low: int, high: int) -> int:
    return _clamp(math.ceil(budget / max(1, steps_per_epoch)), low, high)


def _size_text(fp: dict) -> str:
    h, w = fp["size"]["median"]
    text = f"{h} x {w}"
    return f"{text} (median; they vary from {fp['size']['min']} to {fp['size']['max']})" \
        if fp["size"]["varied"] else text


def _on_gpu(fp: dict) -> bool:
    return fp["device"]["type"] == "cuda" and bool(fp["device"].get("free_gb"))


def _device_text(fp: dict) -> str:
    dev = fp["device"]
    if dev["type"] == "cuda" and dev.get("free_gb"):
        return f"{dev['name']} with {dev['free_gb']:.0f} GB free"
    return dev["name"]


def _weights_cached(model: str) -> bool:
    from studio.ml.models.registry import get_spec
    from studio.ml.models.transfer import weights_file

    try:
        return weights_file(get_spec(model)).is_file()
    except (ConfigError, ValueError, OSError):
        return False


# --- classification ------------------------------------------------------------------------
def _classification(run: RunConfig, fp: dict, reasons: dict) -> None:
    n_train = fp["images"]["labelled_by_split"][fp["splits"]["train"]]
    native = fp["size"]["median_short_side"]
    gpu = _on_gpu(fp)
    photo = fp["channels"] == 3 and native >= 64 and n_train >= 20
    pretrained = photo and _weights_cached("resnet18")
    if pretrained:
        size = 224 if gpu else (128 if native >= 128 else 32 * math.ceil(native / 32))
        model = run.model
        model.name, model.options, model.pretrained = "resnet18", {}, "imagenet"
        run.data.image_size = size
        model.freeze_mode, model.freeze_stages = "backbone", 0
        model.unfreeze_epoch, model.backbone_lr_factor = 2, 0.1
        _optimizer(run, "adamw", 1e-3, 1e-4)
        reasons["model"] = (f"resnet18 pretrained on ImageNet: colour images of {_size_text(fp)}"
                            " px look like photos, and its weights are in the local cache.")
        reasons["model_options"] = "none: the torchvision architecture as published."
        reasons["freeze.mode"] = ("backbone frozen for the first epoch, then all layers train "
                                  "with the backbone at a tenth of the learning rate "
                                  "(fastai's fine_tune): the new head settles first.")
        where = "the size ImageNet models were trained at" if gpu else "small enough for a CPU"
        reasons["image_size"] = f"{size} px: {where}; images are {_size_text(fp)}."
        reasons["optimizer.lr"] = "AdamW 0.001: fine-tuning a pretrained network."
        budget, high = CLASSIFICATION_STEPS // 2, 60
    else:
        size = _clamp(8 * math.ceil(native / 8), 16, 128 if gpu else 96)
        depth = _clamp(int(math.log2(size)) - 1, 2, 5)
        small = n_train < 300
        width = 16 if small else 32
        run.model.name, run.model.pretrained, run.data.image_size = "simple_cnn", None, size
        run.model.options = {"depth": depth, "width": width, "fc": [64 if small else 128],
                             "dropout": 0.3}
        if native < 64:
            why = f"the images are small ({_size_text(fp)}), too small for an ImageNet network"
        elif fp["channels"] == 1:
            why = "grey images, unlike the colour photos ImageNet networks learnt from"
        elif photo:
            why = "the ImageNet weights of resnet18 are not in the local cache"
        else:
            why = f"{n_train} training images are too few for a large network"
        reasons["model"] = f"simple_cnn from scratch: {why}."
        reasons["model_options"] = (
            f"depth {depth}, width {width}: {depth} pooling stages leave "
            f"{max(1, size >> depth)} x {max(1, size >> depth)} features of a {size} px input"
            + (f"; width {width} because {n_train} training images would overfit a wider one"
               if small else "") + "; dropout 0.3.")
        reasons["image_size"] = (f"{size} px: images are {_size_text(fp)}"
                                 + (f", enlarged so that {depth} pooling stages fit"
                                    if size > native else "") + ".")
        _optimizer(run, "adamw", 3e-3, 1e-4)
        reasons["optimizer.lr"] = ("AdamW 0.003: a small network with batch norm trained from "
                                   "scratch in a short run.")
        budget, high = CLASSIFICATION_STEPS, 100
    run.data.resize_policy = "resize"
    reasons["resize_policy"] = "resize: a class label belongs to the whole image."
    cap = 128 if gpu else (32 if pretrained else 64)
    batch = min(_clamp(_pow2_floor(n_train / 16), 4, cap), n_train)
    run.training.batch_size = batch
    steps = max(1, n_train // batch)
    reasons["batch_size"] = (f"{batch}: about a sixteenth of the {n_train} training images "
                             f"(at most {cap} on {_device_text(fp)}), {steps} steps per epoch.")
    run.training.epochs = _epochs(steps, budget, 10, high)
    reasons["epochs"] = (f"{run.training.epochs}: about {budget} optimizer steps at {steps} "
                         "per epoch; early stopping may end it sooner.")
    _cosine(run, 0.01)
    reasons["scheduler.name"] = "cosine decay after one warm-up epoch."
    stats = fp["classes"]
    counts = stats["counts"]
    run.loss.name = "cross_entropy"
    if stats["imbalance"] >= IMBALANCE_WEIGHTS and len(counts) > 1:
        present = [c for c in counts if c > 0]
        mean = sum(present) / len(present)
        raw = [math.sqrt(mean / c) if c > 0 else math.sqrt(mean / min(present)) for c in counts]
        norm = sum(raw) / len(raw)
        run.loss.class_weights = [round(w / norm, 4) for w in raw]
        reasons["loss.class_weights"] = (
            f"inverse square root of the class frequencies: the largest class has "
            f"{stats['imbalance']:.1f}x the images of the smallest ({stats['rarest']}).")
        reasons["loss.name"] = "cross entropy with class weights: the classes are imbalanced."
    else:
        run.loss.class_weights = None
        reasons["loss.name"] = (f"cross entropy: the classes are balanced enough (largest / "
                                f"smallest {stats['imbalance']:.1f}).")
    if stats["missing_in_train"]:
        reasons["loss.name"] += (f" No training image of {', '.join(stats['missing_in_train'])}"
                                 ": the model cannot learn those classes.")
    spec = run.augment  # the augmentation spec: op -> {"enabled", "p", parameters}
    if not pretrained:
        spec["translate"].update(enabled=True, p=0.5, fraction=[0.08, 0.08])
        reasons["augment.translate"] = ("small shifts (8 %): the object need not sit in the same"
                                        " place in every image.")
    else:
        spec["scale"].update(enabled=True, p=0.5, scale=[0.5, 1.0])
        spec["brightness"].update(enabled=True, p=0.5, factor=0.2)
        spec["contrast"].update(enabled=True, p=0.5, factor=0.2)
        reasons["augment.scale"] = ("random crops of 50-100 % and brightness/contrast jitter: "
                                    "the usual photo augmentation.")


# --- semantic segmentation ---------------------------------------------------------------
def _unet_bytes_per_crop(crop: int, width: int, depth: int, block: int, amp: bool) -> float:
    """Training memory of one crop in our U-Net: about ten stored activations per feature
    map element in the encoder and as many in the decoder (conv, batch norm, ReLU, skips)."""
    elements = 0.0
    for level in range(depth + 1):
        side = crop / block / 2**level
        elements += side * side * width * 2**level
    return elements * 20 * (2.5 if amp else 4.0)


def _semantic(run: RunConfig, fp: dict, reasons: dict) -> None:
    n_train = fp["images"]["labelled_by_split"][fp["splits"]["train"]]
    native = fp["size"]["median_short_side"]
    h, w = fp["size"]["median"]
    gpu = _on_gpu(fp)
    objects = [d for d in fp["objects"]["median_diameter"].values() if d]
    largest_object = max(objects) if objects else 0.0
    width, cap = (32, 512) if gpu else (24, 256)
    crop = min(cap, 32 * max(2, native // 32)) if native >= 64 else 32 * math.ceil(native / 32)
    if crop < 2 * largest_object and crop < native:
        crop = min(native // 32 * 32, 32 * math.ceil(2 * largest_object / 32), 2 * cap)
    # on a CPU, large crops go through the U-Net as 2x2 pixel blocks (benchmarked on ISBI)
    block = 2 if not gpu and crop >= 128 else 1
    depth = _clamp(int(math.log2(max(1.0, crop / block / 8))), 1, 5)
    pixels = fp["objects"]["labelled_pixel_fraction"] * n_train * h * w
    if not gpu and pixels < 1.5e6:
        width = 16
    options = {"depth": depth, "width": width, "space_to_depth": block}
    run.model.name, run.model.options = "unet", options
    run.data.image_size, run.data.resize_policy = crop, "crop"
    if gpu:
        per_crop = _unet_bytes_per_crop(crop, width, depth, block, bool(run.hardware.amp))
        fits = GPU_MEMORY_FRACTION * fp["device"]["free_gb"] * 2**30 / per_crop
        batch = _clamp(_pow2_floor(fits), 2, 32)
        memory = (f"the device holds batch {batch} ({per_crop / 2**30:.2f} GB per crop, "
                  f"{GPU_MEMORY_FRACTION:.0%} of {fp['device']['free_gb']:.0f} GB free)")
    else:
        batch = 4
        memory = "the CPU trains batch 4 at about a step a second"
    per_image = _clamp(round(h * w / (crop * crop)), 1, 16)
    crops = n_train * per_image
    batch = max(1, min(batch, crops // 2 if crops >= 4 else crops))
    run.training.batch_size, run.data.samples_per_image = batch, per_image
    objects_text = ""
    if largest_object:
        objects_text = (f", typical objects ({largest_object:.0f} px across) fit in it"
                        if crop >= largest_object else
                        f"; typical objects are {largest_object:.0f} px across")
    reasons["image_size"] = (f"crop {crop}: images are {_size_text(fp)} and {memory}"
                             f"{objects_text}.")
    reasons["resize_policy"] = ("crop: train on crops at native resolution and predict whole "
                                "images by tiles, so thin structures keep their pixels.")
    reasons["model"] = ("unet: our U-Net learns accurate masks from few images, from scratch.")
    reasons["model_options"] = (
        f"depth {depth}: pooling stops while feature maps are still >= 8 px "
        f"({crop // block >> depth} px at the bottom); width {width}"
        + (", on 2x2 pixel blocks (about three times faster on a CPU, as accurate)"
           if block == 2 else "") + (f"; narrower because only {pixels / 1e6:.1f} M pixels are"
                                     " labelled" if width == 16 else "") + ".")
    reasons["batch_size"] = f"{batch}: {memory}."
    reasons["samples_per_image"] = (f"{per_image}: {per_image} crops of {crop} px cover an image"
                                    f" of {h} x {w} once per epoch.")
    steps = max(1, crops // batch)
    run.training.epochs = _epochs(steps, SEMANTIC_STEPS, 10, 300)
    reasons["epochs"] = (f"{run.training.epochs}: about {SEMANTIC_STEPS} optimizer steps at {steps} "
                         f"per epoch ({n_train} images x {per_image} crops / batch {batch}).")
    _optimizer(run, "adam", 2e-3, 0.0)
    reasons["optimizer.lr"] = "Adam 0.002: the benchmarked rate for our U-Net from scratch."
    _cosine(run, 0.02)
    reasons["scheduler.name"] = "cosine decay after one warm-up epoch."
    stats = fp["classes"]
    rarest = min(stats["fractions"]) if stats["fractions"] else 0.0
    run.loss.class_weights = None
    if rarest < RARE_PIXELS:
        run.loss.name, run.loss.dice_weight = "ce_dice", 0.5
        reasons["loss.name"] = (f"Dice + cross entropy: the rarest class, {stats['rarest']}, has "
                                f"only {rarest:.1%} of the labelled pixels; Dice counts it as "
                                "much as the others.")
    else:
        run.loss.name = "cross_entropy"
        reasons["loss.name"] = (f"cross entropy: the rarest class, {stats['rarest']}, still has "
                                f"{rarest:.0%} of the labelled pixels.")
    reasons["augment.elastic"] = ("elastic deformation (the U-Net paper's augmentation) and "
                                  "brightness/contrast jitter: few images, shapes that bend.")


def _by_device(run: RunConfig, fp: dict, reasons: dict) -> None:
    """Detection and instance segmentation: the instance U-Net for small crowded objects
    (`studio.ml.plan_instance`), else the task's default config, which is made for a CPU,
    or on a GPU the task's GPU defaults; then as many detections per image as the data
    needs."""
    from studio.ml.config import default_config, recommended_variant, validate_config
    from studio.ml.plan_instance import choose_instance_method, detection_capacity

    task = fp["task"]
    if task_of(task).has_masks and choose_instance_method(run, fp, reasons):
        pass
    elif _on_gpu(fp):
        # the GPU variant of the task's defaults (studio.ml.config.defaults), all but the
        # device and the splits, which the plan has already set
        gpu = validate_config(default_config(task, recommended_variant(fp["device"]["type"])))
        gpu.hardware.device = run.hardware.device
        gpu.data.train_split, gpu.data.val_split = run.data.train_split, run.data.val_split
        gpu.data.exclude = run.data.exclude
        for part in dataclasses.fields(run):
            setattr(run, part.name, getattr(gpu, part.name))
        reasons["model"] = (f"{run.model.name}: the GPU default of {task}, at torchvision's "
                            f"scale; {_device_text(fp)}.")
        if _weights_cached(run.model.name):
            run.model.pretrained = "coco"
            reasons["pretrained"] = "coco: the COCO weights are in the local torch cache."
    elif "model" not in reasons:
        reasons["model"] = (f"{run.model.name}: the default {task} model, practical on "
                            f"{_device_text(fp)}.")
    detection_capacity(run, fp, reasons)


# --- selection and augmentation --------------------------------------------------------------
def _selection(run: RunConfig, fp: dict, reasons: dict) -> None:
    es = run.early_stopping
    n_val = fp["images"]["labelled_by_split"].get(fp["splits"]["val"] or "", 0)
    es.enabled, es.mode, es.min_delta = True, "max", 0.0
    es.patience = max(10, math.ceil(run.training.epochs * 0.3))
    imbalanced = fp.get("classes", {}).get("imbalance", 1.0) >= IMBALANCE_WEIGHTS
    if task_of(fp["task"]).image_label:
        if n_val and n_val < SMALL_VAL:
            es.metric, es.mode = "val_loss", "min"
            why = (f"validation loss: on {n_val} validation images accuracy moves in steps of "
                   f"{100 / n_val:.1f} % and ties early; the loss still tells better models "
                   "apart")
        elif imbalanced:
            es.metric = "macro_f1"
            why = "macro F1: with imbalanced classes accuracy rewards ignoring the rare ones"
        else:
            es.metric = "accuracy"
            why = f"accuracy: {n_val} balanced validation images"
    elif task_of(fp["task"]).label_map:
        es.metric = "mean_iou"
        why = "mean IoU over classes on whole validation images"
    else:
        why = f"{es.metric}, the task's default"
    if not n_val:
        why = ("no validation split, so nothing is held out to select on: every epoch "
               "trains and the epoch with the lowest training loss is kept; make a "
               "validation split to select on held-out images")
    reasons["early_stopping.metric"] = why + "."
    reasons["early_stopping.patience"] = (f"{es.patience}: about 30 % of the epochs "
                                          "without improvement ends the run.")


def _mirroring(run: RunConfig, fp: dict, answer: str | None, reasons: dict) -> str:
    """Flips and rotation from the answer and the label offset; returns what the plan
    keeps off against a "yes", said plainly (empty when it follows the answer)."""
    from studio.ml.models.registry import get_spec

    spec = run.augment  # the augmentation spec: op -> {"enabled", "p", parameters}
    note = ""
    for op in ("hflip", "vflip", "rotation"):
        spec[op]["enabled"] = False
    run.training.tta = False
    if answer is None or answer == "no":
        why = ("off until the mirror question is answered: a flip or rotation is only safe "
               "when it cannot change the label." if answer is None else
               "off: you said a mirrored or rotated image may have another label (like a 6 "
               "and a 9, or text).")
        for op in ("hflip", "vflip", "rotation"):
            reasons[f"augment.{op}"] = why
        return note
    offset = fp.get("label_offset") or {}
    limit = offset.get("limit_px", OFFSET_PX)
    # compared as said (to a tenth of a pixel): 0.99 px measured is the 1.0 px reported
    rows = round(abs(offset.get("rows", 0.0)), 1) >= limit and \
        offset.get("agreement_rows", 0.0) >= OFFSET_AGREEMENT
    cols = round(abs(offset.get("cols", 0.0)), 1) >= limit and \
        offset.get("agreement_cols", 0.0) >= OFFSET_AGREEMENT
    spec["hflip"].update(enabled=not cols, p=0.5)
    spec["vflip"].update(enabled=not rows, p=0.5)
    n = offset.get("images", 0)
    if rows or cols:
        axis = "above" if rows and offset["rows"] > 0 else "below" if rows else (
            "left of" if offset["cols"] > 0 else "right of")
        amount = offset["rows"] if rows else offset["cols"]
        blocked = "an up-down" if rows else "a left-right"
        evidence = (f"the labels sit {abs(amount):.1f} px {axis} the structures they mark "
                    f"(in {n} image{'s' if n != 1 else ''} measured); {blocked} flip or a rotation would reverse "
                    "that offset and the model could not learn it")
        reasons["augment.vflip" if rows else "augment.hflip"] = f"off: {evidence}."
        reasons["augment.rotation"] = f"off: {evidence}."
        kept_off = ("flips and rotations" if rows and cols else
                    f"{'up-down' if rows else 'left-right'} flips and rotations")
        note = (f"You answered yes, but the recommendation keeps {kept_off} off: "
                f"{evidence}. Turn them on under Augmentation to train with them anyway.")
        if not (rows and cols):
            other = "augment.hflip" if rows else "augment.vflip"
            measured = abs(offset["cols"] if rows else offset["rows"])
            reasons[other] = (f"on: you said images may be mirrored, and the labels show no "
                              f"{'left-right' if rows else 'up-down'} offset of {limit:g} px "
                              f"or more ({measured:.1f} px measured).")
    else:
        spec["rotation"].update(enabled=True, p=0.2, degrees=[-180.0, 180.0])
        reasons["augment.hflip"] = "on: you said images may be mirrored."
        reasons["augment.vflip"] = "on: you said images may be mirrored."
        reasons["augment.rotation"] = ("on (any angle, 1 crop in 5, as nnU-Net): you said images"
                                       " may be rotated.")
    averages = task_of(fp["task"]).label_map or get_spec(run.model.name).averages_flips
    if averages and (spec["hflip"]["enabled"] or spec["vflip"]["enabled"]):
        run.training.tta = True
        reasons["tta"] = ("on: evaluation and prediction average over the flips the model was "
                          "trained with, a cheap gain in accuracy.")
    return note
