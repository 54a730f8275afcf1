"""Inference with a trained run: class probabilities, or per-pixel probability maps at
each image's original size.

Semantic models trained on crops (resize policy "crop") see native-scale images, so large
images are predicted tile by tile (sliding window, Gaussian-weighted blending of the
logits where tiles overlap): a 4096×4096 image never goes through the network whole.
Models trained on resized images ("resize", "letterbox") get the image scaled the same
way, and their logits are scaled back to the original size.

Test-time augmentation (config "tta": true, or the `tta` argument): the network also sees
the image mirrored by each flip it was trained with (the "hflip" / "vflip" ops of its
augmentation spec, and both together when both are on) and the class probabilities are
averaged. The model then returns log-probabilities instead of logits, so softmax and
argmax still give the averaged probabilities and labels. It costs one forward pass per
view (up to 4) and usually removes some of the noise along thin structures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from studio.ml.checkpoints import load_checkpoint, run_checkpoint
from studio.ml.devices import memory_format, resolve_device
from studio.ml.engine import make_model


@dataclass
class PredictionResult:
    """One image's prediction. Classification: `probabilities` (C,). Semantic:
    `probabilities` (C, H, W) float32 at the original size and `label_map` (H, W) uint8
    (value = position of the class in `class_names`)."""

    image: str
    image_id: int | None
    task: str
    class_names: list[str]
    probabilities: np.ndarray
    label_map: np.ndarray | None = field(default=None, repr=False)

    @property
    def class_index(self) -> int:
        return int(np.argmax(self.probabilities)) if self.task == "classification" else -1

    @property
    def class_name(self) -> str:
        return self.class_names[self.class_index] if self.task == "classification" else ""


# --- sliding window ------------------------------------------------------------------
def _positions(size: int, window: int, overlap: float) -> list[int]:
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
    ys, xs = _positions(H, window, overlap), _positions(W, window, overlap)
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
def tta_flips(config: dict) -> list[tuple[int, ...]]:
    """The flips (tensor dims of an N×C×H×W batch) that TTA averages over for a run's
    config: identity, then each flip enabled in its augmentation spec (both together when
    horizontal and vertical are enabled)."""
    spec = config.get("augment", {})
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


def tta_forward(forward: Callable[[torch.Tensor], torch.Tensor],
                flips: Sequence[tuple[int, ...]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`forward` averaged over flipped copies of the input: log of the mean class
    probabilities (dim 1) of each view, flipped back. Works for (N, K) class logits (only
    the input is flipped) and for (N, K, H, W) logit maps."""
    flips = [tuple(f) for f in flips] or [()]

    def averaged(x: torch.Tensor) -> torch.Tensor:
        total = None
        for dims in flips:
            out = forward(x.flip(dims) if dims else x).float()
            if dims and out.ndim == 4:
                out = out.flip(dims)
            probs = out.softmax(1)
            total = probs if total is None else total + probs
        assert total is not None
        return (total / len(flips)).clamp_min(1e-12).log()

    return averaged


# --- loading a run's model -------------------------------------------------------------
def load_run_model(project, run_id: int, which: str = "best", device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, dict]:
    """The run's model (eval mode, on `device`) and what prediction needs to know about it."""
    path = run_checkpoint(project, run_id, which)
    ckpt = load_checkpoint(path)
    return _model_and_meta(ckpt, device, run_id, path)


def _model_and_meta(ckpt: dict, device, run_id: int | None, path: Path) -> tuple[nn.Module, dict]:
    cfg = ckpt["config"]
    device = resolve_device(device)
    model = make_model(cfg, len(ckpt["class_ids"]), int(cfg["channels"]))
    model.load_state_dict(ckpt["model"])
    model.to(device, memory_format=memory_format(cfg, device)).eval()  # as in training
    meta = {
        "run_id": run_id,
        "checkpoint": str(path),
        "task": cfg["task"],
        "config": cfg,
        "class_names": list(ckpt["class_names"]),
        "class_ids": list(ckpt["class_ids"]),
        "normalize": dict(ckpt["normalize"]),
        "image_size": int(cfg["image_size"]),
        "channels": int(cfg["channels"]),
        "resize_policy": cfg["resize_policy"],
        "epoch": int(ckpt.get("epoch", 0)),
        "device": str(device),
    }
    return model, meta


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                          ) -> tuple[nn.Module, dict]:
    """Like `load_run_model`, for a checkpoint file given by path."""
    path = Path(path)
    return _model_and_meta(load_checkpoint(path), device, None, path)


# --- prediction ------------------------------------------------------------------------
def to_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 H×W or H×W×C -> normalised float (C, H, W)."""
    arr = image[..., None] if image.ndim == 2 else image
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (t - m) / s


class Predictor:
    """A loaded model plus its preprocessing; `predict_array` on decoded uint8 images."""

    def __init__(self, model: nn.Module, meta: dict, device: torch.device,
                 tile_overlap: float = 0.25, batch_size: int = 4, tta: bool | None = None
                 ) -> None:
        """`tta`: test-time flip averaging (module docstring); None = the run's config."""
        self.model, self.meta, self.device = model, meta, device
        self.tile_overlap, self.batch_size = tile_overlap, batch_size
        self.tta = bool(meta["config"].get("tta", False) if tta is None else tta)
        self._flips = tta_flips(meta["config"]) if self.tta else [()]
        self._transform = None

    @classmethod
    def from_run(cls, project, run_id: int, which: str = "best", device="auto",
                 **kwargs) -> Predictor:
        dev = resolve_device(device)
        model, meta = load_run_model(project, run_id, which, dev)
        return cls(model, meta, dev, **kwargs)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if len(self._flips) > 1:
            return tta_forward(self.model, self._flips)(x)
        return self.model(x)

    @torch.no_grad()
    def classify(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) class probabilities."""
        from studio.ml import augment

        meta = self.meta
        if self._transform is None:
            self._transform = augment.build_transforms(
                meta["config"]["augment"], "classification", meta["image_size"], train=False,
                mean=meta["normalize"]["mean"], std=meta["normalize"]["std"],
                resize_policy=meta["resize_policy"])
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self._transform(img, torch.tensor(0))[0]
                                 for img in images[start:start + self.batch_size]])
            out.append(self._forward(batch).float().softmax(1).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def segment_logits(self, image: np.ndarray) -> torch.Tensor:
        """(1, C, H, W) logits at the image's original size."""
        meta = self.meta
        size, policy = meta["image_size"], meta["resize_policy"]
        h, w = image.shape[:2]
        norm = meta["normalize"]
        if policy == "crop":
            x = to_tensor(image, norm["mean"], norm["std"]).unsqueeze(0).to(self.device)
            return sliding_window_logits(self._forward, x, size, self.tile_overlap,
                                         self.batch_size)
        if policy == "resize":
            nh, nw = size, size
        else:  # letterbox: the longer side becomes `size`, the aspect ratio is kept
            scale = size / max(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA
                           if nh < h else cv2.INTER_LINEAR)
        x = to_tensor(small, norm["mean"], norm["std"]).unsqueeze(0).to(self.device)
        logits = self._forward(x).float()
        return nn.functional.interpolate(logits, size=(h, w), mode="bilinear",
                                         align_corners=False)

    def predict_array(self, image: np.ndarray, name: str = "", image_id: int | None = None
                      ) -> PredictionResult:
        names = self.meta["class_names"]
        if self.meta["task"] == "classification":
            probs = self.classify([image])[0]
            return PredictionResult(name, image_id, "classification", names, probs)
        probs = self.segment_logits(image).softmax(1)[0]
        label = probs.argmax(0).to(torch.uint8).cpu().numpy()
        return PredictionResult(name, image_id, "semantic", names,
                                probs.cpu().numpy().astype(np.float32), label)


def predict(project, run_id: int, images: Sequence[int | str | os.PathLike], device="auto",
            batch_size: int = 4, tile_overlap: float = 0.25, which: str = "best",
            tta: bool | None = None) -> list[PredictionResult]:
    """Predict images given as project image ids or file paths with a run's model
    (`tta`: test-time flip averaging; None = as the run's config says)."""
    from studio.ml.datasets import decode

    predictor = Predictor.from_run(project, run_id, which, device, tile_overlap=tile_overlap,
                                   batch_size=batch_size, tta=tta)
    results = []
    for item in images:
        if isinstance(item, (int, np.integer)):
            path, image_id = project.image(int(item)).abs_path, int(item)
        else:
            path, image_id = Path(item), None
        image = decode(path, predictor.meta["channels"])
        results.append(predictor.predict_array(image, str(path), image_id))
    return results
