"""Loss functions for classification and semantic segmentation, built from a config dict.

Every loss is an ``nn.Module`` called as ``loss(logits, target)``:

* classification: logits (N, C); target int64 (N,) class indices, or float (N, C) soft
  targets (from mixup/cutmix, rows summing to 1);
* semantic: logits (N, C, H, W); target int64 (N, H, W) with ``ignore_index`` pixels,
  which are excluded from every loss (value and gradient).

Probability-based losses (dice, jaccard, mse, mae, and bce's targets) use softmax over
the classes, or a sigmoid when C == 1 (binary, target 0/1). ``mse``/``mae`` compare the
predicted probabilities with the one-hot (or soft) target (the Brier score for mse).
When a batch has no valid pixel at all, every loss returns 0 (with a gradient graph).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from studio.core.errors import ConfigError, TrainingError
from studio.ml.config.schema import LOSS_NAMES, LossConfig
from studio.ml.tasks import IGNORE_INDEX, TASKS, task_of


def _valid_mask(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Check a hard or soft target against ``logits``; the bool mask of valid items."""
    c = logits.shape[1]
    if target.is_floating_point() and target.shape == logits.shape:
        return torch.ones(target.shape[:1] + target.shape[2:], dtype=torch.bool,
                          device=target.device)
    if target.is_floating_point() or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise TrainingError(
            f"target of shape {tuple(target.shape)} ({target.dtype}) does not fit logits of "
            f"shape {tuple(logits.shape)}"
        )
    valid = target != ignore_index
    top = 1 if c == 1 else c - 1
    bad = valid & ((target < 0) | (target > top))
    if bool(bad.any()):
        value = int(target[bad].flatten()[0])
        raise TrainingError(
            f"target label {value} is out of range for {c} output(s) (ignore index "
            f"{ignore_index}); check the number of classes"
        )
    return valid


def _prepare(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target as class probabilities shaped like ``logits`` and a float mask of valid items.

    Works for (N, C) and (N, C, *spatial) logits; hard targets have shape (N, *spatial).
    """
    valid = _valid_mask(logits, target, ignore_index)
    if target.is_floating_point():
        return target.to(logits.dtype), valid.to(logits.dtype)
    safe = torch.where(valid, target, torch.zeros_like(target))
    if logits.shape[1] == 1:
        probs = safe.unsqueeze(1).to(logits.dtype)
    else:
        probs = F.one_hot(safe, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    return probs, valid.to(logits.dtype)


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits) if logits.shape[1] == 1 else logits.softmax(dim=1)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean of per-item ``values`` over valid items; 0 (keeping the graph) when none."""
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def _class_weight_view(weights: torch.Tensor | None, ndim: int) -> torch.Tensor | None:
    if weights is None:
        return None
    return weights.view((1, -1) + (1,) * (ndim - 2))


class _Base(nn.Module):
    def __init__(self, num_classes: int, ignore_index: int, class_weights: list | None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        w = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", w, persistent=False)


class CrossEntropyLoss(_Base):
    """Softmax cross entropy (sigmoid BCE when C == 1); hard or soft targets."""

    def __init__(self, num_classes, ignore_index, class_weights=None, label_smoothing=0.0):
        super().__init__(num_classes, ignore_index, class_weights)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == 1:
            return BCELoss(1, self.ignore_index, None).forward(logits, target)
        w = self.class_weights
        valid = _valid_mask(logits, target, self.ignore_index)
        if target.is_floating_point():
            return F.cross_entropy(logits, target, weight=w,
                                   label_smoothing=self.label_smoothing)
        per = F.cross_entropy(logits, target, weight=w, ignore_index=self.ignore_index,
                              label_smoothing=self.label_smoothing, reduction="none")
        # the mean of F.cross_entropy (sum w_t l / sum w_t), but 0 when nothing is valid
        if w is None:
            denom = valid.sum().to(per.dtype)
        else:
            safe = torch.where(valid, target, torch.zeros_like(target))
            denom = (w.to(per.dtype)[safe] * valid).sum()
        return per.sum() / denom.clamp_min(1e-12)


class BCELoss(_Base):
    """Per-class sigmoid BCE against the one-hot (or soft) target; class weights scale
    each class's term. Mean over valid items x classes."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs, valid = _prepare(logits, target, self.ignore_index)
        per = F.binary_cross_entropy_with_logits(logits, probs, reduction="none")
        w = _class_weight_view(self.class_weights, logits.ndim)
        if w is not None:
            per = per * w
        return _masked_mean(per.mean(dim=1), valid, logits)


class FocalLoss(_Base):
    """Multi-class focal loss: -sum_c w_c t_c (1 - p_c)^gamma log p_c (Lin et al. 2017)."""

    def __init__(self, num_classes, ignore_index, class_weights=None, gamma=2.0):
        super().__init__(num_classes, ignore_index, class_weights)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs, valid = _prepare(logits, target, self.ignore_index)
        if logits.shape[1] == 1:  # binary: two-class form on [1 - p, p]
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
            probs = torch.cat([1 - probs, probs], dim=1)
        logp = logits.log_softmax(dim=1)
        per = -probs * (1 - logp.exp()).pow(self.gamma) * logp
        w = _class_weight_view(self.class_weights, logits.ndim)
        if w is not None and w.shape[1] == per.shape[1]:
            per = per * w
        return _masked_mean(per.sum(dim=1), valid, logits)


class _OverlapLoss(_Base):
    """1 - mean over classes of the soft Dice (or Jaccard) index over the whole batch."""

    def __init__(self, num_classes, ignore_index, class_weights=None, smooth=1.0,
                 jaccard=False):
        super().__init__(num_classes, ignore_index, class_weights)
        self.smooth = smooth
        self.jaccard = jaccard

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot, valid = _prepare(logits, target, self.ignore_index)
        probs = _probabilities(logits) * valid.unsqueeze(1)
        onehot = onehot * valid.unsqueeze(1)
        dims = [0] + list(range(2, logits.ndim))
        inter = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        if self.jaccard:
            score = (inter + self.smooth) / (total - inter + self.smooth)
        else:
            score = (2 * inter + self.smooth) / (total + self.smooth)
        w = self.class_weights
        loss = 1 - score
        if w is not None:
            return (loss * w).sum() / w.sum()
        return loss.mean()


class CEDiceLoss(nn.Module):
    """cross_entropy + dice_weight * dice."""

    def __init__(self, ce: nn.Module, dice: nn.Module, dice_weight: float) -> None:
        super().__init__()
        self.ce, self.dice, self.dice_weight = ce, dice, dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.ce(logits, target) + self.dice_weight * self.dice(logits, target)


class ProbabilityErrorLoss(_Base):
    """Mean squared (or absolute) error between probabilities and the target, per class."""

    def __init__(self, num_classes, ignore_index, class_weights=None, squared=True):
        super().__init__(num_classes, ignore_index, class_weights)
        self.squared = squared

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot, valid = _prepare(logits, target, self.ignore_index)
        diff = _probabilities(logits) - onehot
        per = diff.square() if self.squared else diff.abs()
        w = _class_weight_view(self.class_weights, logits.ndim)
        if w is not None:
            per = per * w
        return _masked_mean(per.mean(dim=1), valid, logits)


def loss_settings(cfg: LossConfig | dict[str, Any] | None, task: str) -> LossConfig:
    """The typed loss settings: `cfg` itself, or a (partial) JSON "loss" section checked
    by the run config's validator (its defaults are the schema's)."""
    if isinstance(cfg, LossConfig):
        return cfg
    if task not in TASKS or task_of(task).is_detection:
        raise ConfigError(f"unknown task {task!r}; use 'classification' or 'semantic'")
    from studio.ml.config import validate_config

    return validate_config({"task": task, "loss": dict(cfg or {})}).loss


def default_loss(task: str) -> dict[str, Any]:
    """The default loss section of ``task``'s JSON config."""
    return dataclasses.asdict(loss_settings(None, task))


def build_loss(
    cfg: LossConfig | dict[str, Any] | None, task: str, num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> nn.Module:
    """Build the loss `cfg` describes (a LossConfig, or a JSON "loss" section)."""
    loss = loss_settings(cfg, task)
    weights = loss.class_weights
    if weights is not None and len(weights) != num_classes:
        raise ConfigError(f"'loss.class_weights' has {len(weights)} values for {num_classes} "
                          "classes; give one weight per class.", path="loss.class_weights")
    args = (num_classes, ignore_index, weights)
    name, smoothing = loss.name, loss.label_smoothing
    if name == "cross_entropy":
        return CrossEntropyLoss(*args, label_smoothing=smoothing)
    if name == "bce":
        return BCELoss(*args)
    if name == "focal":
        return FocalLoss(*args, gamma=loss.focal_gamma)
    if name in ("dice", "jaccard"):
        return _OverlapLoss(*args, smooth=loss.smooth, jaccard=name == "jaccard")
    if name == "ce_dice":
        ce = CrossEntropyLoss(*args, label_smoothing=smoothing)
        return CEDiceLoss(ce, _OverlapLoss(*args, smooth=loss.smooth), loss.dice_weight)
    if name in ("mse", "mae"):
        return ProbabilityErrorLoss(*args, squared=name == "mse")
    raise ConfigError(f"unknown loss {name!r}; choose one of: {', '.join(LOSS_NAMES)}",
                      path="loss.name")
