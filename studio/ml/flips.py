"""Test-time flips: which flips a run averages over, and averaging a network's output
over flipped copies of its input (`studio.ml.inference` applies them for classification
and semantic runs; the instance U-Net averages its own maps). Torch only, so models may
use it without the config."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def tta_flips(spec: dict) -> list[tuple[int, ...]]:
    """The flips (tensor dims of an N×C×H×W batch) that TTA averages over for a run's
    augmentation spec (`RunConfig.augment`): identity, then each flip it enables (both
    together when horizontal and vertical are enabled)."""
    h = bool(spec.get("hflip", {}).get("enabled"))
    v = bool(spec.get("vflip", {}).get("enabled"))
    flips: list[tuple[int, ...]] = [()]
    if h:
        flips.append((3,))
    if v:
        flips.append((2,))
    if h and v:
        flips.append((2, 3))
    return flips


def flipped_views(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  flips: Sequence[tuple[int, ...]]):
    """`forward` of each flipped copy of `x`, flipped back where the output is a map
    (N, C, H, W); (N, K) outputs as they are."""
    for dims in flips:
        out = forward(x.flip(dims) if dims else x)
        yield out.flip(dims) if dims and out.ndim == 4 else out


def tta_forward(forward: Callable[[torch.Tensor], torch.Tensor],
                flips: Sequence[tuple[int, ...]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`forward` averaged over flipped copies of the input: log of the mean class
    probabilities (dim 1) of each view, flipped back. Works for (N, K) class logits (only
    the input is flipped) and for (N, K, H, W) logit maps."""
    flips = [tuple(f) for f in flips] or [()]

    def averaged(x: torch.Tensor) -> torch.Tensor:
        total = sum(out.float().softmax(1) for out in flipped_views(forward, x, flips))
        return (total / len(flips)).clamp_min(1e-12).log()

    return averaged
