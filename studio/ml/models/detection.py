"""torchvision detection models: Faster R-CNN and Mask R-CNN adapted to our conventions.

Every builder takes ``num_classes`` = the run's classes (K) and builds a torchvision model
with K + 1 outputs (index 0 is background), so label ``i`` of a target or prediction is
the run's class ``i - 1``. Models never normalise on their own (``image_mean`` 0,
``image_std`` 1): the datasets and the shared inference preprocessing normalise as for
every other task. The model's own transform still resizes each image so its shorter side
is ``min_size`` (the longer at most ``max_size``) and maps predictions back.

Options (``DETECTION_OPTIONS``): ``anchor_sizes`` (one list of sizes per feature level,
or one size per level), ``aspect_ratios`` (height / width, shared by all levels),
``min_size``, ``max_size``, ``detections_per_image``, ``trainable_backbone_layers``
(None: all; n: only the last n stages train) and, for the light models, ``fpn_channels``
and ``min_stride`` (8: FPN levels at strides 8-64; 4: 4-64, for tiny objects).

``pretrained_state``: the COCO state dict of the whole model (ResNet-50 v2,
MobileNetV3) or an ImageNet state dict of the backbone (ResNet-18). Tensors whose shape
differs (the class-specific predictors, an RPN head with other anchors) stay random.
Pretrained backbones get frozen batch norm, as torchvision does, since detection batches
are far too small to estimate batch statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models import detection as tvdet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from studio.core.errors import ConfigError
from studio.ml.models.transfer import mark_parts, replace_first_conv

Builder = Callable[..., nn.Module]

DETECTION_OPTIONS: dict[str, Any] = {
    "anchor_sizes": [[32], [64], [128], [256], [512]],
    "aspect_ratios": [0.5, 1.0, 2.0],
    "min_size": 800,
    "max_size": 1333,
    "detections_per_image": 100,
    "trainable_backbone_layers": None,
}
# the light ResNet-18 models: a narrow FPN from stride 8 (``min_stride`` 4 adds the
# finest level, for objects under ~12 px) and fewer sampled RoIs, for CPUs
LIGHT_OPTIONS: dict[str, Any] = {
    **DETECTION_OPTIONS,
    "anchor_sizes": [[16], [32], [64], [128]],
    "min_size": 512,
    "max_size": 800,
    "fpn_channels": 64,
    "min_stride": 8,
}
MOBILE_OPTIONS: dict[str, Any] = {
    **DETECTION_OPTIONS,
    "anchor_sizes": [[32, 64, 128, 256, 512]] * 3,
}
# feature levels of each backbone's FPN (the anchor generator needs one entry per level)
FEATURE_LEVELS = {"resnet50": 5, "resnet18": 4, "mobilenet": 3}
BACKBONE_STAGES = {"resnet50": 5, "resnet18": 5, "mobilenet": 6}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def anchor_sizes(value: Any, levels: int) -> tuple[tuple[int, ...], ...]:
    """Normalise ``anchor_sizes`` to one tuple of positive sizes per feature level."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"'model_options.anchor_sizes' must be a list with one entry per "
                          f"feature level ({levels}), got {value!r}.",
                          path="model_options.anchor_sizes")
    per_level = [v if isinstance(v, (list, tuple)) else [v] for v in value]
    if len(per_level) != levels:
        raise ConfigError(f"'model_options.anchor_sizes' has {len(per_level)} entries but this "
                          f"model has {levels} feature levels; give one list of sizes per level.",
                          path="model_options.anchor_sizes")
    for sizes in per_level:
        if not sizes or not all(_is_int(s) and s > 0 for s in sizes):
            raise ConfigError(f"Anchor sizes must be positive whole numbers of pixels, got "
                              f"{list(sizes)!r} in 'model_options.anchor_sizes'.",
                          path="model_options.anchor_sizes")
    return tuple(tuple(int(s) for s in sizes) for sizes in per_level)


def feature_levels(family: str, options: dict[str, Any]) -> int:
    """How many feature maps the model's FPN gives (one anchor entry each)."""
    if family == "resnet18":
        return 5 if options.get("min_stride") == 4 else 4
    return FEATURE_LEVELS[family]


def check_options(family: str, options: dict[str, Any]) -> None:
    """Reject bad detection options with a ConfigError (called by config validation)."""
    if "min_stride" in options and options["min_stride"] not in (4, 8):
        raise ConfigError(f"'model_options.min_stride' must be 4 or 8, got "
                          f"{options['min_stride']!r}.",
                          path="model_options.min_stride")
    anchor_sizes(options["anchor_sizes"], feature_levels(family, options))
    ratios = options["aspect_ratios"]
    if (not isinstance(ratios, (list, tuple)) or not ratios or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in ratios)):
        raise ConfigError(f"'model_options.aspect_ratios' must be a list of positive numbers, "
                          f"got {ratios!r}.",
                          path="model_options.aspect_ratios")
    for key in ("min_size", "max_size", "detections_per_image"):
        if not _is_int(options[key]) or options[key] < 1:
            raise ConfigError(f"'model_options.{key}' must be a positive integer, got "
                              f"{options[key]!r}.",
                          path=f"model_options.{key}")
    if options["max_size"] < options["min_size"]:
        raise ConfigError("'model_options.max_size' must be at least 'min_size'.",
                          path="model_options.max_size")
    layers = options["trainable_backbone_layers"]
    top = BACKBONE_STAGES[family]
    if layers is not None and (not _is_int(layers) or not 0 <= layers <= top):
        raise ConfigError(f"'model_options.trainable_backbone_layers' must be null (all) or "
                          f"0..{top}, got {layers!r}.",
                          path="model_options.trainable_backbone_layers")
    if "fpn_channels" in options and (not _is_int(options["fpn_channels"])
                                      or not 8 <= options["fpn_channels"] <= 1024):
        raise ConfigError("'model_options.fpn_channels' must be an integer in 8..1024.",
                          path="model_options.fpn_channels")


def _anchor_generator(options: dict[str, Any], levels: int) -> AnchorGenerator:
    sizes = anchor_sizes(options["anchor_sizes"], levels)
    ratios = tuple(float(r) for r in options["aspect_ratios"])
    return AnchorGenerator(sizes, (ratios,) * len(sizes))


def _common_kwargs(options: dict[str, Any], in_channels: int) -> dict[str, Any]:
    return {"min_size": int(options["min_size"]), "max_size": int(options["max_size"]),
            "image_mean": [0.0] * in_channels, "image_std": [1.0] * in_channels,
            "box_detections_per_img": int(options["detections_per_image"])}


def freeze_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm2d under ``module`` by a FrozenBatchNorm2d with its statistics."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count


def _load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    good = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(good, strict=False)


def _resnet_stages(prefix: str) -> list[list[str]]:
    return [[f"{prefix}.conv1", f"{prefix}.bn1"]] + [[f"{prefix}.layer{i}"] for i in range(1, 5)]


def _limit_trainable(stages: list[list[str]], model: nn.Module, layers: int | None) -> None:
    """Only the last ``layers`` backbone stages keep ``requires_grad`` (None: all)."""
    if layers is None:
        return
    for names in stages[:len(stages) - layers]:
        for name in names:
            for p in model.get_submodule(name).parameters():
                p.requires_grad_(False)


def _mark(model: nn.Module, stages: list[list[str]], masks: bool) -> None:
    head = ["roi_heads.box_predictor"] + (["roi_heads.mask_predictor"] if masks else [])
    mark_parts(model, backbone=["backbone.body"], head=head, stages=stages)


def _mobile_stages(model: nn.Module) -> list[list[str]]:
    body = model.backbone.body
    names = list(body.keys()) if hasattr(body, "keys") else [n for n, _ in body.named_children()]
    stages: list[list[str]] = [[f"backbone.body.{names[0]}"]]
    for name in names[1:]:
        if getattr(body.get_submodule(name), "_is_cn", False):
            stages.append([])
        stages[-1].append(f"backbone.body.{name}")
    return stages


def build_torchvision_detector(arch: str, masks: bool) -> Builder:
    """A builder for torchvision's ``fasterrcnn_resnet50_fpn_v2``,
    ``fasterrcnn_mobilenet_v3_large_fpn`` or ``maskrcnn_resnet50_fpn_v2``."""
    family = "mobilenet" if "mobilenet" in arch else "resnet50"

    def build(num_classes: int, in_channels: int, options: dict[str, Any],
              pretrained_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        check_options(family, options)
        model = getattr(tvdet, arch)(weights=None, weights_backbone=None,
                                     num_classes=num_classes + 1,
                                     **_common_kwargs(options, in_channels))
        generator = _anchor_generator(options, FEATURE_LEVELS[family])
        model.rpn.anchor_generator = generator
        n_anchors = generator.num_anchors_per_location()[0]
        if model.rpn.head.cls_logits.out_channels != n_anchors:
            depth = 2 if family == "resnet50" else 1
            model.rpn.head = RPNHead(model.backbone.out_channels, n_anchors, conv_depth=depth)
        if pretrained_state is not None:
            _load_matching(model, pretrained_state)
            freeze_batchnorm(model.backbone.body)
        if family == "mobilenet":
            first, stages = "backbone.body.0.0", _mobile_stages(model)
        else:
            first, stages = "backbone.body.conv1", _resnet_stages("backbone.body")
        replace_first_conv(model, first, in_channels)
        _limit_trainable(stages, model, options["trainable_backbone_layers"])
        _mark(model, stages, masks)
        return model

    return build


def build_light_detector(masks: bool) -> Builder:
    """Faster / Mask R-CNN on a ResNet-18 FPN with narrow heads: trains usefully on a CPU.

    ``pretrained_state``: ImageNet weights of ResNet-18 (``fc`` dropped).
    """

    def build(num_classes: int, in_channels: int, options: dict[str, Any],
              pretrained_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        check_options("resnet18", options)
        pretrained = pretrained_state is not None
        body = tvm.resnet18(weights=None)
        if pretrained:
            body.load_state_dict({k: v for k, v in pretrained_state.items()
                                  if not k.startswith("fc.")}, strict=False)
            freeze_batchnorm(body)
        replace_first_conv(body, "conv1", in_channels)
        channels = int(options["fpn_channels"])
        first = 1 if options["min_stride"] == 4 else 2
        layers = range(first, 5)
        backbone = BackboneWithFPN(
            body, {f"layer{i}": str(n) for n, i in enumerate(layers)},
            [64 * 2 ** (i - 1) for i in layers], channels, extra_blocks=LastLevelMaxPool(),
            norm_layer=None if pretrained else nn.BatchNorm2d)
        generator = _anchor_generator(options, feature_levels("resnet18", options))
        hidden = 4 * channels
        kwargs = dict(
            rpn_anchor_generator=generator,
            rpn_head=RPNHead(channels, generator.num_anchors_per_location()[0]),
            box_head=TwoMLPHead(channels * 7 * 7, hidden),
            box_predictor=FastRCNNPredictor(hidden, num_classes + 1),
            box_batch_size_per_image=128,
            **_common_kwargs(options, in_channels))
        if masks:
            model = tvdet.MaskRCNN(
                backbone, mask_head=MaskRCNNHeads(channels, [channels] * 2, 1),
                mask_predictor=MaskRCNNPredictor(channels, channels, num_classes + 1), **kwargs)
        else:
            model = tvdet.FasterRCNN(backbone, **kwargs)
        stages = _resnet_stages("backbone.body")
        _limit_trainable(stages, model, options["trainable_backbone_layers"])
        _mark(model, stages, masks)
        return model

    return build
