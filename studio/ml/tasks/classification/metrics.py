"""Classification metrics from a confusion matrix (same definitions as scikit-learn with
``labels=range(num_classes)`` and ``zero_division=0``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.core.errors import ConfigError, DataError


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are true classes, columns predictions."""
    t = np.asarray(y_true).astype(np.int64, copy=False).ravel()
    p = np.asarray(y_pred).astype(np.int64, copy=False).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items but y_pred has {p.size}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise DataError(f"{name} holds labels outside 0..{num_classes - 1}; check that the "
                            "class list matches the labels.")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def metrics_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class and macro/micro/weighted precision, recall, F1 from counts."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)  # true counts
    predicted = cm.sum(axis=0).astype(np.float64)
    total = float(cm.sum())
    precision = _div(tp, predicted)
    recall = _div(tp, support)
    f1 = _div(2 * tp, support + predicted)
    accuracy = float(tp.sum() / total) if total else 0.0
    micro_p = float(_div(tp.sum(), predicted.sum()))
    micro_r = float(_div(tp.sum(), support.sum()))
    micro_f1 = float(_div(2 * tp.sum(), support.sum() + predicted.sum()))
    out: dict[str, Any] = {
        "accuracy": accuracy,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(s) for s in support],
        "macro_precision": float(precision.mean()) if len(tp) else 0.0,
        "macro_recall": float(recall.mean()) if len(tp) else 0.0,
        "macro_f1": float(f1.mean()) if len(tp) else 0.0,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": micro_f1,
        "confusion_matrix": cm.tolist(),
    }
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"weighted_{name}"] = float(_div((values * support).sum(), support.sum()))
    return out


def classification_metrics(y_true: Any, y_pred: Any, num_classes: int) -> dict[str, Any]:
    """Metrics of predicted class indices ``y_pred`` against ``y_true`` (both length N).

    Keys: accuracy; precision/recall/f1/support (lists per class); macro_*, micro_*,
    weighted_* precision/recall/f1; confusion_matrix (rows = true class). Undefined
    ratios (zero division) are 0.0.
    """
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


class ClassificationMeter:
    """Streaming confusion matrix for the training loop (kept on the input's device)."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ConfigError(f"A metric needs at least one class, got {num_classes}; add a "
                              "class first.")
        self.num_classes = num_classes
        self.confusion: torch.Tensor | None = None  # int64 (C, C); all_reduce it for DDP

    def reset(self) -> None:
        self.confusion = None

    def update(self, logits_or_preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits (N, C) or predicted indices (N,); target (N,) or soft (N, C)."""
        c = self.num_classes
        preds = logits_or_preds.detach()
        if preds.ndim == 2:
            preds = preds.argmax(dim=1) if preds.shape[1] > 1 else (preds[:, 0] > 0).long()
        target = target.detach()
        if target.ndim == 2:
            target = target.argmax(dim=1)
        preds, target = preds.long().flatten(), target.long().to(preds.device).flatten()
        if preds.shape != target.shape:
            raise ValueError(f"{preds.numel()} predictions for {target.numel()} targets")
        bad = (target < 0) | (target >= c) | (preds < 0) | (preds >= c)
        if bool(bad.any()):
            raise DataError(f"Labels outside 0..{c - 1} in a classification batch; check that "
                            "the class list matches the labels.")
        counts = torch.bincount(target * c + preds, minlength=c * c).reshape(c, c)
        self.confusion = counts if self.confusion is None else self.confusion + counts

    def merge(self, other: ClassificationMeter) -> None:
        """Add another meter's counts (e.g. another process's share of the images)."""
        if other.confusion is not None:
            counts = other.confusion if self.confusion is None else other.confusion.to(
                self.confusion.device)
            self.confusion = counts.clone() if self.confusion is None else self.confusion + counts

    def compute(self) -> dict[str, Any]:
        """:func:`classification_metrics` of everything seen since the last reset."""
        if self.confusion is None:
            cm = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        else:
            cm = self.confusion.cpu().numpy()
        return metrics_from_confusion(cm)
