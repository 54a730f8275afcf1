"""Data augmentation: a JSON-able spec -> torchvision ``transforms.v2`` pipelines.

A spec maps op names to ``{"enabled": bool, "p": probability, ...parameters}``
(:func:`default_spec` lists every op with its defaults). A sample passes through:

1. geometric ops (hflip, vflip, rotation, translate, elastic, scale, crop) applied to the
   image and its mask together: the mask is a ``tv_tensors.Mask`` so it moves with
   nearest interpolation, and area uncovered by the transform becomes ignore (255) in the
   mask and 0 in the image;
2. photometric ops (brightness, contrast, saturation, hue, gaussian_blur, sharpen, invert) on the
   image only;
3. fitting to ``image_size`` by ``resize_policy`` (see :class:`SampleTransform`);
4. conversion to float in [0, 1], then gaussian_noise and cutout (image only: cutout
   keeps the mask unchanged, the network must guess what is under the patch), and
   normalisation with mean/std.

For evaluation (``train=False``) only step 3 and the normalisation run. Batch-level
mixup and cutmix live in :mod:`studio.ml.augment_batch` (``BatchAugment``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from studio.core.errors import ConfigError, DataError
from studio.ml.augment_ops import FastElastic, RandomGaussianNoise, RandomResizedCropAligned
from studio.ml.augment_spec import AugmentSpec
from studio.ml.tasks import IGNORE_INDEX as IGNORE
from studio.ml.tasks import RESIZE_POLICIES, TASKS, task_of

_BILINEAR = v2.InterpolationMode.BILINEAR  # for images; masks always use nearest


def _fill(mask: int = IGNORE) -> dict:
    return {tv_tensors.Image: 0, tv_tensors.Mask: mask}


def maybe_apply(t: v2.Transform, p: float) -> v2.Transform:
    """`t` applied with probability `p` (always when p >= 1)."""
    return t if p >= 1.0 else v2.RandomApply([t], p=p)


def _compose(transforms: list[v2.Transform]) -> v2.Transform:
    return v2.Compose(transforms) if transforms else v2.Identity()


def rigid_ops(spec: AugmentSpec | dict, mask_fill: int = IGNORE) -> list[v2.Transform]:
    """The spec's flips, rotation and translation: they move masks and boxes with the
    image, so every task can use them. Uncovered image pixels are 0, mask pixels
    `mask_fill` (unlabelled for label maps; 0 for instance masks)."""
    spec = AugmentSpec.of(spec)
    out: list[v2.Transform] = []
    if spec.hflip.enabled:
        out.append(v2.RandomHorizontalFlip(spec.hflip.p))
    if spec.vflip.enabled:
        out.append(v2.RandomVerticalFlip(spec.vflip.p))
    fill = _fill(mask_fill)
    rotation, translate = spec.rotation, spec.translate
    if rotation.enabled:
        out.append(maybe_apply(v2.RandomRotation(rotation.degrees, _BILINEAR, fill=fill),
                               rotation.p))
    if translate.enabled:
        out.append(maybe_apply(v2.RandomAffine(0, translate=translate.fraction,
                                               interpolation=_BILINEAR, fill=fill),
                               translate.p))
    return out


def _geometric(spec: AugmentSpec, size: tuple[int, int] | None) -> list[v2.Transform]:
    out = rigid_ops(spec)
    elastic, scale, crop = spec.elastic, spec.scale, spec.crop
    if elastic.enabled:
        out.append(maybe_apply(FastElastic(elastic.alpha, elastic.sigma, fill=_fill()),
                               elastic.p))
    if scale.enabled:
        out.append(maybe_apply(RandomResizedCropAligned(size, scale.scale, scale.ratio),
                               scale.p))
    if crop.enabled:
        crop_size = crop.size or (list(size) if size else None)
        if crop_size is None:
            raise ConfigError("augmentation 'crop' needs a 'size' (or an image size to crop to)")
        out.append(maybe_apply(v2.RandomCrop(crop_size, padding=crop.padding or None,
                                             pad_if_needed=True, fill=_fill()), crop.p))
    return out


def photometric_ops(spec: AugmentSpec | dict) -> list[v2.Transform]:
    """The spec's photometric ops: they change the image only, so they suit every task."""
    spec = AugmentSpec.of(spec)
    out: list[v2.Transform] = []
    for name in ("brightness", "contrast", "saturation", "hue"):
        jitter = spec.op(name)
        if jitter.enabled and jitter.factor > 0:
            out.append(maybe_apply(v2.ColorJitter(**{name: jitter.factor}), jitter.p))
    blur, sharpen = spec.gaussian_blur, spec.sharpen
    if blur.enabled:
        out.append(maybe_apply(v2.GaussianBlur(blur.kernel_size, blur.sigma), blur.p))
    if sharpen.enabled:
        out.append(v2.RandomAdjustSharpness(sharpen.factor, sharpen.p))
    if spec.invert.enabled:  # dark objects on a bright ground become bright on dark
        out.append(v2.RandomInvert(spec.invert.p))
    return out


def _float_ops(spec: AugmentSpec) -> list[v2.Transform]:
    out: list[v2.Transform] = []
    noise, cutout = spec.gaussian_noise, spec.cutout
    if noise.enabled:
        out.append(maybe_apply(RandomGaussianNoise(noise.sigma), noise.p))
    if cutout.enabled:
        out.append(v2.RandomErasing(cutout.p, cutout.scale, cutout.ratio, value=cutout.value))
    return out


def _size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if len(image_size) != 2 or not all(isinstance(v, int) and v > 0 for v in image_size):
        raise ConfigError(f"image_size must be an integer or (height, width), got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _pad_to(img, mask, h: int, w: int, center: bool):
    """Pad image (0) and mask (255) on the sides to at least h x w."""
    ih, iw = img.shape[-2:]
    ph, pw = max(h - ih, 0), max(w - iw, 0)
    if not (ph or pw):
        return img, mask
    top, left = (ph // 2, pw // 2) if center else (0, 0)
    pad = [left, top, pw - left, ph - top]
    img = F.pad(img, pad, fill=0)
    if mask is not None:
        mask = F.pad(mask, pad, fill=IGNORE)
    return img, mask


def _crop(img, mask, h: int, w: int, random: bool):
    ih, iw = img.shape[-2:]
    if random:
        top = int(torch.randint(0, ih - h + 1, (1,)))
        left = int(torch.randint(0, iw - w + 1, (1,)))
    else:
        top, left = (ih - h) // 2, (iw - w) // 2
    img = F.crop(img, top, left, h, w)
    return img, (F.crop(mask, top, left, h, w) if mask is not None else None)


def _resize(img, mask, h: int, w: int):
    img = F.resize(img, [h, w], antialias=True)
    if mask is not None:
        mask = F.resize(mask, [h, w], interpolation=v2.InterpolationMode.NEAREST_EXACT)
    return img, mask


class SampleTransform:
    """Callable ``(image, target) -> (float tensor (C, H, W) normalised, target)``.

    ``image``: numpy uint8 (or uint16 / float in [0, 1]) HxW or HxWxC. ``target``: for
    classification a class index (returned as given), for semantic an HxW label map
    (uint8/int, 255 = ignore) returned as int64.

    resize_policy for ``image_size`` (h, w): ``resize`` stretches to (h, w); ``letterbox``
    keeps the aspect ratio, fits inside and pads (image 0, mask 255, centred);
    ``crop``: for semantic, a random (train) / centre (eval) crop at native resolution,
    padded when the image is smaller; for classification the shorter side is resized to
    cover (h, w) first. With ``image_size=None`` images keep their size.
    """

    def __init__(self, spec: dict, task: str, image_size, train: bool, mean: Sequence[float],
                 std: Sequence[float], resize_policy: str = "resize") -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        if resize_policy not in RESIZE_POLICIES:
            raise ConfigError(f"unknown resize policy {resize_policy!r}; use one of "
                              f"{', '.join(RESIZE_POLICIES)}")
        if len(mean) != len(std) or not len(mean) or any(s <= 0 for s in std):
            raise ConfigError(f"mean {list(mean)} / std {list(std)}: need equal lengths and "
                              "positive std values")
        self.task, self.train, self.policy = task, train, resize_policy
        self.spec = spec = AugmentSpec.of(spec)
        self.size = _size(image_size)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.geometric = _compose(_geometric(spec, self.size)) if train else None
        self.photometric = _compose(photometric_ops(spec)) if train else None
        self.float_ops = _compose(_float_ops(spec)) if train else None
        self.window = self._window() if train else None

    def _window(self) -> tuple[int, int] | None:
        """Training crops of a semantic "crop" policy: the side of the window around the
        final crop that the geometric ops need (room for any rotation and for elastic
        displacement). Transforming that window instead of the whole image gives crops
        like the whole image's for a fraction of the work ("translate" then moves by a
        fraction of the window); None when it does not apply ("scale" zooms relative
        to the whole image, so it keeps the whole image)."""
        if not task_of(self.task).label_map or self.policy != "crop" or self.size is None:
            return None
        if self.spec.scale.enabled:
            return None
        grow = math.sqrt(2.0) if self.spec.rotation.enabled else 1.0
        return tuple(int(math.ceil(side * grow)) + 16 for side in self.size)

    def _precrop(self, img, mask):
        """Cut the window around a uniformly placed final crop: pad the image by the
        window's margin (0 / ignore, as a rotation of the whole image would fill it),
        then take a random window, whose centre is then a random crop of the image."""
        (h, w), (wh, ww) = self.size, self.window
        top, left = (wh - h) // 2, (ww - w) // 2
        pad = [left, top, ww - w - left, wh - h - top]
        img, mask = F.pad(img, pad, fill=0), F.pad(mask, pad, fill=IGNORE)
        return _crop(img, mask, wh, ww, random=True)

    def _to_image(self, image: Any) -> tv_tensors.Image:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise DataError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
        if t.dtype == torch.uint16 or arr.dtype == np.uint16:
            t = t.to(torch.float32) / 65535.0
        elif t.dtype == torch.bool:
            t = t.to(torch.uint8) * 255
        elif t.dtype != torch.uint8:
            t = t.to(torch.float32)
        return tv_tensors.Image(t)

    def _to_mask(self, target: Any, hw: tuple[int, int]) -> tv_tensors.Mask:
        arr = target.cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
        if arr.shape != hw:
            raise DataError(f"label map of shape {arr.shape} does not match image {hw}")
        if arr.dtype != np.uint8:
            if arr.size and (arr.min() < 0 or arr.max() > IGNORE):
                raise DataError("label map values must be 0..254 or 255 (ignore)")
            arr = arr.astype(np.uint8)
        return tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(arr)))

    def _fit(self, img, mask, centred: bool = False):
        if self.size is None:
            return img, mask
        h, w = self.size
        ih, iw = img.shape[-2:]
        if self.policy == "resize":
            return _resize(img, mask, h, w) if (ih, iw) != (h, w) else (img, mask)
        if self.policy == "letterbox":
            s = min(h / ih, w / iw)
            nh, nw = max(1, min(h, round(ih * s))), max(1, min(w, round(iw * s)))
            if (nh, nw) != (ih, iw):
                img, mask = _resize(img, mask, nh, nw)
            return _pad_to(img, mask, h, w, center=True)
        if task_of(self.task).image_label:  # crop: cover (h, w), then crop
            s = max(h / ih, w / iw)
            nh, nw = max(h, round(ih * s)), max(w, round(iw * s))
            if (nh, nw) != (ih, iw):
                img, mask = _resize(img, mask, nh, nw)
        img, mask = _pad_to(img, mask, h, w, center=not self.train)
        return _crop(img, mask, h, w, random=self.train and not centred)

    def apply_uint(self, image: Any, target: Any) -> tuple[torch.Tensor, Any]:
        """Geometric, photometric and fitting stages: an un-normalised tv_tensors.Image
        (dtype as decoded) and the target (mask tensor or class as given)."""
        img = self._to_image(image)
        mask = (self._to_mask(target, tuple(img.shape[-2:])) if task_of(self.task).label_map
                else None)
        windowed = False
        if self.train:
            if mask is not None:
                ih, iw = img.shape[-2:]
                if self.window is not None and ih > self.window[0] and iw > self.window[1]:
                    img, mask = self._precrop(img, mask)
                    windowed = True
                img, mask = self.geometric(img, mask)
            else:
                img = self.geometric(img)
            img = self.photometric(img)
        img, mask = self._fit(img, mask, centred=windowed)
        return img, (mask if mask is not None else target)

    def __call__(self, image: Any, target: Any) -> tuple[torch.Tensor, Any]:
        img, target = self.apply_uint(image, target)
        x = F.to_dtype(img, torch.float32, scale=True) if img.dtype == torch.uint8 else img
        x = x.as_subclass(torch.Tensor)
        if self.train:
            x = self.float_ops(x)
        c = x.shape[0]
        mean, std = self.mean, self.std
        if len(mean) == 1 and c > 1:
            mean, std = mean * c, std * c
        if len(mean) != c:
            raise ConfigError(f"normalisation has {len(mean)} channel(s) but the image has {c}")
        x = F.normalize(x, mean, std)
        if task_of(self.task).label_map:
            target = target.as_subclass(torch.Tensor).to(torch.int64)
        return x, target


def build_transforms(
    spec: dict | None,
    task: str,
    image_size: int | tuple[int, int] | None,
    train: bool,
    mean: Sequence[float],
    std: Sequence[float],
    resize_policy: str = "resize",
) -> SampleTransform:
    """The per-sample pipeline for ``task`` (see :class:`SampleTransform`)."""
    return SampleTransform(spec, task, image_size, train, mean, std, resize_policy)

