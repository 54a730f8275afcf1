"""Losses: reference values, ignore_index handling, soft targets, config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from studio.core.errors import ConfigError, TrainingError
from studio.ml.losses import LOSS_NAMES, build_loss, default_loss


def _seg_batch(seed=0, c=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 6, 7, generator=g)
    target = torch.randint(0, c, (2, 6, 7), generator=g)
    target[0, :2] = 255
    target[1, :, :3] = 255
    return logits, target


@pytest.mark.parametrize(
    "cfg",
    [{}, {"class_weights": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.1},
     {"class_weights": [0.2, 1, 3], "label_smoothing": 0.3}],
)
def test_cross_entropy_matches_torch(cfg):
    logits, target = _seg_batch()
    w = cfg.get("class_weights")
    w = None if w is None else torch.tensor(w, dtype=torch.float32)
    ref = F.cross_entropy(logits, target, weight=w, ignore_index=255,
                          label_smoothing=cfg.get("label_smoothing", 0.0))
    got = build_loss({"name": "cross_entropy", **cfg}, "semantic", 3)(logits, target)
    assert torch.allclose(got, ref, atol=1e-6)
    cls_logits, cls_target = logits[:, :, 3, 4], torch.tensor([0, 2])
    got = build_loss(cfg, "classification", 3)(cls_logits, cls_target)
    ref = F.cross_entropy(cls_logits, cls_target, weight=w,
                          label_smoothing=cfg.get("label_smoothing", 0.0))
    assert torch.allclose(got, ref, atol=1e-6)


def test_cross_entropy_soft_targets_equal_hard_one_hot():
    logits = torch.randn(5, 4)
    hard = torch.tensor([0, 3, 1, 1, 2])
    loss = build_loss(None, "classification", 4)
    assert torch.allclose(loss(logits, hard), loss(logits, F.one_hot(hard, 4).float()))
    soft = torch.softmax(torch.randn(5, 4), 1)
    ref = -(soft * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(loss(logits, soft), ref, atol=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_ignored_pixels_have_no_effect_on_value_or_gradient(name):
    logits, target = _seg_batch(1)
    loss = build_loss({"name": name, "class_weights": [1.0, 2.0, 1.5]}, "semantic", 3)
    a = logits.clone().requires_grad_(True)
    la = loss(a, target)
    la.backward()
    ignored = (target == 255).unsqueeze(1).expand_as(logits)
    assert torch.all(a.grad[ignored] == 0)
    assert a.grad[~ignored].abs().sum() > 0
    b = logits.clone()
    b[ignored] = torch.randn(int(ignored.sum())) * 10
    b.requires_grad_(True)
    lb = loss(b, target)
    lb.backward()
    assert torch.allclose(la, lb, atol=1e-6)
    assert torch.allclose(a.grad[~ignored], b.grad[~ignored], atol=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_all_ignored_gives_zero_not_nan(name):
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    value = build_loss({"name": name}, "semantic", 2)(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    if name not in ("dice", "jaccard"):
        assert value.item() == 0.0


def test_dice_and_jaccard_of_perfect_prediction_are_near_zero():
    _, target = _seg_batch(2)
    safe = target.clamp(max=2)
    logits = F.one_hot(safe, 3).movedim(-1, 1).float() * 40 - 20
    for name in ("dice", "jaccard", "ce_dice", "mse", "mae", "focal", "bce"):
        assert build_loss({"name": name}, "semantic", 3)(logits, target).item() < 1e-6, name
    wrong = -logits
    assert build_loss({"name": "dice"}, "semantic", 3)(wrong, target).item() > 0.9


def test_dice_reference_value():
    logits, target = _seg_batch(3)
    got = build_loss({"name": "dice", "smooth": 0.0}, "semantic", 3)(logits, target)
    valid = target != 255
    p = logits.softmax(1).movedim(1, -1)[valid]  # (M, C)
    t = F.one_hot(target[valid], 3).float()
    dice = 2 * (p * t).sum(0) / (p.sum(0) + t.sum(0))
    assert torch.allclose(got, 1 - dice.mean(), atol=1e-6)


def test_focal_gamma_zero_is_cross_entropy():
    logits, target = _seg_batch(4)
    focal = build_loss({"name": "focal", "focal_gamma": 0.0}, "semantic", 3)
    ce = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(focal(logits, target), ce, atol=1e-6)
    strong = build_loss({"name": "focal", "focal_gamma": 2.0}, "semantic", 3)
    assert strong(logits, target) < focal(logits, target)


def test_bce_matches_one_hot_reference():
    logits = torch.randn(4, 3)
    target = torch.tensor([0, 2, 1, 2])
    got = build_loss({"name": "bce"}, "classification", 3)(logits, target)
    ref = F.binary_cross_entropy_with_logits(logits, F.one_hot(target, 3).float())
    assert torch.allclose(got, ref, atol=1e-6)
    binary = torch.randn(2, 1, 5, 5)
    mask = torch.randint(0, 2, (2, 5, 5))
    got = build_loss({"name": "bce"}, "semantic", 1)(binary, mask)
    ref = F.binary_cross_entropy_with_logits(binary[:, 0], mask.float())
    assert torch.allclose(got, ref, atol=1e-6)


def test_mse_is_brier_score():
    logits = torch.randn(6, 4)
    target = torch.randint(0, 4, (6,))
    got = build_loss({"name": "mse"}, "classification", 4)(logits, target)
    ref = ((logits.softmax(1) - F.one_hot(target, 4)) ** 2).mean()
    assert torch.allclose(got, ref, atol=1e-6)


def test_config_errors():
    assert default_loss("semantic")["name"] == "cross_entropy"
    # errors name the field's path in the run config
    for section, path in (({"name": "hinge"}, "loss.name"), ({"gamma": 1}, "loss.gamma"),
                          ({"class_weights": [1, 2]}, "loss.class_weights"),
                          ({"label_smoothing": 2}, "loss.label_smoothing")):
        with pytest.raises(ConfigError, match=path.replace(".", r"\.")) as err:
            build_loss(section, "semantic", 3)
        assert err.value.path == path
    with pytest.raises(ConfigError):
        default_loss("detection")
    loss = build_loss({}, "semantic", 3)
    with pytest.raises(TrainingError, match="out of range"):
        loss(torch.randn(1, 3, 2, 2), torch.full((1, 2, 2), 7))
    with pytest.raises(TrainingError, match="does not fit"):
        loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 3, 3, dtype=torch.long))
