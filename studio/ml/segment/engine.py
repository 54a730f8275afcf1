"""Our one interface to promptable segmentation: embed an image once, decode prompts fast.

`PromptModel` is what the canvas tool, the boxes-to-masks job and the benchmark use; the
osam models (EfficientSAM, SAM, SAM 2.1) implement it through `OsamPromptModel`, and a
test's tiny ONNX pair goes through the very same class (registered like the real ones).

Large images: the *whole* image is embedded downscaled so its long side is at most
EMBED_LONG_SIDE (the models' own input size); prompts are scaled into that image and the
mask is mapped back by resampling its crop at the centres of the full-resolution pixels,
so coordinates map exactly (pixel-edge scale `embedded / original` on each axis).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from studio.core.errors import ValidationError
from studio.core.geometry import MaskGeom
from studio.core.images import load_image, to_uint8
from studio.ml.segment.registry import ModelSpec, get_model_spec
from studio.ml.segment.weights import ensure_installed

EMBED_LONG_SIDE = 1024


@dataclass
class Embedding:
    """An image's embedding by one model, and how the embedded image maps to the image."""

    model: str
    width: int  # of the original image
    height: int
    embedded_size: tuple[int, int]  # (w, h) of the image the model saw
    data: object  # the model's own payload (osam ImageEmbedding for osam models)

    @property
    def scale(self) -> tuple[float, float]:
        return self.embedded_size[0] / self.width, self.embedded_size[1] / self.height

    @property
    def nbytes(self) -> int:
        arrays = [self.data.embedding, *self.data.extra_features]
        return int(sum(a.nbytes for a in arrays))


class PromptModel(Protocol):
    """A promptable segmentation model."""

    name: str

    def embed(self, image: np.ndarray, original_size: tuple[int, int] | None = None
              ) -> Embedding:
        """Embed an RGB uint8 image (maybe a downscaled copy of an original of
        `original_size` (w, h))."""

    def decode(self, embedding: Embedding, points, labels, box=None) -> MaskGeom | None:
        """The mask of the prompt (points (N, 2) in image pixel-edge coordinates, labels 1
        positive / 0 negative, box (x0, y0, x1, y1) or None); None when empty."""


def available_devices() -> list[str]:
    """"cpu", and "cuda" when onnxruntime has the CUDA provider."""
    import onnxruntime

    out = ["cpu"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        out.append("cuda")
    return out


_PROVIDERS = {"cpu": "CPUExecutionProvider",
              "cuda": "CUDAExecutionProvider,CPUExecutionProvider"}
_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], OsamPromptModel] = {}


class OsamPromptModel:
    """A PromptModel run by osam on onnxruntime."""

    def __init__(self, spec: ModelSpec, device: str = "cpu") -> None:
        if device not in _PROVIDERS:
            raise ValidationError(f"Unknown device {device!r}; choose one of "
                                  f"{', '.join(available_devices())}.")
        ensure_installed(spec)  # never let osam download: the files are there and intact
        quiet_osam()
        self.spec, self.name, self.device = spec, spec.name, device
        with _LOAD_LOCK:  # osam takes its providers from the environment at load time
            old = os.environ.get("OSAM_ONNX_PROVIDERS")
            os.environ["OSAM_ONNX_PROVIDERS"] = _PROVIDERS[device]
            try:
                self.model = spec.osam_type()
            finally:
                if old is None:
                    os.environ.pop("OSAM_ONNX_PROVIDERS", None)
                else:
                    os.environ["OSAM_ONNX_PROVIDERS"] = old

    def embed(self, image: np.ndarray, original_size: tuple[int, int] | None = None
              ) -> Embedding:
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        ow, oh = original_size or (w, h)
        data = self.model.encode_image(np.ascontiguousarray(rgb))
        return Embedding(self.name, int(ow), int(oh), (w, h), data)

    def decode(self, embedding: Embedding, points, labels, box=None) -> MaskGeom | None:
        from osam import types

        if embedding.model != self.name:
            raise ValidationError(f"An embedding of {embedding.model} cannot be decoded by "
                                  f"{self.name}; embed the image again.")
        pts, lab = prompt_arrays(points, labels, box)
        if len(pts) == 0:
            return None
        sx, sy = embedding.scale
        pts = pts * (sx, sy)
        request = types.GenerateRequest(model=self.name, image_embedding=embedding.data,
                                        prompt=types.Prompt(points=pts, point_labels=lab))
        ann = self.model.generate(request).annotations[0]
        bb = ann.bounding_box
        crop = np.asarray(ann.mask, dtype=bool)
        if not crop.any():
            return None
        return map_back(crop, bb.xmin, bb.ymin, embedding)


def quiet_osam() -> None:
    """osam logs every model load at debug/info level to stderr; our log says enough."""
    from loguru import logger

    logger.disable("osam")


def prompt_arrays(points, labels, box=None) -> tuple[np.ndarray, np.ndarray]:
    """osam's prompt: points then the box as two corner points labelled 2 and 3."""
    pts = np.asarray(points if points is not None and len(points) else np.zeros((0, 2)),
                     dtype=np.float64).reshape(-1, 2)
    lab = np.asarray(labels if labels is not None and len(labels) else [], dtype=np.int64)
    if len(lab) != len(pts):
        raise ValidationError(f"{len(pts)} prompt points but {len(lab)} labels.")
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        corners = np.array([[min(x0, x1), min(y0, y1)], [max(x0, x1), max(y0, y1)]])
        pts = np.concatenate([pts, corners])
        lab = np.concatenate([lab, [2, 3]])
    return pts, lab


def map_back(crop: np.ndarray, x: int, y: int, embedding: Embedding) -> MaskGeom | None:
    """A mask crop at (x, y) of the embedded image as a mask of the original image."""
    sx, sy = embedding.scale
    if sx == 1.0 and sy == 1.0:
        return MaskGeom(int(x), int(y), crop).tight()
    W, H = embedding.width, embedding.height
    fx0, fy0 = max(0, int(np.floor(x / sx))), max(0, int(np.floor(y / sy)))
    fx1 = min(W, int(np.ceil((x + crop.shape[1]) / sx)))
    fy1 = min(H, int(np.ceil((y + crop.shape[0]) / sy)))
    # centre of full pixel X lies at (X + 0.5) * sx in the embedded image: sample there
    map_x = ((np.arange(fx0, fx1) + 0.5) * sx - 0.5 - x).astype(np.float32)
    map_y = ((np.arange(fy0, fy1) + 0.5) * sy - 0.5 - y).astype(np.float32)
    mx, my = np.meshgrid(map_x, map_y)
    full = cv2.remap(crop.astype(np.float32), mx, my, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) >= 0.5
    if not full.any():
        return None
    geom = MaskGeom.from_full(full)
    return MaskGeom(geom.x + fx0, geom.y + fy0, geom.bitmap)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    img = to_uint8(np.asarray(image))
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        return img[:, :, :3]
    return img


def image_for_embedding(path, width: int, height: int,
                        long_side: int = EMBED_LONG_SIDE) -> np.ndarray:
    """The image as the model sees it: RGB uint8, downscaled (never enlarged) so its long
    side is at most `long_side`; a JPEG uses its fast reduced decode on the way."""
    reduce = next((r for r in (8, 4, 2) if max(width, height) >= r * long_side), 1)
    img = as_rgb_uint8(load_image(path, mode="rgb", reduce=reduce))
    h, w = img.shape[:2]
    if max(h, w) > long_side:
        s = long_side / max(h, w)
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA)
    return img


def load_model(name: str, device: str = "cpu") -> OsamPromptModel:
    """The model `name` on `device`, loaded once and kept (files must be installed:
    WeightsUnavailableError says which and where otherwise)."""
    key = (name, device)
    with _LOAD_LOCK:
        model = _LOADED.get(key)
    if model is None:
        model = OsamPromptModel(get_model_spec(name), device)
        with _LOAD_LOCK:
            _LOADED.clear()  # one model in memory at a time (the big ones take a GB)
            _LOADED[key] = model
    return model


def forget_loaded(name: str | None = None) -> None:
    """Drop loaded models (all, or one name's), e.g. after its files changed."""
    with _LOAD_LOCK:
        for key in [k for k in _LOADED if name is None or k[0] == name]:
            _LOADED.pop(key, None)
