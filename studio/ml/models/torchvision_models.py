"""torchvision classification and segmentation models adapted to our conventions.

Every builder constructs the architecture with ``weights=None`` (never a download),
loads an ImageNet state dict when given one, then replaces the head for ``num_classes``
and the first convolution for ``in_channels != 3``. Segmentation models are wrapped so
that ``forward`` returns the plain ``(N, C, H, W)`` logits tensor (``out``; no aux head).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models import segmentation as tvseg

from studio.ml.models.transfer import mark_parts, replace_first_conv

Builder = Callable[..., nn.Module]


def _pool_stages(features: nn.Sequential, prefix: str) -> list[list[str]]:
    """Split a VGG/AlexNet ``features`` Sequential into stages ending at each MaxPool."""
    stages: list[list[str]] = []
    current: list[str] = []
    for i, layer in enumerate(features):
        current.append(f"{prefix}.{i}")
        if isinstance(layer, nn.MaxPool2d):
            stages.append(current)
            current = []
    if current:
        stages.append(current)
    return stages


def _mobilenet_stages(features: nn.Sequential, prefix: str) -> list[list[str]]:
    """Group MobileNetV3 blocks by resolution: a new stage starts at each strided block."""
    stages: list[list[str]] = [[f"{prefix}.0"]]
    for i in range(1, len(features)):
        if getattr(features[i], "_is_cn", False):
            stages.append([])
        stages[-1].append(f"{prefix}.{i}")
    return stages


def _load(model: nn.Module, state: dict[str, torch.Tensor] | None) -> None:
    if state is not None:
        model.load_state_dict(state)


# --- classification --------------------------------------------------------------------
def build_classifier(arch: str) -> Builder:
    """Return a builder for the torchvision classifier ``arch``."""

    def build(
        num_classes: int,
        in_channels: int,
        options: dict[str, Any],
        pretrained_state: dict[str, torch.Tensor] | None = None,
    ) -> nn.Module:
        kwargs: dict[str, Any] = {}
        if "dropout" in options:
            kwargs["dropout"] = float(options["dropout"])
        model = getattr(tvm, arch)(weights=None, **kwargs)
        _load(model, pretrained_state)
        if arch.startswith("resnet"):
            model.fc = nn.Linear(model.fc.in_features, num_classes)
            replace_first_conv(model, "conv1", in_channels)
            mark_parts(
                model,
                backbone=["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"],
                head=["fc"],
                stages=[["conv1", "bn1"]] + [[f"layer{i}"] for i in range(1, 5)],
            )
            return model
        last = len(model.classifier) - 1
        old = model.classifier[last]
        model.classifier[last] = nn.Linear(old.in_features, num_classes)
        if arch.startswith("mobilenet"):
            replace_first_conv(model, "features.0.0", in_channels)
            stages = _mobilenet_stages(model.features, "features")
        else:  # alexnet, vgg
            replace_first_conv(model, "features.0", in_channels)
            stages = _pool_stages(model.features, "features")
        mark_parts(model, backbone=["features"], head=[f"classifier.{last}"], stages=stages)
        return model

    return build


# --- semantic segmentation -----------------------------------------------------------
class SegmentationWrapper(nn.Module):
    """Return ``net(x)["out"]`` so every segmentation model yields a plain tensor."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def build_segmenter(arch: str) -> Builder:
    """Return a builder for torchvision's ``fcn_resnet50``, ``deeplabv3_*`` models.

    ``pretrained_state`` is an ImageNet state dict of the backbone classifier
    (ResNet-50 or MobileNetV3-Large); its ``fc``/``classifier`` tensors are dropped.
    """

    def build(
        num_classes: int,
        in_channels: int,
        options: dict[str, Any],
        pretrained_state: dict[str, torch.Tensor] | None = None,
    ) -> nn.Module:
        net = getattr(tvseg, arch)(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
        )
        mobile = "mobilenet" in arch
        if pretrained_state is not None:
            if mobile:
                state = {
                    k[len("features."):]: v
                    for k, v in pretrained_state.items()
                    if k.startswith("features.")
                }
                # the getter keeps only the blocks up to the output block
                state = {k: v for k, v in state.items() if k.split(".")[0] in net.backbone}
            else:
                state = {k: v for k, v in pretrained_state.items() if not k.startswith("fc.")}
            net.backbone.load_state_dict(state)
        model = SegmentationWrapper(net)
        last = len(net.classifier) - 1
        if mobile:
            replace_first_conv(model, "net.backbone.0.0", in_channels)
            blocks = list(net.backbone.keys())
            stages: list[list[str]] = [[f"net.backbone.{blocks[0]}"]]
            for name in blocks[1:]:
                if getattr(net.backbone[name], "_is_cn", False):
                    stages.append([])
                stages[-1].append(f"net.backbone.{name}")
        else:
            replace_first_conv(model, "net.backbone.conv1", in_channels)
            stages = [["net.backbone.conv1", "net.backbone.bn1"]] + [
                [f"net.backbone.layer{i}"] for i in range(1, 5)
            ]
        mark_parts(
            model, backbone=["net.backbone"], head=[f"net.classifier.{last}"], stages=stages
        )
        return model

    return build
