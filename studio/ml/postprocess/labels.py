"""Label-map steps: threshold, hysteresis, morphology, connected components, hole filling.

Label maps are uint8 (H, W): value = class index, 255 = unlabelled. Probabilities are
float32 (C, H, W). Every step returns a new label map and leaves its input alone.

Where a step removes pixels from a class they become ``background`` (a class index), or
unlabelled when the recipe has no background class; where a step grows a class it only
takes background or unlabelled pixels, never another class's. Work is done inside each
class's bounding box (plus the kernel's reach), with OpenCV on uint8 masks: a 1024 x 1024
map with five classes costs a few milliseconds per step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from studio.core.errors import ConfigError

UNLABELLED = 255
_BAND_PIXELS = 1 << 16
_SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}
_OPS = {"erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE, "open": cv2.MORPH_OPEN,
        "close": cv2.MORPH_CLOSE}


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


def _paint(labels: np.ndarray, mask: np.ndarray, value: int) -> None:
    """labels[mask != 0] = value, in place (mask is 0/255 uint8; faster than indexing)."""
    cv2.bitwise_and(labels, cv2.bitwise_not(mask), dst=labels)
    cv2.bitwise_or(labels, cv2.bitwise_and(mask, np.full_like(mask, value)), dst=labels)


def _free(labels: np.ndarray, fill: int) -> np.ndarray:
    """0/255 mask of pixels a growing class may take (background or unlabelled)."""
    free = cv2.compare(labels, UNLABELLED, cv2.CMP_EQ)
    if fill != UNLABELLED:
        cv2.bitwise_or(free, cv2.compare(labels, fill, cv2.CMP_EQ), dst=free)
    return free


def _component_mask(cc: np.ndarray, count: int, chosen: np.ndarray) -> np.ndarray:
    """0/255 mask of the chosen component ids of a labelling (one table lookup)."""
    lut = np.zeros(count, np.uint8)
    lut[chosen] = 255
    return np.take(lut, cc)


def _labelled(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, labels, areas): connected components and their pixel counts. 16-bit labels
    counted with a histogram are several times faster than OpenCV's WithStats variant;
    more than 65535 components fall back to 32-bit labels."""
    try:
        count, cc = cv2.connectedComponents(mask, connectivity=connectivity, ltype=cv2.CV_16U)
    except cv2.error:  # too many components for 16-bit labels
        count, cc = cv2.connectedComponents(mask, connectivity=connectivity)
        return count, cc, np.bincount(cc.ravel(), minlength=count)
    hist = cv2.calcHist([cc], [0], None, [count], [0, count])
    return count, cc, hist.ravel().astype(np.int64)


def _box(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return None
    H, W = mask.shape
    return slice(max(y - pad, 0), min(y + h + pad, H)), slice(max(x - pad, 0), min(x + w + pad, W))


# --- threshold -----------------------------------------------------------------------------
def threshold(probabilities: np.ndarray, mode: str = "argmax", min_confidence: float = 0.0,
              thresholds: float | Sequence[float] = 0.5, background: int | None = 0
              ) -> np.ndarray:
    """Probabilities (C, H, W) -> label map.

    ``argmax``: the most probable class; pixels whose top probability is below
    ``min_confidence`` are left unlabelled. ``per_class``: every class except the
    background competes; a class is a candidate where its probability exceeds its threshold
    (one number for all, or one per class), the most probable candidate wins, and pixels
    with no candidate get the background (or unlabelled without one).
    """
    probs = np.asarray(probabilities, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ConfigError(f"Probabilities must be (classes, height, width), got {probs.shape}.")
    C = probs.shape[0]
    if mode == "argmax":
        labels = np.zeros(probs.shape[1:], np.uint8)
        # in bands of rows, so that the running maximum stays in the CPU cache
        step = max(1, _BAND_PIXELS // max(probs.shape[2], 1))
        for y in range(0, probs.shape[1], step):
            band = probs[:, y:y + step]
            out = labels[y:y + step]
            best = band[0].copy()
            for c in range(1, C):
                _paint(out, cv2.compare(band[c], best, cv2.CMP_GT), c)
                cv2.max(best, band[c], dst=best)
            if min_confidence > 0:
                _paint(out, cv2.compare(best, float(min_confidence), cv2.CMP_LT), UNLABELLED)
        return labels
    if mode != "per_class":
        raise ConfigError(f"Unknown threshold mode {mode!r}; use 'argmax' or 'per_class'.")
    t = list(thresholds) if isinstance(thresholds, (list, tuple)) else [float(thresholds)] * C
    if len(t) != C:
        raise ConfigError(f"The threshold step gives {len(t)} thresholds for {C} classes.")
    fill = fill_value(background)
    labels = np.full(probs.shape[1:], fill, np.uint8)
    best = np.zeros(probs.shape[1:], np.float32)
    for c in range(C):
        if c == background:
            continue
        candidate = cv2.threshold(probs[c], float(t[c]), 0, cv2.THRESH_TOZERO)[1]
        _paint(labels, cv2.compare(candidate, best, cv2.CMP_GT), c)
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
    fill = fill_value(background)
    for c in resolve_classes(classes, probs.shape[0], background):
        p = probs[c]
        weak = cv2.compare(p, float(low), cv2.CMP_GE)
        _paint(out, cv2.bitwise_and(cv2.compare(out, c, cv2.CMP_EQ), cv2.bitwise_not(weak)), fill)
        box = _box(weak, 0)
        if box is None:
            continue
        n, cc = cv2.connectedComponents(weak[box], connectivity=8)
        seeded = cc[p[box] >= high]
        if seeded.size == 0:
            _paint(out[box], cv2.compare(out[box], c, cv2.CMP_EQ), fill)
            continue
        keep = np.zeros(n, np.uint8)
        keep[np.unique(seeded)] = 255
        keep[0] = 0
        region = np.take(keep, cc)
        sub = out[box]
        lost = cv2.bitwise_and(cv2.compare(sub, c, cv2.CMP_EQ), cv2.bitwise_not(region))
        _paint(sub, lost, fill)
        _paint(sub, region, c)
    return out


# --- morphology ----------------------------------------------------------------------------
def morphology(labels: np.ndarray, operation: str = "open", kernel_size: int = 3,
               shape: str = "ellipse", iterations: int = 1,
               classes: Sequence[int] | None = None, background: int | None = 0,
               num_classes: int | None = None) -> np.ndarray:
    """Erode, dilate, open or close each class's mask with a (kernel_size)^2 kernel."""
    if operation not in _OPS or shape not in _SHAPES:
        raise ConfigError(f"Unknown morphology {operation!r} / kernel shape {shape!r}.")
    out = labels.copy()
    if kernel_size <= 1 and shape != "cross":
        return out
    kernel = cv2.getStructuringElement(_SHAPES[shape], (kernel_size, kernel_size))
    reach = (kernel_size // 2 + 1) * iterations * (2 if operation in ("open", "close") else 1)
    fill = fill_value(background)
    n = num_classes if num_classes is not None else _count_classes(labels)
    for c in resolve_classes(classes, n, background):
        mask = cv2.compare(out, c, cv2.CMP_EQ)
        box = _box(mask, reach)
        if box is None:
            continue
        before = mask[box]
        after = cv2.morphologyEx(before, _OPS[operation], kernel, iterations=iterations)
        sub = out[box]
        removed = cv2.bitwise_and(before, cv2.bitwise_not(after))
        added = cv2.bitwise_and(cv2.bitwise_and(after, cv2.bitwise_not(before)), _free(sub, fill))
        _paint(sub, removed, fill)
        _paint(sub, added, c)
    return out


def _count_classes(labels: np.ndarray) -> int:
    valid = labels[labels != UNLABELLED]
    return int(valid.max()) + 1 if valid.size else 0


# --- connected components ------------------------------------------------------------------
def components(labels: np.ndarray, min_size: int = 0, keep_largest: int = 0,
               connectivity: int = 8, classes: Sequence[int] | None = None,
               background: int | None = 0, num_classes: int | None = None) -> np.ndarray:
    """Per class: drop connected components under ``min_size`` pixels and keep only the
    ``keep_largest`` largest (0 = all). ``connectivity`` 4 keeps diagonal neighbours apart,
    8 joins them. Classes are independent here, so they are labelled in parallel threads
    (OpenCV releases the GIL)."""
    out = labels.copy()
    if min_size <= 1 and keep_largest <= 0:
        return out
    fill = fill_value(background)
    n = num_classes if num_classes is not None else _count_classes(labels)

    def dropped(c: int):
        mask = cv2.compare(labels, c, cv2.CMP_EQ)
        box = _box(mask, 0)
        if box is None:
            return None
        count, cc, all_areas = _labelled(mask[box], connectivity)
        areas = all_areas[1:]
        keep = areas >= min_size
        if keep_largest > 0 and keep.sum() > keep_largest:
            order = np.argsort(-areas, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            keep &= rank < keep_largest
        if keep.all():
            return None
        return box, _component_mask(cc, count, np.nonzero(~keep)[0] + 1)

    todo = resolve_classes(classes, n, background)
    workers = min(len(todo), os.cpu_count() or 1, 4)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(dropped, todo))
    else:
        results = [dropped(c) for c in todo]
    for res in results:
        if res is not None:
            _paint(out[res[0]], res[1], fill)
    return out


# --- fill holes ----------------------------------------------------------------------------
def fill_holes(labels: np.ndarray, max_area: int | None = 64,
               classes: Sequence[int] | None = None, background: int | None = 0,
               num_classes: int | None = None) -> np.ndarray:
    """Fill holes: a hole is a 4-connected region of background or unlabelled pixels that
    does not touch the image border and whose neighbours all belong to one class (one of
    ``classes``); holes of at most ``max_area`` pixels (None = any size) join that class.

    One components pass over the background finds the holes of every class at once.
    """
    out = labels.copy()
    fill = fill_value(background)
    n = num_classes if num_classes is not None else _count_classes(labels)
    wanted = np.zeros(256, bool)
    wanted[resolve_classes(classes, n, background)] = True
    free = _free(out, fill)
    count, cc, areas = _labelled(free, 4)
    if count <= 1:
        return out
    candidate = np.ones(count, bool)
    candidate[0] = False  # not free
    for edge_ids in (cc[0], cc[-1], cc[:, 0], cc[:, -1]):  # open to the image border
        candidate[edge_ids] = False
    if max_area is not None:
        candidate &= areas <= max_area
    if not candidate.any():
        return out
    # Each free pixel next to the classes sees the smallest and largest class code among
    # its 4-neighbours (code = class + 1). A hole is enclosed by one class when all its
    # edge pixels see one code: sum(lo) == sum(hi) and n * sum(hi^2) == sum(hi)^2.
    code = cv2.bitwise_and(cv2.add(out, 1), cv2.bitwise_not(free))  # free -> 0
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    hi_map = cv2.dilate(code, cross)
    lo_map = cv2.erode(cv2.bitwise_or(code, free), cross)  # free -> 255 (never the minimum)
    edge = cv2.bitwise_and(free, cv2.compare(hi_map, 0, cv2.CMP_GT))
    points = cv2.findNonZero(edge)
    if points is None:
        return out
    xs, ys = points[:, 0, 0], points[:, 0, 1]
    ids = cc[ys, xs]
    keep = candidate[ids]
    ids, ys, xs = ids[keep], ys[keep], xs[keep]
    hi = hi_map[ys, xs].astype(np.float64)
    lo = lo_map[ys, xs].astype(np.float64)
    n = np.bincount(ids, minlength=count).astype(np.float64)
    s_hi = np.bincount(ids, weights=hi, minlength=count)
    s_lo = np.bincount(ids, weights=lo, minlength=count)
    q_hi = np.bincount(ids, weights=hi * hi, minlength=count)
    # (relative tolerance: float64 sums are exact only below 2^53; a two-class rim
    # differs by more than 1e-13 for any hole under 10^8 pixels)
    one_class = (candidate & (n > 0) & (s_hi == s_lo)
                 & (np.abs(n * q_hi - s_hi * s_hi) <= 1e-13 * s_hi * s_hi))
    enclosing = np.where(n > 0, np.rint(s_hi / np.maximum(n, 1)), 0).astype(np.int64) - 1
    one_class &= wanted[np.clip(enclosing, 0, 255)] & (enclosing >= 0)
    if not one_class.any():
        return out
    for c in np.unique(enclosing[one_class]):
        _paint(out, _component_mask(cc, count, np.nonzero(one_class & (enclosing == c))[0]),
               int(c))
    return out
    # the enclosing pixels: each 4-neighbour of a candidate hole that is not free
    box = _box(cv2.compare(np.take(candidate.view(np.uint8), cc), 0, cv2.CMP_GT), 1)
    assert box is not None
    sub_cc, sub = cc[box], out[box]
    holes = np.where(candidate[sub_cc], sub_cc, 0).astype(np.float32)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    near = cv2.dilate(holes, cross).astype(np.int64)  # the (largest) hole id next door
    ring = (near > 0) & (holes == 0)
    hole_id, cls = near[ring], sub[ring].astype(np.int64)
    lo = np.full(count, 256, np.int64)
    hi = np.full(count, -1, np.int64)
    np.minimum.at(lo, hole_id, cls)
    np.maximum.at(hi, hole_id, cls)
    enclosing = np.where(lo == hi, lo, 0)
    ok = np.zeros(count, bool)
    ok[ids] = (lo[ids] == hi[ids]) & wanted[np.clip(enclosing[ids], 0, 255)]
    if not ok.any():
        return out
    lut = np.where(ok, enclosing, 0).astype(np.uint8)
    target = np.take(lut, sub_cc)
    mask = np.where(np.take(ok, sub_cc), 255, 0).astype(np.uint8)
    _paint(sub, mask, 0)
    cv2.bitwise_or(sub, cv2.bitwise_and(target, mask), dst=sub)
    return out
