"""One preprocessing path from a decoded image to the network and back, shared by the
validation of `fit`, `evaluate_run` and the `Predictor`: what evaluation measured is what
prediction gives.

Classification images go through the evaluation pipeline of `studio.ml.augment`
(resize / letterbox / centre crop, then normalisation), exactly as validation does.
Semantic images are normalised at their own size (`FullImageTransform`, `to_tensor`), and
`semantic_logits` fits them to the network as training did and maps the logits back:
- "crop": sliding window at native scale, Gaussian-weighted blending of overlapping tiles;
- "resize": stretched to image_size (antialiased bilinear, as the training transform);
- "letterbox": the longer side scaled to fit, centred, padded with black (the training
  transform's padding value), and the padded border cut off the logits again.
Logits come back at the image's original size, so metrics are measured on the labels the
person drew, not on a resized copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from studio.ml import augment
from studio.ml.config import RunConfig
from studio.ml.flips import tta_flips
from studio.ml.tasks import task_of


# --- normalisation -----------------------------------------------------------------------
def to_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 H×W or H×W×C -> normalised float (C, H, W)."""
    arr = image[..., None] if image.ndim == 2 else image
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (t - m) / s


class FullImageTransform:
    """uint8 image -> normalised float (C, H, W) at its own size; label map -> int64."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, image: np.ndarray, target):
        return (to_tensor(image, self.mean, self.std),
                torch.as_tensor(np.asarray(target), dtype=torch.int64))


def eval_transform(cfg: RunConfig, mean: Sequence[float], std: Sequence[float]):
    """The per-sample transform of validation and evaluation for `cfg`'s task."""
    if task_of(cfg.task).label_map:
        return FullImageTransform(mean, std)
    return augment.build_transforms(cfg.augment, cfg.task, cfg.data.image_size,
                                    train=False, mean=mean, std=std,
                                    resize_policy=cfg.data.resize_policy)


# --- fitting a semantic image to the network ---------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where an (h, w) image sits in the network's (H, W) input: scaled to (nh, nw) at
    (top, left)."""

    nh: int
    nw: int
    top: int
    left: int
    H: int
    W: int


def _hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])


def placement(h: int, w: int, image_size, policy: str) -> Placement:
    """The geometry the training transform gives an h × w image under `policy`
    ("resize" or "letterbox"; see `studio.ml.augment.SampleTransform`)."""
    H, W = _hw(image_size)
    if policy == "resize":
        return Placement(H, W, 0, 0, H, W)
    s = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * s))), max(1, min(W, round(w * s)))
    return Placement(nh, nw, (H - nh) // 2, (W - nw) // 2, H, W)


def _resized(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (h, w):
        return x
    return nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                                     antialias=True)


def fitted_input(x: torch.Tensor, place: Placement, mean: Sequence[float],
                 std: Sequence[float]) -> torch.Tensor:
    """A normalised (N, C, h, w) batch placed into the network's (N, C, H, W) input;
    the letterbox border gets the normalised value of black, as in training."""
    x = _resized(x, place.nh, place.nw)
    if (place.nh, place.nw) == (place.H, place.W):
        return x
    c = x.shape[1]
    m = torch.tensor(mean if len(mean) == c else list(mean) * c, dtype=x.dtype)
    s = torch.tensor(std if len(std) == c else list(std) * c, dtype=x.dtype)
    black = (-m / s).to(x.device)[None, :, None, None]
    out = black.expand(x.shape[0], c, place.H, place.W).clone()
    out[:, :, place.top:place.top + place.nh, place.left:place.left + place.nw] = x
    return out


def restored_logits(logits: torch.Tensor, place: Placement, h: int, w: int) -> torch.Tensor:
    """Network logits (N, K, H, W) cut to the image's placement and scaled back to (h, w)."""
    logits = logits[:, :, place.top:place.top + place.nh, place.left:place.left + place.nw]
    if tuple(logits.shape[-2:]) == (h, w):
        return logits
    return nn.functional.interpolate(logits.float(), size=(h, w), mode="bilinear",
                                     align_corners=False)


@torch.no_grad()
def semantic_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    cfg: RunConfig, mean: Sequence[float], std: Sequence[float],
                    overlap: float = 0.25, batch_size: int = 4) -> torch.Tensor:
    """Logits (1, K, h, w) of one normalised image (1, C, h, w) at its own size, fitted to
    the network by the config's resize policy (module docstring)."""
    h, w = x.shape[-2:]
    size, policy = cfg.data.image_size, cfg.data.resize_policy
    if policy == "crop":
        return sliding_window_logits(forward, x, max(_hw(size)), overlap, batch_size)
    place = placement(h, w, size, policy)
    return restored_logits(forward(fitted_input(x, place, mean, std)).float(), place, h, w)


def window_forward(forward: Callable[[torch.Tensor], torch.Tensor], cfg: RunConfig,
                   mean: Sequence[float], std: Sequence[float], overlap: float = 0.25
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
    """`semantic_logits` for a batch of same-size whole images (validation's forward)."""
    return lambda x: torch.cat([semantic_logits(forward, xi[None], cfg, mean, std, overlap)
                                for xi in x])


# --- sliding window ------------------------------------------------------------------
def window_positions(size: int, window: int, overlap: float) -> list[int]:
    if size <= window:
        return [0]
    stride = max(1, int(window * (1.0 - overlap)))
    n = math.ceil((size - window) / stride) + 1
    return sorted({int(round(i * (size - window) / (n - 1))) for i in range(n)})


def gaussian_weights(height: int, width: int, sigma_scale: float = 0.125) -> torch.Tensor:
    """A (H, W) Gaussian bump (max 1, never below 1e-3) for blending overlapping tiles."""
    def axis(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        return torch.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2)

    w = axis(height)[:, None] * axis(width)[None, :]
    return (w / w.max()).clamp_min(1e-3)


@torch.no_grad()
def sliding_window_logits(forward: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                          window: int, overlap: float = 0.25, batch_size: int = 4
                          ) -> torch.Tensor:
    """Logits (1, K, H, W) of a (1, C, H, W) image predicted in window×window tiles.

    Images smaller than the window are zero-padded (zero = the mean colour after
    normalisation) and the logits cropped back. Overlapping tiles are blended with
    Gaussian weights, which down-weights tile borders where context is missing.
    """
    if image.ndim == 3:
        image = image.unsqueeze(0)
    _, _, h, w = image.shape
    ph, pw = max(0, window - h), max(0, window - w)
    if ph or pw:
        image = nn.functional.pad(image, (0, pw, 0, ph))
    H, W = image.shape[-2:]
    ys, xs = window_positions(H, window, overlap), window_positions(W, window, overlap)
    th, tw = min(window, H), min(window, W)
    spots = [(y, x) for y in ys for x in xs]
    weight = gaussian_weights(th, tw).to(image.device)
    out: torch.Tensor | None = None
    norm = torch.zeros((1, 1, H, W), device=image.device)
    for start in range(0, len(spots), batch_size):
        chunk = spots[start:start + batch_size]
        tiles = torch.cat([image[..., y:y + th, x:x + tw] for y, x in chunk])
        logits = forward(tiles).float()
        if out is None:
            out = torch.zeros((1, logits.shape[1], H, W), device=image.device)
        for (y, x), tile in zip(chunk, logits, strict=True):
            out[0, :, y:y + th, x:x + tw] += tile * weight
            norm[0, 0, y:y + th, x:x + tw] += weight
    assert out is not None
    return (out / norm)[..., :h, :w]


# --- test-time augmentation -------------------------------------------------------------
def run_flips(run: RunConfig, tta: bool | None = None) -> list[tuple[int, ...]]:
    """The flips evaluation and prediction average over for a run: `tta_flips` of its
    augmentation when TTA is on (`tta`, or None for the config's "tta"), else the image
    as it is."""
    on = run.training.tta if tta is None else bool(tta)
    return tta_flips(run.augment) if on else [()]
