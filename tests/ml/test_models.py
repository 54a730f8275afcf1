"""Model registry: every model builds, runs at small sizes, exposes its parts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.errors import ConfigError
from studio.ml.models import (
    MODELS,
    build_model,
    check_model,
    count_parameters,
    freeze,
    get_spec,
    list_models,
    parameter_groups,
    stages,
)
from studio.ml.models.transfer import head_parameters

_CACHE: dict[str, nn.Module] = {}


def _model(name: str) -> nn.Module:
    """Each model is built once per test session (torchvision's big heads are slow)."""
    if name not in _CACHE:
        _CACHE[name] = build_model(name, 3).eval()
    return _CACHE[name]


def test_registry_lists_the_expected_models():
    cls = {s.name for s in list_models("classification")}
    seg = {s.name for s in list_models("semantic")}
    assert {"simple_cnn", "alexnet", "vgg11_bn", "vgg16_bn", "resnet18", "resnet50",
            "mobilenet_v3_small", "mobilenet_v3_large"} <= cls
    assert {"unet", "unet_resnet18", "unet_resnet50", "fcn_resnet50", "deeplabv3_resnet50",
            "deeplabv3_mobilenet_v3_large"} <= seg
    det = {s.name for s in list_models("detection")}
    inst = {s.name for s in list_models("instance")}
    assert {"fasterrcnn_resnet18_fpn", "fasterrcnn_resnet50_fpn_v2",
            "fasterrcnn_mobilenet_v3_large_fpn"} == det
    assert {"maskrcnn_resnet18_fpn", "maskrcnn_resnet50_fpn_v2", "unet_instances"} == inst
    assert cls | seg | det | inst == set(MODELS) and not cls & seg
    for spec in MODELS.values():
        assert spec.min_size <= spec.default_size and spec.size_multiple >= 1
        assert spec.supports_pretrained == (spec.pretrained_weights_name is not None)
    with pytest.raises(ConfigError, match="resnet18"):  # lists the valid names
        get_spec("resnet19")
    with pytest.raises(ConfigError):
        list_models("keypoints")


@pytest.mark.parametrize("name", [n for n, s in MODELS.items()
                                  if s.task in ("classification", "semantic")])
def test_forward_shape_and_parts(name):
    """Detection models: tests/ml/test_detection.py."""
    spec = get_spec(name)
    model = _model(name)
    size = max(32, spec.min_size)
    h, w = (size + 3, size + 13) if spec.task == "semantic" else (size, size)
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w))
    assert type(out) is torch.Tensor
    if spec.task == "classification":
        assert out.shape == (1, 3)
    else:
        assert out.shape == (1, 3, h, w)  # logits at input resolution, even for odd sizes
    assert model.studio_model_name == name and model.studio_num_classes == 3
    groups = parameter_groups(model)
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # disjoint, complete
    assert groups["backbone"] and groups["head"]
    head = {id(p) for p in head_parameters(model)}
    assert head and head <= {id(p) for p in groups["head"]}
    parts = stages(model)
    assert len(parts) >= 3
    backbone = {id(p) for p in groups["backbone"]}
    frozen_counts = []
    for n in range(len(parts) + 1):
        freeze(model, "first_n_stages", n)
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        assert frozen <= backbone
        frozen_counts.append(len(frozen))
    assert frozen_counts == sorted(frozen_counts) and frozen_counts[0] == 0
    assert len(set(frozen_counts)) == len(frozen_counts)  # every stage has parameters
    freeze(model, "all_but_head")
    assert {id(p) for p in model.parameters() if p.requires_grad} == head
    freeze(model, "none")
    assert count_parameters(model, trainable_only=True) == count_parameters(model)


@pytest.mark.parametrize(
    "name", ["simple_cnn", "resnet18", "mobilenet_v3_small", "unet", "unet_resnet18",
             "deeplabv3_mobilenet_v3_large"]
)
def test_single_channel_input(name):
    spec = get_spec(name)
    model = build_model(name, 2, in_channels=1).eval()
    size = max(32, spec.min_size)
    with torch.no_grad():
        out = model(torch.randn(1, 1, size, size))
    assert out.shape[:2] == (1, 2)


def test_simple_cnn_runs_on_digits_and_options():
    model = _model("simple_cnn")
    assert model(torch.randn(4, 3, 8, 8)).shape == (4, 3)
    small = build_model("simple_cnn", 10, in_channels=1,
                        options={"depth": 2, "width": 8, "fc": [], "batch_norm": False,
                                 "pool_size": 2})
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small.modules())
    assert small(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert count_parameters(small) < count_parameters(model)
    for bad in ({"depth": 0}, {"width": "wide"}, {"fc": [0]}, {"dropout": 1.0},
                {"layers": 3}):
        with pytest.raises(ConfigError):
            build_model("simple_cnn", 10, options=bad)


def _fit_toy(model, x, y, steps: int) -> None:
    """Adam at 0.01 on one batch with cross-entropy, then eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def test_simple_cnn_learns_a_toy_problem():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    model = build_model("simple_cnn", 2, in_channels=1, options={"width": 8, "dropout": 0.0})
    _fit_toy(model, x, y, steps=60)
    assert (model(x).argmax(1) == y).float().mean() == 1.0


def test_unet_options_and_any_size():
    model = build_model("unet", 2, options={"depth": 3, "width": 8, "up": "bilinear",
                                            "dropout": 0.2})
    model.eval()
    for h, w in ((1, 1), (17, 9), (32, 32)):
        assert model(torch.randn(1, 3, h, w)).shape == (1, 2, h, w)
    for bad in ({"up": "pixelshuffle"}, {"depth": 9}, {"width": 2}, {"kernel": 3},
                {"space_to_depth": 3}):
        with pytest.raises(ConfigError):
            build_model("unet", 2, options=bad)
    with pytest.raises(ConfigError, match="'width' must be at least 48, got 24"):
        build_model("unet", 2, in_channels=3, options={"width": 24, "space_to_depth": 4})
    build_model("unet", 2, in_channels=1, options={"width": 16, "space_to_depth": 4})


@pytest.mark.parametrize("block", [2, 4])
def test_space_to_depth_unet_gives_one_logit_per_pixel(block):
    """The block U-Net works at 1/block resolution inside but answers every pixel: any
    size, and it learns a target that changes from one pixel to the next (salt and
    pepper noise labelled by its own sign), which no coarser output could. (The first
    level needs a width of at least block**2 to carry every pixel of a block, and
    build_unet insists on it.)"""
    torch.manual_seed(0)
    model = build_model("unet", 2, in_channels=1,
                        options={"depth": 2, "width": 4 * block, "space_to_depth": block})
    model.eval()
    for h, w in ((1, 1), (13, 30), (64, 48)):
        assert model(torch.randn(2, 1, h, w)).shape == (2, 2, h, w)
    model.train()
    image = torch.randn(4, 1, 32, 32)
    target = (image[:, 0] > 0).long()
    _fit_toy(model, image, target, steps=150)
    with torch.no_grad():
        assert (model(image).argmax(1) == target).float().mean() > 0.97


def test_unet_learns_to_segment_a_blob():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(24), torch.arange(24), indexing="ij")
    target = (((yy - 10) ** 2 + (xx - 13) ** 2) < 40).long().unsqueeze(0)
    image = target.float().unsqueeze(1).repeat(1, 3, 1, 1) + 0.3 * torch.randn(1, 3, 24, 24)
    model = build_model("unet", 2, options={"depth": 2, "width": 8})
    _fit_toy(model, image, target, steps=40)
    pred = model(image).argmax(1)
    assert (pred == target).float().mean() > 0.97


def test_build_errors():
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        build_model("unet", 2, pretrained="imagenet")
    with pytest.raises(ConfigError, match="existing checkpoint"):
        build_model("simple_cnn", 2, pretrained="no/such/file.pt")
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("simple_cnn", 0)
    with pytest.raises(ConfigError, match="in_channels"):
        build_model("simple_cnn", 2, in_channels=0)
    with pytest.raises(ConfigError, match="option"):
        build_model("resnet18", 2, options={"depth": 3})


@pytest.mark.parametrize("name", ["simple_cnn", "unet", "fasterrcnn_resnet18_fpn"])
def test_check_model_counts_without_weights_and_rejects_bad_options(name):
    assert check_model(name, 3) == count_parameters(_model(name))
    with pytest.raises(ConfigError, match="option"):
        check_model(name, 2, options={"no_such_option": 1})


@pytest.mark.parametrize(("name", "options"), [
    ("unet", {"depth": 3, "width": 8}),
    ("unet", {"depth": 2, "width": 12, "space_to_depth": 2}),
    ("unet_resnet18", None),
])
def test_traced_unet_pads_correctly_at_other_sizes(name, options):
    """Export traces the model at one size; the padding must stay dynamic."""
    import warnings

    model = build_model(name, 2, options=options).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.randn(1, 3, 32, 32), check_trace=False)
    x = torch.randn(1, 3, 21, 45)
    with torch.no_grad():
        assert torch.allclose(traced(x), model(x), atol=1e-4)
