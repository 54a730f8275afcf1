"""Morphology of label maps: erode, dilate, open or close each class's mask.

The step's meaning is per class, in the order of ``classes``: a class loses the pixels
its operation removes (they become the background, or unlabelled) and gains the pixels
it adds that are still background or unlabelled when its turn comes. For a symmetric
kernel (OpenCV's odd-sized ones) the classes do not need turns:

- erode/open: a pixel stays eroded while every pixel under the kernel holds its class,
  i.e. the minimum and maximum of the label map under the kernel are equal; the opening
  is the dilation of all eroded pixels at once (an opened class stays inside itself, so
  the classes cannot collide);
- dilate: a free pixel goes to the first class under the kernel, the minimum of the
  classes' ranks under it (an erosion of the rank map);
- close: with up to 8 classes, each pixel holds the set of classes as bits; the
  dilation ORs the sets under the kernel, the erosion ANDs them, and a free pixel goes
  to the first class left in its set (kernels of up to 25 pixels; beyond, or with more
  classes, one class at a time).

These run in bands of rows with the kernel's reach as context, in threads on large maps.
A kernel that is not symmetric, or classes that name the background or a class twice,
take the plain per-class turns.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from studio.core.errors import ConfigError
from studio.ml.postprocess.labels import (
    bounding_box,
    compare,
    count_classes,
    fill_value,
    free_mask,
    paint,
    resolve_classes,
    run_bands,
    scalar,
)

_SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}
_OPS = {"erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE, "open": cv2.MORPH_OPEN,
        "close": cv2.MORPH_CLOSE}
_NONE = 255  # rank of a pixel outside the classes worked on
_MAX_SHIFTS = 25  # kernels with more pixels are cheaper one class at a time
_LOWEST_BIT = np.array([0] + [(v & -v).bit_length() - 1 for v in range(1, 256)], np.intp)


def _first_class(todo: list[int]) -> np.ndarray:
    """Table from a class set (bit i = todo[i]) to the set's first class (0: empty)."""
    class_of = np.asarray(todo, np.uint8)[np.minimum(_LOWEST_BIT, len(todo) - 1)]
    class_of[0] = 0
    return class_of


def morphology(labels: np.ndarray, operation: str = "open", kernel_size: int = 3,
               shape: str = "ellipse", iterations: int = 1,
               classes: Sequence[int] | None = None, background: int | None = 0,
               num_classes: int | None = None) -> np.ndarray:
    """Erode, dilate, open or close each class's mask with a (kernel_size)^2 kernel."""
    if operation not in _OPS or shape not in _SHAPES:
        raise ConfigError(f"Unknown morphology {operation!r} / kernel shape {shape!r}.")
    out = labels.copy()
    if (kernel_size <= 1 and shape != "cross") or out.size == 0:
        return out
    kernel = cv2.getStructuringElement(_SHAPES[shape], (kernel_size, kernel_size))
    fill = fill_value(background)
    n = num_classes if num_classes is not None else count_classes(labels)
    todo = resolve_classes(classes, n, background)
    if not todo:
        return out
    symmetric = kernel_size % 2 == 1 and np.array_equal(kernel, kernel[::-1, ::-1])
    if not symmetric or fill in todo or len(set(todo)) < len(todo):
        return _per_class(out, operation, kernel, iterations, todo, fill)
    if operation == "close" and (len(todo) > 8 or cv2.countNonZero(kernel) > _MAX_SHIFTS):
        return _close(out, labels, kernel, iterations, todo, fill)
    rank_of = np.full(256, _NONE, np.uint8)
    rank_of[todo] = np.arange(len(todo))
    radius = kernel.shape[0] // 2 * iterations
    steps = {"erode": _shrink, "open": _shrink, "dilate": _grow, "close": _close_sets}

    def band(top: int, bottom: int, y0: int, y1: int) -> None:
        # a band's rows y0:y1 of `out` are its own: threads never share a pixel
        result = steps[operation](labels[top:bottom], rank_of, operation, kernel, iterations,
                                  todo, fill)
        np.copyto(out[y0:y1], result[y0 - top:y1 - top])

    run_bands(*labels.shape, radius * (1 if operation in ("erode", "dilate") else 2), band)
    return out


def _reach(kernel: np.ndarray, iterations: int, operation: str) -> int:
    return (max(kernel.shape) // 2 + 1) * iterations * (2 if operation in ("open", "close") else 1)


def _per_class(out: np.ndarray, operation: str, kernel: np.ndarray, iterations: int,
               todo: list[int], fill: int) -> np.ndarray:
    """Each class in turn, inside its bounding box widened by the kernel's reach."""
    reach = _reach(kernel, iterations, operation)
    for c in todo:
        mask = compare(out, c, cv2.CMP_EQ)
        box = bounding_box(mask, reach)
        if box is None:
            continue
        before = mask[box]
        after = cv2.morphologyEx(before, _OPS[operation], kernel, iterations=iterations)
        sub = out[box]
        removed = cv2.bitwise_and(before, cv2.bitwise_not(after))
        added = cv2.bitwise_and(cv2.bitwise_and(after, cv2.bitwise_not(before)),
                                free_mask(sub, fill))
        paint(sub, removed, fill)
        paint(sub, added, c)
    return out


def _shrink(labels: np.ndarray, rank_of: np.ndarray, operation: str, kernel: np.ndarray,
            iterations: int, todo: list[int], fill: int) -> np.ndarray:
    """Erode or open all classes at once (OpenCV's constant border: outside the image
    neither erodes nor grows a class, as in the per-class operation)."""
    ranks = cv2.LUT(labels, rank_of)
    working = cv2.compare(ranks, scalar(ranks, _NONE), cv2.CMP_NE)
    low, high = np.empty_like(ranks), np.empty_like(ranks)
    kept = ranks
    for _ in range(iterations):
        cv2.erode(kept, kernel, dst=low)
        cv2.dilate(kept, kernel, dst=high)
        cv2.compare(low, high, cv2.CMP_NE, dst=low)
        cv2.bitwise_or(kept, low, dst=kept)  # a mixed neighbourhood: no class stays here
    cv2.compare(kept, scalar(kept, _NONE), cv2.CMP_NE, dst=kept)
    if operation == "open":
        cv2.dilate(kept, kernel, dst=low, iterations=iterations)
        kept = low
    cv2.bitwise_not(kept, dst=kept)
    cv2.bitwise_and(working, kept, dst=working)  # removed
    out = labels.copy()
    paint(out, working, fill, scratch=high)
    return out


def _grow(labels: np.ndarray, rank_of: np.ndarray, operation: str, kernel: np.ndarray,
          iterations: int, todo: list[int], fill: int) -> np.ndarray:
    """Dilate all classes at once: a free pixel takes the first class that reaches it."""
    ranks = cv2.LUT(labels, rank_of)
    first = cv2.erode(ranks, kernel, iterations=iterations)
    cv2.bitwise_not(first, dst=first)  # rank r -> 255 - r, none -> 0
    class_of = np.zeros(256, np.uint8)
    class_of[256 - len(todo):] = todo[::-1]
    return _give(labels.copy(), first, class_of, fill, ranks)


def _give(out: np.ndarray, chosen: np.ndarray, class_of: np.ndarray, fill: int,
          scratch: np.ndarray) -> np.ndarray:
    """Free pixels of `out` take ``class_of[chosen]`` where `chosen` is not 0 (class_of
    maps 1..255 to classes). Overwrites `chosen` and `scratch`."""
    added = cv2.threshold(chosen, 0, 255, cv2.THRESH_BINARY, dst=scratch)[1]
    cv2.bitwise_and(added, free_mask(out, fill), dst=added)
    paint(out, added, 0)
    cv2.LUT(chosen, class_of, dst=chosen)
    cv2.bitwise_and(chosen, added, dst=chosen)
    cv2.bitwise_or(out, chosen, dst=out)
    return out


def _shifted(kernel: np.ndarray, height: int, width: int):
    """For each offset (dy, dx) of the kernel but its centre: the slices of the pixels
    whose neighbour at that offset is inside the image, and of those neighbours."""
    a = kernel.shape[0] // 2
    for dy, dx in zip(*np.nonzero(kernel), strict=True):
        dy, dx = int(dy) - a, int(dx) - a
        if dy or dx:
            yield ((slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx))),
                   (slice(max(0, dy), height + min(0, dy)), slice(max(0, dx), width + min(0, dx))))


def _close_sets(labels: np.ndarray, rank_of: np.ndarray, operation: str,
                kernel: np.ndarray, iterations: int, todo: list[int], fill: int) -> np.ndarray:
    """Close up to 8 classes at once on class sets (one bit per class, in turn order)."""
    bit_of = np.zeros(256, np.uint8)
    bit_of[todo] = [1 << i for i in range(len(todo))]
    sets, spare = cv2.LUT(labels, bit_of), np.empty_like(labels)
    shifts = list(_shifted(kernel, *labels.shape))
    for combine in (cv2.bitwise_or, cv2.bitwise_and):  # dilate (outside: no class), erode
        for _ in range(iterations):  # (outside: ignored)
            np.copyto(spare, sets)
            for target, source in shifts:
                combine(spare[target], sets[source], dst=spare[target])
            sets, spare = spare, sets
    return _give(labels.copy(), sets, _first_class(todo), fill, spare)


def _close(out: np.ndarray, labels: np.ndarray, kernel: np.ndarray, iterations: int,
           todo: list[int], fill: int) -> np.ndarray:
    """Close one class at a time; a closing never removes a class's own pixels, so each
    class's mask is its mask in the input, and only the free pixels need keeping up."""
    reach = _reach(kernel, iterations, "close")
    free = free_mask(out, fill)
    for c in todo:
        mask = compare(labels, c, cv2.CMP_EQ)
        box = bounding_box(mask, reach)
        if box is None:
            continue
        closed = cv2.morphologyEx(mask[box], cv2.MORPH_CLOSE, kernel, iterations=iterations)
        added = cv2.bitwise_and(closed, free[box])
        if cv2.countNonZero(added):
            paint(out[box], added, c)
            sub = free[box]
            cv2.bitwise_and(sub, cv2.bitwise_not(added), dst=sub)
    return out
