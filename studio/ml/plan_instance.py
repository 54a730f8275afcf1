"""The planner's rules for detection and instance data with many objects per image
(used by `studio.ml.plan`).

- How many objects a model may return per image (``model_options.detections_per_image``,
  and prediction's ``detection.max_detections``): the most objects in one training or
  validation image, and half as many again for held-out images denser still.
- Which instance method: the instance U-Net with its seeded watershed
  (``unet_instances``) for small, crowded or touching objects -- the per-pixel approach
  of the 2018 Data Science Bowl's winners, StarDist and Cellpose -- and Mask R-CNN for
  fewer, larger objects, where boxes first and masks second works well and the U-Net's
  receptive field would not cover an object.
"""

from __future__ import annotations

import math

from studio.ml.config import RunConfig
from studio.ml.tasks.instance import MAPS_SPLIT

CAPACITY_MARGIN = 1.5
CAPACITY_STEP = 50
SMALL_OBJECT_PX = 48  # median equivalent diameter at or below which objects are "small"
CROWDED_PER_IMAGE = 15  # median objects per image at or above which images are "crowded"
TOUCHING_SHARE = 0.15  # share of objects touching another at or above which they "touch"
# optimizer steps of the instance U-Net (batch 4 of 256-px crops, width 16, depth 4): one
# step took 1.06-1.1 s on one idle CPU thread here, so 1,200 steps and their validation
# fit in the half hour the DSB benchmark allows (benchmarks/bench_instance.py)
UNET_STEPS = 1200
# a step on two threads took 0.63 s against 1.1 s on one (1.77x, i.e. threads ** 0.82);
# more threads are assumed to keep that rate, up to THREADS_COUNTED of them
THREAD_EXPONENT = 0.82
THREADS_COUNTED = 8
# on a CPU computing bfloat16 natively, a step under bfloat16 autocast with channels_last
# took 0.335 s against 0.693 s in float32 (2.07x; two threads, DSB 2018's crops)
BF16_SPEEDUP = 2.0
VALIDATIONS = 20  # about this many validations a run (each chooses the split's thresholds)


def unet_steps(fp: dict, amp: bool = True) -> tuple[int, str]:
    """The instance U-Net's optimizer steps for the half hour on this device, and why
    (`amp`: the run trains under autocast, bfloat16 on a CPU that computes it)."""
    dev = fp["device"]
    threads = int(dev.get("threads") or 1)
    if dev["type"] != "cpu":
        return UNET_STEPS, f"about {UNET_STEPS} steps"
    counted = min(threads, THREADS_COUNTED)
    fast = bool(amp and dev.get("bf16"))
    steps = int(round(UNET_STEPS * counted ** THREAD_EXPONENT
                      * (BF16_SPEEDUP if fast else 1.0) / 100) * 100)
    if steps == UNET_STEPS:
        return steps, f"about {steps} steps"
    how = f"{counted} CPU thread{'s' if counted > 1 else ''}" + (" in bfloat16" if fast else "")
    return steps, f"about {steps} steps (a half hour on {how}: {UNET_STEPS} on one in float32)"


def detection_capacity(run: RunConfig, fp: dict, reasons: dict) -> None:
    """Let the model return, and prediction keep, as many objects per image as the data
    holds (DSB 2018 has 311 nuclei in one test image; COCO's habit is 100)."""
    stats = fp.get("object_stats") or {}
    most = int(stats.get("per_image_max", 0))
    need = int(math.ceil(most * CAPACITY_MARGIN / CAPACITY_STEP) * CAPACITY_STEP)
    options = run.model.options
    current = int(options.get("detections_per_image", 100))
    if need > current:
        options["detections_per_image"] = need
        reasons["model_options.detections_per_image"] = (
            f"{need}: one image holds {most} objects; the model may return half as many "
            f"again (the default {current} would drop objects of crowded images).")
    kept = int(run.detection.max_detections)
    if need > kept:
        run.detection.max_detections = need
        reasons["detection.max_detections"] = (
            f"{need}: one image holds {most} objects; prediction keeps half as many again "
            f"(the default {kept} would drop objects of crowded images).")


def _facts(stats: dict) -> str:
    return (f"objects are {stats['median_diameter']:.0f} px across (median), "
            f"{stats['per_image_median']:.0f} per image (median; at most "
            f"{stats['per_image_max']}), {stats['touching_fraction']:.0%} touch another")


def prefers_unet(stats: dict) -> bool:
    """Small objects that are crowded or touching: the per-pixel method's ground."""
    if not stats or not stats.get("median_diameter"):
        return False
    small = stats["median_diameter"] <= SMALL_OBJECT_PX
    crowded = stats["per_image_median"] >= CROWDED_PER_IMAGE
    touching = stats["touching_fraction"] >= TOUCHING_SHARE
    return small and (crowded or touching)


def choose_instance_method(run: RunConfig, fp: dict, reasons: dict) -> bool:
    """Switch `run` to the instance U-Net when the objects call for it (True), with the
    reasons; otherwise leave Mask R-CNN and say why (False)."""
    from studio.ml.config import apply_model_options, validate_config

    stats = fp.get("object_stats") or {}
    if not prefers_unet(stats):
        if stats.get("median_diameter"):
            reasons["model"] = (f"{run.model.name}: {_facts(stats)}; boxes first, then masks, "
                                "suits objects this large or this few (the instance U-Net is "
                                "for small crowded ones).")
        return False
    model = MAPS_SPLIT.models[0]
    # the engine's rule: the new model's options replace the old model's
    switched = validate_config(apply_model_options(run.to_dict(), model)).model
    run.model.name, run.model.options = switched.name, switched.options
    batch, crops = 4, 4
    run.data.image_size, run.data.resize_policy, run.data.samples_per_image = 256, "crop", crops
    run.data.crops_by_area = True
    run.training.batch_size = batch
    run.hardware.channels_last = True
    n_train = fp["images"]["labelled_by_split"].get(fp["splits"]["train"], 0)
    # each image gives its crops per 256-px square of its area (about: rounded per image)
    squares = max(n_train, round(fp["size"].get("total_pixels", 0) / 256 ** 2))
    steps = max(1, math.ceil(squares * crops / batch))
    budget, budget_text = unet_steps(fp, bool(run.hardware.amp))
    run.training.epochs = max(10, min(100, math.ceil(budget / steps)))
    run.training.val_every = max(2, math.ceil(run.training.epochs / VALIDATIONS))
    reasons["model"] = (f"{model}: {_facts(stats)}. A U-Net predicting foreground, "
                        "touching borders and distance, split by a seeded watershed, "
                        "separates small touching objects where a box detector's boxes "
                        "overlap (the method of the 2018 Data Science Bowl's winners), and "
                        "trains fast on a CPU. Its split thresholds are chosen on the "
                        "validation images as it trains.")
    reasons["epochs"] = (f"{run.training.epochs}: {run.training.epochs * steps} steps of "
                         f"{batch} crops of 256 px ({crops} crops per 256-px square of an "
                         f"image, about {steps} steps per epoch); the budget is "
                         f"{budget_text}, within 10 to 100 epochs.")
    reasons["crops_by_area"] = (f"yes: the training images hold about {squares} squares of "
                                f"256 px ({n_train} images); each gives {crops} crops per "
                                "square, so large crowded images are seen as densely as small "
                                "ones.")
    reasons["val_every"] = (f"{run.training.val_every}: about {VALIDATIONS} validations, each "
                            "choosing the split's thresholds, in the run.")
    reasons["channels_last"] = ("yes: the U-Net's convolutions run faster in this layout "
                                "(0.60 s against 0.69 s a step on a CPU, and with bfloat16 "
                                "autocast 0.34 s against 0.48 s).")
    return True
