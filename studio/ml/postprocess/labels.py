"""Label-map steps: threshold and hysteresis, and what every label-map step shares.

Label maps are uint8 (H, W): value = class index, 255 = unlabelled. Probabilities are
float32 (C, H, W). Every step returns a new label map and leaves its input alone.

Where a step removes pixels from a class they become ``background`` (a class index), or
unlabelled when the recipe has no background class; where a step grows a class it only
takes background or unlabelled pixels, never another class's. The steps work with OpenCV
on uint8 maps, all classes in one pass where the result allows it (morphology), and only
on the few pixels that can change where it does not (components and holes, in
:mod:`studio.ml.postprocess.regions`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import cv2
import numpy as np

from studio.core.errors import ConfigError

UNLABELLED = 255
_BAND_PIXELS = 1 << 16  # threshold: per class plane
_MORPH_BAND_PIXELS = 1 << 18  # label-map chains: a band and its few temporaries in cache
_PARALLEL_PIXELS = 1 << 21  # below this, threads cost more than they save
T = TypeVar("T")
R = TypeVar("R")


def fill_value(background: int | None) -> int:
    """What removed pixels become: the background class, or unlabelled."""
    return UNLABELLED if background is None else int(background)


def resolve_classes(classes: Sequence[int] | None, num_classes: int,
                    background: int | None) -> list[int]:
    """The class indices a step works on: `classes`, or all but the background."""
    if classes is None:
        return [c for c in range(num_classes) if c != background]
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ConfigError(f"The recipe names class index {bad[0]}, but the model has "
                          f"{num_classes} classes (0..{num_classes - 1}).")
    return list(classes)


def count_classes(labels: np.ndarray) -> int:
    """One more than the largest class index in a label map (0 when all unlabelled)."""
    valid = labels[labels != UNLABELLED]
    return int(valid.max()) + 1 if valid.size else 0


def scalar(array: np.ndarray, value: float):
    """`value` as OpenCV's second operand for `array`. OpenCV takes a 1 x 1 array itself
    for a scalar, so against one the value goes as an array of the same type."""
    if array.shape[:2] == (1, 1):
        return np.full_like(array, value)
    return value


def compare(array: np.ndarray, value: float, op: int,
            dst: np.ndarray | None = None) -> np.ndarray:
    """0/255 uint8 mask of ``array <op> value`` (op: cv2.CMP_EQ, CMP_LT, ...). Equality
    on uint8 goes through inRange, several times faster there than compare."""
    if op == cv2.CMP_EQ and array.dtype == np.uint8:
        bound = scalar(array, value)
        return cv2.inRange(array, bound, bound, dst=dst)
    return cv2.compare(array, scalar(array, value), op, dst=dst)


def paint(labels: np.ndarray, mask: np.ndarray, value: int,
          scratch: np.ndarray | None = None) -> None:
    """labels[mask != 0] = value, in place (mask is 0/255 uint8; faster than indexing).
    `scratch`, an array like `mask` whose contents do not matter, saves an allocation."""
    inverse = cv2.bitwise_not(mask, dst=scratch)
    cv2.bitwise_and(labels, inverse, dst=labels)
    if value:
        cv2.bitwise_or(labels, cv2.min(mask, scalar(mask, value), dst=inverse), dst=labels)


def free_mask(labels: np.ndarray, fill: int, dst: np.ndarray | None = None) -> np.ndarray:
    """0/255 mask of pixels a growing class may take (background or unlabelled)."""
    free = compare(labels, UNLABELLED, cv2.CMP_EQ, dst=dst)
    if fill != UNLABELLED:
        cv2.bitwise_or(free, compare(labels, fill, cv2.CMP_EQ), dst=free)
    return free


def bounding_box(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """The rows and columns holding the mask's pixels, widened by `pad`; None if empty."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return None
    H, W = mask.shape
    return slice(max(y - pad, 0), min(y + h + pad, H)), slice(max(x - pad, 0), min(x + w + pad, W))


def parallel_map(fn: Callable[[T], R], items: Iterable[T], pixels: int) -> list[R]:
    """``[fn(x) for x in items]``, in threads when the work (`pixels` in all) is large
    enough to pay for them (OpenCV releases the GIL)."""
    items = list(items)
    workers = min(len(items), os.cpu_count() or 1, 4)
    if workers <= 1 or pixels < _PARALLEL_PIXELS:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def run_bands(height: int, width: int, halo: int,
              work: Callable[[int, int, int, int], None],
              band_pixels: int = _MORPH_BAND_PIXELS) -> None:
    """Call ``work(top, bottom, y0, y1)`` for bands of rows ``y0:y1`` that cover the
    image, each with `halo` rows of context either side (``top:bottom``, clipped to the
    image), in threads when the image is large. For chains of local operations: a band's
    arrays stay in the CPU cache and cost little to allocate, where full-size ones would
    stream through memory and fault in fresh pages at every step. A band's result is
    exact in its rows ``y0:y1`` when the chain reaches no further than `halo` rows (the
    band's cut edges then only disturb the context rows), and the image's own top and
    bottom are the band's edges, with OpenCV's border rules as for the whole image."""
    rows = max(1, band_pixels // max(width, 1), 2 * halo)
    bands = [(max(0, y - halo), min(height, y + rows + halo), y, min(height, y + rows))
             for y in range(0, height, rows)]
    parallel_map(lambda band: work(*band), bands, height * width)


# --- threshold -----------------------------------------------------------------------------
def threshold(probabilities: np.ndarray, mode: str = "argmax", min_confidence: float = 0.0,
              thresholds: float | Sequence[float] = 0.5, background: int | None = 0
              ) -> np.ndarray:
    """Probabilities (C, H, W) -> label map.

    ``argmax``: the most probable class (the first of equals); pixels whose top
    probability is below ``min_confidence`` are left unlabelled. ``per_class``: every
    class except the background competes; a class is a candidate where its probability
    exceeds its threshold (one number for all, or one per class), the most probable
    candidate wins, and pixels with no candidate get the background (or unlabelled
    without one).
    """
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ConfigError(f"Probabilities must be (classes, height, width), got {probs.shape}.")
    C, H, W = probs.shape
    if mode not in ("argmax", "per_class"):
        raise ConfigError(f"Unknown threshold mode {mode!r}; use 'argmax' or 'per_class'.")
    if H * W == 0:
        return np.full((H, W), 0 if mode == "argmax" else fill_value(background), np.uint8)
    if mode == "argmax":
        labels = np.zeros((H, W), np.uint8)
        # a running maximum in bands of rows that stay in the CPU cache; class c wins
        # where it beats the maximum so far, and every earlier winner is below c, so
        # labels = max(labels, c where it wins): two uint8 operations per class
        def band(top: int, bottom: int, y0: int, y1: int) -> None:
            p, out = probs[:, y0:y1], labels[y0:y1]
            best = p[0] if C == 1 else p[0].copy()
            for c in range(1, C):
                wins = cv2.compare(p[c], best, cv2.CMP_GT)
                cv2.max(out, cv2.min(wins, scalar(wins, c)), dst=out)
                if c < C - 1 or min_confidence > 0:
                    cv2.max(best, p[c], dst=best)
            if min_confidence > 0:
                cv2.max(out, compare(best, float(min_confidence), cv2.CMP_LT), dst=out)

        run_bands(H, W, 0, band, _BAND_PIXELS)
        return labels
    t = list(thresholds) if isinstance(thresholds, (list, tuple)) else [float(thresholds)] * C
    if len(t) != C:
        raise ConfigError(f"The threshold step gives {len(t)} thresholds for {C} classes.")
    fill = fill_value(background)
    labels = np.full((H, W), fill, np.uint8)
    best = np.zeros((H, W), np.float32)
    for c in range(C):
        if c == background:
            continue
        candidate = cv2.threshold(probs[c], float(t[c]), 0, cv2.THRESH_TOZERO)[1]
        paint(labels, cv2.compare(candidate, best, cv2.CMP_GT), c)
        cv2.max(best, candidate, dst=best)
    return labels


# --- hysteresis ----------------------------------------------------------------------------
def hysteresis(labels: np.ndarray, probabilities: np.ndarray, high: float = 0.8,
               low: float = 0.4, classes: Sequence[int] | None = None,
               background: int | None = 0) -> np.ndarray:
    """Region growing: for each class, pixels above ``high`` are seeds and the class is the
    8-connected regions of pixels above ``low`` that hold a seed. It replaces the class's
    previous extent (pixels of it outside those regions become background)."""
    out = labels.copy()
    probs = np.asarray(probabilities, dtype=np.float32)
    if out.size == 0:
        return out
    fill = fill_value(background)
    for c in resolve_classes(classes, probs.shape[0], background):
        p = probs[c]
        weak = compare(p, float(low), cv2.CMP_GE)
        paint(out, cv2.bitwise_and(compare(out, c, cv2.CMP_EQ), cv2.bitwise_not(weak)), fill)
        box = bounding_box(weak, 0)
        if box is None:
            continue
        n, cc = cv2.connectedComponents(weak[box], connectivity=8)
        seeded = cc[p[box] >= high]
        if seeded.size == 0:
            paint(out[box], compare(out[box], c, cv2.CMP_EQ), fill)
            continue
        keep = np.zeros(n, np.uint8)
        keep[np.unique(seeded)] = 255
        keep[0] = 0
        region = np.take(keep, cc)
        sub = out[box]
        lost = cv2.bitwise_and(compare(sub, c, cv2.CMP_EQ), cv2.bitwise_not(region))
        paint(sub, lost, fill)
        paint(sub, region, c)
    return out


