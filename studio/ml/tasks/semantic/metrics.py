"""Semantic segmentation metrics: overlap from a confusion matrix, boundary quality and
Hausdorff distances per class.

Definitions (all per class c; pixels whose target is ``ignore_index`` are removed from
both prediction and target before anything is counted):

* iou = TP / (TP + FP + FN), dice = 2TP / (2TP + FP + FN), precision = TP / (TP + FP),
  recall = TP / (TP + FN). A class absent from both prediction and target gets ``nan``
  in every per-class list and is left out of the means (``mean_iou`` etc. average the
  classes present in the prediction or the target). Otherwise a zero denominator gives
  0.0 (e.g. the precision of a class that is in the target but never predicted).
* The contour of a binary mask is its pixels with a 8-neighbour outside the mask or on
  the image border (mask minus its 3x3 erosion, outside the image counting as empty).
* boundary_iou (Cheng et al. 2021): IoU of the bands "mask minus its erosion by
  ``tolerance`` pixels" of prediction and target.
* boundary_f1 (BF score, Csurka et al. 2013): precision = share of predicted contour
  pixels within ``tolerance`` (Euclidean) of a target contour pixel, recall the converse.
* hausdorff: symmetric Hausdorff distance between the two contour pixel sets (pixels);
  hd95: 95th percentile of the pooled directed contour distances (both directions, as
  in MedPy). When only one of the two masks is empty the distance is the image diagonal.

Over several images (a 3-D input or a meter): boundary_iou and boundary_f1 pool their
counts over all images; hausdorff / hd95 are the mean of the per-image values over the
images where the class is present.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch

from studio.core.errors import ConfigError, DataError
from studio.ml.tasks import IGNORE_INDEX

_KERNEL = np.ones((3, 3), np.uint8)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else float("nan")


def pixel_metrics_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """pixel_accuracy, per-class iou/dice/precision/recall and their means from counts."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    present = (tp + fp + fn) > 0
    total = float(cm.sum())

    def ratio(num: np.ndarray, den: np.ndarray) -> list[float]:
        out = []
        for n, d, p in zip(num, den, present, strict=True):
            out.append(float("nan") if not p else (float(n / d) if d else 0.0))
        return out

    iou = ratio(tp, tp + fp + fn)
    dice = ratio(2 * tp, 2 * tp + fp + fn)
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "iou": iou,
        "mean_iou": _nanmean(iou),
        "dice": dice,
        "mean_dice": _nanmean(dice),
        "precision": precision,
        "mean_precision": _nanmean(precision),
        "recall": recall,
        "mean_recall": _nanmean(recall),
        "support": [int(s) for s in cm.sum(axis=1)],
        "confusion_matrix": cm.tolist(),
    }


def _erode(mask: np.ndarray, iterations: int) -> np.ndarray:
    return cv2.erode(mask, _KERNEL, iterations=iterations, borderType=cv2.BORDER_CONSTANT,
                     borderValue=0)


def _distance_to(points: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of every pixel to the nearest nonzero pixel of ``points``.

    OpenCV's precise L2 transform works in float32; squared distances between pixels are
    integers, so rounding the square and taking a float64 root restores full precision.
    """
    d = cv2.distanceTransform((points == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(d.astype(np.float64) ** 2))


class BoundaryAccumulator:
    """Per-class boundary IoU, boundary F1, Hausdorff and HD95 over a stream of images."""

    def __init__(self, num_classes: int, tolerance: int = 2) -> None:
        if not isinstance(tolerance, int) or tolerance < 0:
            raise ConfigError(f"The boundary tolerance must be a whole number of pixels >= 0, "
                              f"got {tolerance!r}.")
        self.num_classes = num_classes
        self.tolerance = tolerance
        c = num_classes
        self.band_inter = np.zeros(c, np.int64)
        self.band_union = np.zeros(c, np.int64)
        self.n_pred = np.zeros(c, np.int64)  # contour pixels
        self.n_true = np.zeros(c, np.int64)
        self.hit_pred = np.zeros(c, np.int64)  # contour pixels within tolerance
        self.hit_true = np.zeros(c, np.int64)
        self.hd: list[list[float]] = [[] for _ in range(c)]
        self.hd95: list[list[float]] = [[] for _ in range(c)]

    def merge(self, other: BoundaryAccumulator) -> None:
        """Add another accumulator's statistics."""
        for name in ("band_inter", "band_union", "n_pred", "n_true", "hit_pred", "hit_true"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in zip(self.hd + self.hd95, other.hd + other.hd95, strict=True):
            mine.extend(theirs)

    def add(self, pred: np.ndarray, target: np.ndarray, valid: np.ndarray) -> None:
        """Add one image: ``pred``/``target`` int HxW, ``valid`` bool HxW."""
        h, w = target.shape
        diagonal = math.hypot(h, w)
        band = max(self.tolerance, 1)
        for c in range(self.num_classes):
            p_full = (pred == c) & valid
            t_full = (target == c) & valid
            both = p_full | t_full
            if not both.any():
                continue
            ys, xs = np.nonzero(both)
            y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, h)
            x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, w)
            p = p_full[y0:y1, x0:x1].astype(np.uint8)
            t = t_full[y0:y1, x0:x1].astype(np.uint8)
            pb, tb = p & (1 - _erode(p, band)), t & (1 - _erode(t, band))
            self.band_inter[c] += int(np.count_nonzero(pb & tb))
            self.band_union[c] += int(np.count_nonzero(pb | tb))
            pc = (p & (1 - _erode(p, 1))).astype(bool)
            tc = (t & (1 - _erode(t, 1))).astype(bool)
            self.n_pred[c] += int(pc.sum())
            self.n_true[c] += int(tc.sum())
            if not pc.any() or not tc.any():
                self.hd[c].append(diagonal)
                self.hd95[c].append(diagonal)
                continue
            d_pt = _distance_to(tc)[pc]  # predicted contour -> target contour
            d_tp = _distance_to(pc)[tc]
            self.hit_pred[c] += int((d_pt <= self.tolerance).sum())
            self.hit_true[c] += int((d_tp <= self.tolerance).sum())
            self.hd[c].append(float(max(d_pt.max(), d_tp.max())))
            self.hd95[c].append(float(np.percentile(np.concatenate([d_pt, d_tp]), 95)))

    def compute(self) -> dict[str, Any]:
        biou, bf1, hd, hd95 = [], [], [], []
        for c in range(self.num_classes):
            seen = bool(self.hd[c])
            if not seen:
                biou.append(float("nan"))
                bf1.append(float("nan"))
            else:
                union = self.band_union[c]
                biou.append(float(self.band_inter[c] / union) if union else 0.0)
                prec = self.hit_pred[c] / self.n_pred[c] if self.n_pred[c] else 0.0
                rec = self.hit_true[c] / self.n_true[c] if self.n_true[c] else 0.0
                bf1.append(float(2 * prec * rec / (prec + rec)) if prec + rec else 0.0)
            hd.append(float(np.mean(self.hd[c])) if seen else float("nan"))
            hd95.append(float(np.mean(self.hd95[c])) if seen else float("nan"))
        return {
            "boundary_iou": biou,
            "mean_boundary_iou": _nanmean(biou),
            "boundary_f1": bf1,
            "mean_boundary_f1": _nanmean(bf1),
            "boundary_tolerance": self.tolerance,
            "hausdorff": hd,
            "mean_hausdorff": _nanmean(hd),
            "hd95": hd95,
            "mean_hd95": _nanmean(hd95),
        }


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_labels(pred: np.ndarray, target: np.ndarray, valid: np.ndarray, c: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    for name, arr in (("prediction", pred[valid]), ("target", target[valid])):
        if arr.size and (arr.min() < 0 or arr.max() >= c):
            raise DataError(f"The {name} holds labels outside 0..{c - 1} (and the ignore index); "
                            "check that the class list matches the label maps.")


def segmentation_metrics(
    pred: Any,
    target: Any,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
    boundary_tolerance: int = 2,
    boundary: bool = True,
) -> dict[str, Any]:
    """All segmentation metrics of label maps ``pred`` vs ``target`` (HxW or NxHxW).

    Keys: pixel_accuracy, iou, mean_iou, dice, mean_dice, precision, mean_precision,
    recall, mean_recall, support, confusion_matrix and (``boundary=True``) boundary_iou,
    boundary_f1, hausdorff, hd95 with their means. See the module docstring.
    """
    p = _as_numpy(pred).astype(np.int64, copy=False)
    t = _as_numpy(target).astype(np.int64, copy=False)
    valid = t != ignore_index
    _check_labels(p, t, valid, num_classes)
    c = num_classes
    cm = np.bincount(t[valid] * c + p[valid], minlength=c * c).reshape(c, c)
    out = pixel_metrics_from_confusion(cm)
    if boundary:
        acc = BoundaryAccumulator(num_classes, boundary_tolerance)
        if p.ndim == 2:
            p, t, valid = p[None], t[None], valid[None]
        for pi, ti, vi in zip(p, t, valid, strict=True):
            acc.add(pi, ti, vi)
        out.update(acc.compute())
    return out


class SegmentationMeter:
    """Streaming segmentation metrics: a confusion matrix on the batch's device (torch
    bincount), plus per-image boundary statistics on the CPU when ``boundary`` is True."""

    def __init__(
        self, num_classes: int, ignore_index: int = IGNORE_INDEX, boundary: bool = False,
        boundary_tolerance: int = 2,
    ) -> None:
        if num_classes < 1:
            raise ConfigError(f"A metric needs at least one class, got {num_classes}; add a "
                              "class first.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.boundary = boundary
        self.boundary_tolerance = boundary_tolerance
        self.reset()

    def reset(self) -> None:
        self.confusion: torch.Tensor | None = None  # int64 (C, C); all_reduce it for DDP
        self._boundary = BoundaryAccumulator(self.num_classes, self.boundary_tolerance)

    def update(self, logits_or_preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits (N, C, H, W) or label maps (N, H, W); target (N, H, W)."""
        c = self.num_classes
        preds = logits_or_preds.detach()
        if preds.ndim == 4:
            preds = preds.argmax(dim=1) if preds.shape[1] > 1 else (preds[:, 0] > 0)
        preds = preds.long()
        target = target.detach().long().to(preds.device)
        if preds.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(preds.shape)} and target {tuple(target.shape)} differ"
            )
        valid = target != self.ignore_index
        t, p = target[valid], preds[valid]
        if bool(((t < 0) | (t >= c) | (p < 0) | (p >= c)).any()):
            raise DataError(f"Labels outside 0..{c - 1} (and the ignore index) in a batch; "
                            "check that the class list matches the label maps.")
        counts = torch.bincount(t * c + p, minlength=c * c).reshape(c, c)
        self.confusion = counts if self.confusion is None else self.confusion + counts
        if self.boundary:
            pn, tn, vn = preds.cpu().numpy(), target.cpu().numpy(), valid.cpu().numpy()
            if pn.ndim == 2:
                pn, tn, vn = pn[None], tn[None], vn[None]
            for pi, ti, vi in zip(pn, tn, vn, strict=True):
                self._boundary.add(pi, ti, vi)

    def merge(self, other: SegmentationMeter) -> None:
        """Add another meter's counts (e.g. another process's share of the images)."""
        if other.confusion is not None:
            counts = other.confusion if self.confusion is None else other.confusion.to(
                self.confusion.device)
            self.confusion = counts.clone() if self.confusion is None else self.confusion + counts
        self._boundary.merge(other._boundary)

    def compute(self) -> dict[str, Any]:
        """Metrics of everything seen since the last reset (keys as segmentation_metrics)."""
        c = self.num_classes
        cm = np.zeros((c, c), np.int64) if self.confusion is None else self.confusion.cpu().numpy()
        out = pixel_metrics_from_confusion(cm)
        if self.boundary:
            out.update(self._boundary.compute())
        return out
