"""Metric readouts that follow post-processing sliders, per image and over a split.

Each image's figures are kept as counts (:class:`ImageStats`: a confusion matrix and the
boundary counts of :class:`studio.ml.tasks.semantic.metrics.BoundaryAccumulator`), so a split-wide
readout is a sum over cached counts, and a slider move recomputes only the images whose
mask changed, and for each only the recipe steps after the changed one
(:class:`studio.ml.postprocess.RecipeRunner`). Definitions as in
:mod:`studio.ml.tasks.semantic.metrics`; on top of them a prediction may leave pixels unlabelled
(255): they count against recall (a miss of the true class) and pixel accuracy, not
against any class's precision. Over a split, pixel figures pool the pixels, boundary F1
pools the contour counts, and HD95 is the mean of the per-image values. A
:class:`SplitReadout` measures the predicted contours' distances with a fast chamfer
transform by default (``precise_distances=False``; Hausdorff figures within 2 %, see
:mod:`studio.ml.readout_boundary`); evaluation and :func:`image_stats` use exact ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from studio.core.errors import ConfigError
from studio.ml.postprocess import RecipeRunner, threshold
from studio.ml.readout_boundary import TargetBoundaries
from studio.ml.tasks.semantic.metrics import BoundaryAccumulator, pixel_metrics_from_confusion

UNLABELLED = 255
_PER_CLASS = ("iou", "dice", "precision", "recall")


@dataclass(frozen=True)
class ImageStats:
    """One image's counts. ``confusion`` is (C, C + 1): rows the true class, columns the
    predicted class with a last column for unlabelled predictions."""

    confusion: np.ndarray
    band_inter: np.ndarray
    band_union: np.ndarray
    n_pred: np.ndarray
    n_true: np.ndarray
    hit_pred: np.ndarray
    hit_true: np.ndarray
    hd: np.ndarray  # per class; nan where the class is in neither mask
    hd95: np.ndarray
    tolerance: int
    boundary: bool


def image_stats(pred: np.ndarray, target: np.ndarray, num_classes: int,
                ignore_index: int = 255, tolerance: int = 2, boundary: bool = True,
                boundaries: TargetBoundaries | None = None) -> ImageStats:
    """Counts of a label map `pred` (255 = unlabelled) against `target` (H, W).

    `boundaries`: the label map's :class:`TargetBoundaries`, kept by callers that measure
    many predictions against the same label map (built here when not given)."""
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape or p.ndim != 2:
        raise ConfigError(f"Prediction {p.shape} and label map {t.shape} must be the same "
                          "(height, width).")
    c = int(num_classes)
    p = np.ascontiguousarray(p, dtype=np.uint8)
    t = np.ascontiguousarray(t, dtype=np.uint8)
    confusion = _confusion(p, t, c, ignore_index)
    if not boundary:
        zero, nan = np.zeros(c, np.int64), np.full(c, math.nan)
        return ImageStats(confusion, zero, zero, zero, zero, zero, zero, nan, nan, tolerance,
                          False)
    if boundaries is None:
        boundaries = TargetBoundaries(t, c, ignore_index, tolerance)
    b = boundaries.counts(p)
    return ImageStats(confusion, b.band_inter, b.band_union, b.n_pred, b.n_true, b.hit_pred,
                      b.hit_true, b.hd, b.hd95, tolerance, True)


def _confusion(p: np.ndarray, t: np.ndarray, c: int, ignore_index: int) -> np.ndarray:
    """(C, C + 1) counts; predictions >= C (unlabelled) go to the last column."""
    invalid = cv2.compare(t, ignore_index, cv2.CMP_EQ)
    wrong = cv2.bitwise_and(cv2.compare(t, c, cv2.CMP_GE), cv2.bitwise_not(invalid))
    if cv2.countNonZero(wrong):
        bad = int(t[wrong > 0].max())
        raise ConfigError(f"The label map holds class {bad}; the model has {c} classes.")
    pc = cv2.min(p, c)  # unlabelled (or unknown) predictions: the extra column
    if c * (c + 1) < 255:  # one 8-bit key per pixel, counted by a histogram
        key = cv2.add(cv2.multiply(t, c + 1), pc)
        cv2.bitwise_or(key, invalid, dst=key)  # ignored pixels -> 255, left out
        hist = cv2.calcHist([key], [0], None, [256], [0, 256]).ravel()
        return hist[:c * (c + 1)].astype(np.int64).reshape(c, c + 1)
    valid = invalid == 0
    key = t[valid].astype(np.int64) * (c + 1) + pc[valid]
    return np.bincount(key, minlength=c * (c + 1)).reshape(c, c + 1)


def readout(stats: ImageStats | Sequence[ImageStats]) -> dict[str, Any]:
    """Figures of one image or, pooled, of many: pixel_accuracy, per-class and mean iou,
    dice, precision, recall, boundary_f1, boundary_iou, hausdorff, hd95, unlabelled
    (share of valid pixels left unlabelled), pixels, images, confusion_matrix (C x C+1)."""
    items = [stats] if isinstance(stats, ImageStats) else list(stats)
    if not items:
        raise ConfigError("A readout needs at least one image.")
    c = items[0].confusion.shape[0]
    cm = np.sum([s.confusion for s in items], axis=0)
    square = np.zeros((c + 1, c + 1), np.int64)
    square[:c] = cm
    base = pixel_metrics_from_confusion(square)
    out: dict[str, Any] = {"pixel_accuracy": base["pixel_accuracy"]}
    for key in _PER_CLASS:
        values = base[key][:c]
        out[key] = values
        out[f"mean_{key}"] = _nanmean(values)
    total = int(cm.sum())
    out["unlabelled"] = float(cm[:, c].sum() / total) if total else math.nan
    out["pixels"] = total
    out["images"] = len(items)
    out["support"] = [int(v) for v in cm.sum(axis=1)]
    out["confusion_matrix"] = cm.tolist()
    if items[0].boundary:
        acc = BoundaryAccumulator(c, items[0].tolerance)
        for name in ("band_inter", "band_union", "n_pred", "n_true", "hit_pred", "hit_true"):
            setattr(acc, name, np.sum([getattr(s, name) for s in items], axis=0))
        acc.hd = [[float(s.hd[k]) for s in items if not math.isnan(s.hd[k])] for k in range(c)]
        acc.hd95 = [[float(s.hd95[k]) for s in items if not math.isnan(s.hd95[k])]
                    for k in range(c)]
        out.update(acc.compute())
    return out


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else math.nan


def compare(before: dict, after: dict) -> dict[str, float]:
    """after - before for every scalar figure both have (for coloured change readouts)."""
    return {k: after[k] - before[k] for k, v in before.items()
            if isinstance(v, float) and isinstance(after.get(k), float)}


class SplitReadout:
    """Cached predictions of a split (or one image) and their readouts under a recipe.

    ``targets``: label maps (H, W) uint8 (255 = not labelled there); ``probabilities``:
    (C, H, W) float32 per image; ``images``: the images, needed by the CRF and
    superpixel steps. "before" is the plain argmax, computed once; "after" follows
    :meth:`update`. One instance is meant to live in one worker (not thread-safe);
    ``threads`` > 1 spreads the images of an update over that many threads.
    """

    def __init__(self, targets: Sequence[np.ndarray], probabilities: Sequence[np.ndarray],
                 images: Sequence[np.ndarray | None] | None = None, ignore_index: int = 255,
                 tolerance: int = 2, boundary: bool = True, threads: int = 1,
                 precise_distances: bool = False) -> None:
        if len(targets) != len(probabilities) or not targets:
            raise ConfigError(f"Give one label map per probability map ({len(targets)} vs "
                              f"{len(probabilities)}), at least one.")
        images = list(images) if images is not None else [None] * len(targets)
        self.num_classes = int(np.asarray(probabilities[0]).shape[0])
        self.targets = [np.asarray(t) for t in targets]
        self.ignore_index, self.tolerance, self.boundary = ignore_index, tolerance, boundary
        self.threads = max(1, int(threads))
        self.boundaries = self._map(lambda i: TargetBoundaries(
            self.targets[i], self.num_classes, ignore_index, tolerance, precise_distances)
            if boundary else None)
        self.runners = [RecipeRunner(p, image=img) for p, img in zip(probabilities, images,
                                                                      strict=True)]
        for r in self.runners:
            if r.num_classes != self.num_classes:
                raise ConfigError("All probability maps of a split must have the same classes.")
        raw = self._map(lambda i: threshold(self.runners[i].probabilities))
        self._raw = raw
        self.before = self._map(lambda i: self._stats(raw[i], i))
        self.masks = list(raw)
        self.after = list(self.before)

    def __len__(self) -> int:
        return len(self.targets)

    def _stats(self, mask: np.ndarray, i: int) -> ImageStats:
        return image_stats(mask, self.targets[i], self.num_classes, self.ignore_index,
                           self.tolerance, self.boundary, self.boundaries[i])

    def _map(self, fn: Callable[[int], Any], indices: Sequence[int] | None = None) -> list:
        idx = range(len(self.targets)) if indices is None else indices
        if self.threads == 1 or len(idx) < 2:
            return [fn(i) for i in idx]
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(fn, idx))

    def update(self, recipe: dict, indices: Sequence[int] | None = None,
               cancelled: Callable[[], bool] | None = None) -> bool:
        """Apply `recipe` to the given images (default all) and refresh their figures.

        Returns False when `cancelled()` turned true midway (the images done so far keep
        their new figures); a newer request should then call update again.
        """
        todo = list(range(len(self))) if indices is None else list(indices)

        def one(i: int):
            if cancelled is not None and cancelled():
                return None
            mask = self.runners[i].run(recipe)
            if np.array_equal(mask, self.masks[i]):
                return mask, self.after[i]
            return mask, self._stats(mask, i)

        results = self._map(one, todo)
        done = True
        for i, res in zip(todo, results, strict=True):
            if res is None:
                done = False
                continue
            self.masks[i], self.after[i] = res
        return done

    def set_mask(self, index: int, mask: np.ndarray) -> None:
        """Replace one image's post-processed mask (e.g. after a brush edit)."""
        mask = np.asarray(mask, dtype=np.uint8)
        self.masks[index] = mask
        self.after[index] = self._stats(mask, index)

    def image(self, index: int) -> dict[str, dict]:
        """{"before": readout, "after": readout, "change": after - before} of one image."""
        b, a = readout(self.before[index]), readout(self.after[index])
        return {"before": b, "after": a, "change": compare(b, a)}

    def split(self) -> dict[str, Any]:
        """Split-wide before/after/change readouts plus per-image mean Dice lists."""
        b, a = readout(self.before), readout(self.after)
        return {"before": b, "after": a, "change": compare(b, a),
                "dice_before": [image_dice(s) for s in self.before],
                "dice_after": [image_dice(s) for s in self.after]}


def image_dice(stats: ImageStats) -> float:
    """Mean Dice over the classes present in the image's prediction or label."""
    cm = stats.confusion
    c = cm.shape[0]
    tp = np.diag(cm[:, :c]).astype(np.float64)
    fn = cm.sum(axis=1) - tp
    fp = cm[:, :c].sum(axis=0) - tp
    den = 2 * tp + fp + fn
    present = den > 0
    return float(np.mean(2 * tp[present] / den[present])) if present.any() else math.nan
