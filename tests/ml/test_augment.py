"""Augmentation: masks stay aligned with their images, photometric ops leave masks alone,
spec validation, mixup/cutmix, preview."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from studio.core.errors import ConfigError
from studio.ml.augment import build_transforms
from studio.ml.augment_batch import BatchAugment
from studio.ml.augment_preview import preview
from studio.ml.augment_spec import (
    BATCH_OPS,
    FLOAT_OPS,
    GEOMETRIC,
    PHOTOMETRIC,
    default_spec,
    validate_spec,
)


def _blobs(seed: int, h: int = 96, w: int = 120) -> np.ndarray:
    """Smooth random blobs, uint8 HxWx3; thresholding at 127 gives a clean mask."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h // 16 + 2, w // 16 + 2)).astype(np.float32)
    field = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    field = cv2.GaussianBlur(field, (0, 0), 4)
    field = (field - field.min()) / (field.max() - field.min() + 1e-9)
    grey = (field * 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _only(op: str, **params) -> dict:
    spec = {name: {"enabled": False} for name in default_spec()}
    spec[op] = {"enabled": True, "p": 1.0, **params}
    return spec


def _agreement(x: torch.Tensor, mask: torch.Tensor) -> float:
    keep = mask != 255
    assert keep.float().mean() > 0.2  # the transform did not push everything outside
    return float(((x[0] > 0.5) == (mask == 1))[keep].float().mean())


GEOMETRIC_CASES = [
    ("hflip", {}), ("vflip", {}), ("rotation", {"degrees": 40}),
    ("translate", {"fraction": [0.3, 0.3]}), ("elastic", {"alpha": 40.0, "sigma": 5.0}),
    ("scale", {"scale": [0.3, 1.0]}), ("crop", {"size": [48, 40], "padding": 8}),
]


def _shifted(mask: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    return torch.where(mask == 255, 255, torch.roll(mask, shift, dim))


@pytest.mark.parametrize(("op", "params"), GEOMETRIC_CASES + [("all", {})])
@pytest.mark.parametrize("size", [None, 64])
def test_geometric_ops_keep_mask_aligned(op, params, size):
    """The mask is the thresholded image: after the transform it must still be, up to
    interpolation at the boundaries, and no 1-pixel shift of it may fit better."""
    if op == "all":  # several resamplings in a row: boundaries blur a little more
        spec = {name: {"enabled": True, "p": 1.0} for name in GEOMETRIC}
        spec["crop"]["size"] = [80, 80]
        floor, mean_floor = 0.93, 0.95
    else:
        spec = _only(op, **params)
        floor, mean_floor = 0.965, 0.97
    agree, shifted = [], []
    for seed in range(4):
        img = _blobs(seed)
        mask = (img[..., 0] > 127).astype(np.uint8)
        tf = build_transforms(spec, "semantic", size, True, [0.0], [1.0])
        torch.manual_seed(seed)
        x, y = tf(img, mask)
        assert y.dtype == torch.int64 and x.shape[-2:] == y.shape
        if size:
            assert tuple(y.shape) == (size, size)
        agree.append(_agreement(x, y))
        assert agree[-1] >= floor, (op, seed, agree[-1])
        shifted.append([_agreement(x, _shifted(y, s, d)) for s in (1, -1) for d in (0, 1)])
    assert np.mean(agree) >= mean_floor
    assert np.mean(agree) > np.mean(shifted, axis=0).max() + 0.005


def test_geometric_ops_actually_move_the_mask():
    img = _blobs(0)
    mask = (img[..., 0] > 127).astype(np.uint8)
    for op, params in GEOMETRIC_CASES:
        tf = build_transforms(_only(op, **params), "semantic", None, True, [0.0], [1.0])
        torch.manual_seed(1)
        _, y = tf(img, mask)
        if y.shape == mask.shape:
            assert not torch.equal(y, torch.from_numpy(mask).long()), op


def test_uncovered_area_becomes_ignore():
    img = _blobs(1)
    mask = (img[..., 0] > 127).astype(np.uint8)
    tf = build_transforms(_only("rotation", degrees=[45, 45]), "semantic", None, True,
                          [0.0], [1.0])
    x, y = tf(img, mask)
    outside = y == 255  # the image there is fill (0), blended with content at the rim
    assert outside.float().mean() > 0.1
    assert (x[:, outside].abs() < 0.02).float().mean() > 0.9


@pytest.mark.parametrize("op", PHOTOMETRIC + FLOAT_OPS)
def test_photometric_ops_leave_mask_unchanged(op):
    img = (np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8)
    mask = np.random.default_rng(1).integers(0, 3, (32, 40)).astype(np.uint8)
    mask[:4] = 255
    params = {"factor": 0.5} if op in ("brightness", "contrast", "saturation") else {}
    tf = build_transforms(_only(op, **params), "semantic", None, True, [0.0], [1.0])
    plain = build_transforms(_only("hflip", p=0.0), "semantic", None, True, [0.0], [1.0])
    changed = False
    for seed in range(3):
        torch.manual_seed(seed)
        x, y = tf(img, mask)
        assert torch.equal(y, torch.from_numpy(mask).long())
        changed |= not torch.allclose(x, plain(img, mask)[0])
    assert changed, f"{op} did not change the image"


def test_eval_is_deterministic_resize_and_normalise():
    img = _blobs(2, 50, 70)
    mask = (img[..., 0] > 127).astype(np.uint8)
    spec = {name: {"enabled": True, "p": 1.0} for name in GEOMETRIC + PHOTOMETRIC}
    tf = build_transforms(spec, "semantic", (32, 40), False, [0.5, 0.5, 0.5], [0.25] * 3)
    x1, y1 = tf(img, mask)
    x2, y2 = tf(img, mask)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (3, 32, 40)
    ref = cv2.resize(img, (40, 32), interpolation=cv2.INTER_LINEAR)[..., 0] / 255.0
    assert np.abs((x1[0].numpy() * 0.25 + 0.5) - ref).mean() < 0.02


@pytest.mark.parametrize("policy", ["resize", "crop", "letterbox"])
@pytest.mark.parametrize("task", ["semantic", "classification"])
def test_resize_policies_give_the_requested_size(policy, task):
    img = _blobs(3, 30, 90)[..., :1][..., 0]  # grey HxW, wide
    mask = (img > 127).astype(np.uint8)
    for train in (True, False):
        tf = build_transforms(None, task, 48, train, [0.5], [0.5], policy)
        x, y = tf(img, mask if task == "semantic" else 2)
        assert x.shape == (1, 48, 48) and x.dtype == torch.float32
        if task == "semantic":
            assert y.shape == (48, 48)
            if policy == "letterbox":
                assert (y[:5] == 255).all() and (y[-5:] == 255).all()  # padding is ignore
            assert _agreement(x * 0.5 + 0.5, y) >= 0.97
        else:
            assert y == 2


def test_spec_validation():
    spec = validate_spec({"rotation": {"enabled": True, "degrees": 10}})
    assert spec["rotation"]["degrees"] == [-10.0, 10.0] and spec["hflip"]["enabled"]
    assert json.loads(json.dumps(default_spec())) == default_spec()
    assert validate_spec(None) == default_spec()
    assert validate_spec(validate_spec(spec)) == spec
    bad = [
        {"sparkle": {"enabled": True}},
        {"hflip": {"p": 1.5}},
        {"hflip": {"enabled": "yes"}},
        {"rotation": {"degrees": [20, -20]}},
        {"scale": {"scale": [0.5, 2.0]}},
        {"gaussian_blur": {"kernel_size": 4}},
        {"hue": {"factor": 0.7}},
        {"crop": {"size": [0, 10]}},
        {"brightness": {"strength": 0.1}},
        {"mixup": {"alpha": -1}},
        ["hflip"],
    ]
    for item in bad:
        with pytest.raises(ConfigError):
            validate_spec(item)
    with pytest.raises(ConfigError, match="crop"):
        build_transforms(_only("crop"), "semantic", None, True, [0.0], [1.0])
    with pytest.raises(ConfigError, match="resize policy"):
        build_transforms(None, "semantic", 32, True, [0.0], [1.0], "stretch")
    with pytest.raises(ConfigError, match="channel"):
        build_transforms(None, "semantic", 32, False, [0.0, 0.0], [1.0, 1.0])(
            _blobs(0), np.zeros((96, 120), np.uint8))


def test_mixup_cutmix_classification_give_soft_targets():
    torch.manual_seed(0)
    both = {op: {"enabled": True, "p": 1.0} for op in BATCH_OPS}
    aug = BatchAugment(both, "classification", 5)
    assert aug.soft_targets
    images = torch.randn(8, 3, 16, 16)
    labels = torch.randint(0, 5, (8,))
    mixed = 0
    for _ in range(6):
        x, y = aug(images, labels)
        assert x.shape == images.shape and y.shape == (8, 5)
        assert torch.allclose(y.sum(1), torch.ones(8)) and (y >= 0).all()
        mixed += int((y.max(1).values < 1).any())
    assert mixed > 0
    never = BatchAugment({"mixup": {"enabled": True, "p": 0.0}}, "classification", 5)
    x, y = never(images, labels)
    assert torch.equal(x, images)
    assert torch.equal(y, torch.nn.functional.one_hot(labels, 5).float())
    off = BatchAugment(None, "classification", 5)
    assert not off.enabled and off(images, labels)[1] is labels


def test_segmentation_cutmix_keeps_masks_aligned():
    torch.manual_seed(0)
    aug = BatchAugment({"cutmix": {"enabled": True, "p": 1.0}}, "semantic", 3)
    masks = torch.randint(0, 3, (6, 20, 24))
    masks[:, 0] = 255
    images = (masks.float() + torch.arange(6).view(6, 1, 1) * 1000).unsqueeze(1)
    images = images.repeat(1, 3, 1, 1)
    changed = False
    for _ in range(5):
        x, y = aug(images, masks)
        assert y.dtype == masks.dtype and y.shape == masks.shape
        assert torch.equal(x[:, 0], x[:, 2])
        assert torch.equal(torch.remainder(x[:, 0], 1000), y.float())  # aligned
        changed |= not torch.equal(y, masks)
    assert changed
    with pytest.raises(ConfigError, match="mixup"):
        BatchAugment({"mixup": {"enabled": True}}, "semantic", 3)


def test_preview_is_deterministic(project, tmp_path):
    img = _blobs(4, 40, 48)
    path = tmp_path / "blobs.png"
    cv2.imwrite(str(path), img)
    image_id, _ = project.add_image(path)
    cls = project.add_class("blob")
    square = np.array([[5.0, 5.0], [30.0, 5.0], [30.0, 25.0], [5.0, 25.0]])
    project.add_annotation(image_id, cls, "polygon", square)
    spec = {"rotation": {"enabled": True, "p": 1.0}, "brightness": {"enabled": True}}
    a = preview(spec, project, image_id, 3, seed=7)
    b = preview(spec, project, image_id, 3, seed=7)
    c = preview(spec, project, image_id, 3, seed=8)
    assert len(a) == 3
    for (ia, ta), (ib, tb) in zip(a, b, strict=True):
        assert ia.dtype == np.uint8 and ia.shape == (40, 48, 3) and ta.shape == (40, 48)
        assert np.array_equal(ia, ib) and np.array_equal(ta, tb)
        assert set(np.unique(ta)) <= {0, 255} and (ta == 0).any()
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    sized = preview(None, project, image_id, 1, seed=0, task="classification",
                    image_size=32)
    assert sized[0][0].shape == (32, 32, 3) and sized[0][1] == -1


def test_large_images_are_transformed_in_a_window_around_the_crop():
    """Training crops of a big image: only a window around the crop is rotated and
    deformed. The crops stay aligned with their masks, and their placement still covers
    the image edge to edge."""
    h, w = 250, 240
    img = _blobs(3, h, w)
    mask = (img[..., 0] > 127).astype(np.uint8)
    spec = _only("rotation", degrees=[-180, 180])
    spec["elastic"] = {"enabled": True, "p": 1.0, "alpha": 30.0, "sigma": 5.0}
    tf = build_transforms(spec, "semantic", 48, True, [0.0], [1.0], resize_policy="crop")
    assert tf.window == (84, 84)
    torch.manual_seed(0)
    agree, whole = [], []
    for _ in range(12):
        x, y = tf(img, mask)
        assert tuple(y.shape) == (48, 48)
        whole.append(bool((y != 255).all()))  # no fill unless cut at the image's edge
        agree.append(_agreement(x, y))
    assert np.mean(agree) >= 0.96 and sum(whole) >= 8
    # placement: with the rotation drawn off (p=0) a crop is an exact piece of the image;
    # images whose value is the row (column) index tell where it was cut
    spec["rotation"]["p"], spec["elastic"]["enabled"] = 0.0, False
    tf = build_transforms(spec, "semantic", 48, True, [0.0], [1.0], resize_policy="crop")
    row = np.repeat(np.arange(h, dtype=np.uint8)[:, None, None], w, 1).repeat(3, 2)
    col = np.repeat(np.arange(w, dtype=np.uint8)[None, :, None], h, 0).repeat(3, 2)
    tops, lefts = [], []
    for seed in range(300):
        torch.manual_seed(seed)
        tops.append(round(float(tf(row, mask)[0][0, 0, 0]) * 255))
        torch.manual_seed(seed)
        lefts.append(round(float(tf(col, mask)[0][0, 0, 0]) * 255))
    assert min(tops) <= 3 and max(tops) >= h - 48 - 3
    assert min(lefts) <= 3 and max(lefts) >= w - 48 - 3
