"""Our own ``transforms.v2`` ops for the augmentation pipeline (:mod:`studio.ml.augment`):
Gaussian noise, a fast elastic deformation and a mask-exact random resized crop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


def _numpy_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's RNG, so torch.manual_seed (and DataLoader
    worker seeding) governs it; NumPy draws normals several times faster than torch."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,))))


class RandomGaussianNoise(v2.Transform):
    """Add N(0, sigma) noise with sigma drawn from a range; float images only, clipped to
    [0, 1]. Masks and labels pass through."""

    _transformed_types = (tv_tensors.Image, torch.Tensor)

    def __init__(self, sigma: Sequence[float]) -> None:
        super().__init__()
        self.sigma = (float(sigma[0]), float(sigma[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"sigma": float(torch.empty(1).uniform_(*self.sigma))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask) or not inpt.is_floating_point():
            return inpt
        noise = _numpy_rng().standard_normal(tuple(inpt.shape), dtype=np.float32)
        noise = torch.from_numpy(noise).to(inpt.device, inpt.dtype)
        out = (inpt + noise * params["sigma"]).clamp_(0.0, 1.0)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.Image) else out


class FastElastic(v2.ElasticTransform):
    """``v2.ElasticTransform`` with the displacement field smoothed by OpenCV's separable
    Gaussian blur (torchvision's full 2-D kernel takes ~0.5 s on a 512x512 CPU image)."""

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        rng = _numpy_rng()
        fields = []
        for alpha, sigma, extent in ((self.alpha[0], self.sigma[0], width),
                                     (self.alpha[1], self.sigma[1], height)):
            d = rng.random((height, width), dtype=np.float32) * 2 - 1
            if sigma > 0:
                d = cv2.GaussianBlur(d, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
            fields.append(d * (alpha / extent))
        return {"displacement": torch.from_numpy(np.stack(fields, axis=-1))[None]}


class RandomResizedCropAligned(v2.RandomResizedCrop):
    """RandomResizedCrop with pixel-exact mask resizing (``NEAREST_EXACT``; plain
    ``NEAREST`` shifts masks by up to half a pixel against the bilinear image).
    ``size=None`` keeps the input's size (zoom in place)."""

    def __init__(self, size: Sequence[int] | None, scale: Sequence[float],
                 ratio: Sequence[float]) -> None:
        super().__init__(size=list(size) if size else 1, scale=tuple(scale),
                         ratio=tuple(ratio), antialias=True)
        self.keep_size = size is None

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        params = super().make_params(flat_inputs)
        params["out_size"] = list(v2.query_size(flat_inputs)) if self.keep_size else self.size
        return params

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        p = dict(params)
        size = p.pop("out_size")
        if isinstance(inpt, tv_tensors.Mask):
            cropped = F.crop(inpt, **p)
            return F.resize(cropped, size, interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return self._call_kernel(F.resized_crop, inpt, **p, size=size,
                                 interpolation=self.interpolation, antialias=True)
