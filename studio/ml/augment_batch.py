"""Batch-level augmentation: mixup and cutmix on a collated batch (on its device).

Classification: torchvision's ``v2.MixUp`` / ``v2.CutMix``; targets become soft (N, C)
probabilities. To keep the loss code simple, whenever mixup or cutmix is enabled the
targets are *always* returned soft (one-hot when no mix was drawn for the batch).
When both are enabled, each batch picks one of them at random, then applies it with its
own probability ``p``.

Semantic segmentation: cutmix only (mixup would blend two label maps into no valid
one): a random box of a shuffled copy of the batch is pasted into images and masks
alike, so masks stay hard int64 labels aligned with their images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from studio.core.errors import ConfigError
from studio.ml.augment_spec import AugmentSpec, Mix
from studio.ml.tasks import TASKS, task_of


def _beta(alpha: float) -> float:
    """lam ~ Beta(alpha, alpha) from torch's RNG (seedable like the rest)."""
    sample = torch._sample_dirichlet(torch.tensor([alpha, alpha]))
    return float(sample[0])


def cutmix_box(h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """A box (y0, y1, x0, x1) of about (1 - lam) * h * w pixels at a random centre."""
    r = (1.0 - lam) ** 0.5
    ch, cw = int(round(h * r)), int(round(w * r))
    cy = int(torch.randint(0, h, (1,)))
    cx = int(torch.randint(0, w, (1,)))
    y0, y1 = max(cy - ch // 2, 0), min(cy + (ch - ch // 2), h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + (cw - cw // 2), w)
    return y0, y1, x0, x1


class BatchAugment:
    """Callable ``(images (N, C, H, W), targets) -> (images, targets)``."""

    def __init__(self, spec: AugmentSpec | dict | None, task: str, num_classes: int) -> None:
        if task not in TASKS or not task_of(task).batch_mixing:
            raise ConfigError(f"unknown task {task!r}; use 'classification' or 'semantic'")

        spec = AugmentSpec.of(spec)
        self.task, self.num_classes = task, num_classes
        # images with one label each mix labels too; label maps are cut and pasted
        self._image_label = task_of(task).image_label
        self.mixup: Mix = spec.mixup
        self.cutmix: Mix = spec.cutmix
        if not self._image_label and self.mixup.enabled:
            raise ConfigError("mixup works for classification only; for segmentation "
                              "disable it and use cutmix")
        if self._image_label and num_classes < 2:
            raise ConfigError("mixup/cutmix need at least two classes")
        self._ops = [op for op in ("mixup", "cutmix") if spec.op(op).enabled]
        if self._image_label:
            self._mixup_tf = v2.MixUp(alpha=self.mixup.alpha, num_classes=num_classes)
            self._cutmix_tf = v2.CutMix(alpha=self.cutmix.alpha, num_classes=num_classes)

    @property
    def enabled(self) -> bool:
        """Whether this does anything (otherwise the trainer may skip it)."""
        return bool(self._ops)

    @property
    def soft_targets(self) -> bool:
        """True when classification targets come back as (N, C) probabilities."""
        return self._image_label and self.enabled

    def _pick(self) -> str | None:
        if not self._ops:
            return None
        op = self._ops[int(torch.randint(0, len(self._ops), (1,)))]
        p = (self.mixup if op == "mixup" else self.cutmix).p
        return op if float(torch.rand(1)) < p else None

    def __call__(self, images: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._ops:
            return images, targets
        if images.ndim != 4:
            raise ConfigError(f"batch augmentation needs (N, C, H, W) images, got "
                              f"{tuple(images.shape)}")
        op = self._pick()
        if self._image_label:
            if targets.is_floating_point():
                raise ConfigError("targets are soft already; apply batch augmentation once")
            if op is None:
                return images, F.one_hot(targets.long(), self.num_classes).to(images.dtype)
            tf = self._mixup_tf if op == "mixup" else self._cutmix_tf
            images, soft = tf(images, targets.long())
            return images, soft.to(images.dtype)
        if op is None or images.shape[0] < 2:
            return images, targets
        lam = _beta(self.cutmix.alpha)
        y0, y1, x0, x1 = cutmix_box(images.shape[-2], images.shape[-1], lam)
        perm = torch.randperm(images.shape[0], device=images.device)
        images, targets = images.clone(), targets.clone()
        images[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
        targets[..., y0:y1, x0:x1] = targets[perm, ..., y0:y1, x0:x1]
        return images, targets
