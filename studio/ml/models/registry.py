"""The model registry: every model the application can train, by name.

``min_size``: the smallest input side the model accepts. ``size_multiple``: sides that
are multiples of it avoid internal padding (every model accepts any size >= min_size;
the U-Nets pad and crop internally, the others pool adaptively or upsample their logits).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import CheckpointError, ConfigError
from studio.ml.models import detection, simple_cnn, unet, unet_instances
from studio.ml.models import torchvision_models as tv
from studio.ml.models.spec import ModelSpec
from studio.ml.models.transfer import load_checkpoint_weights, load_pretrained_state
from studio.ml.tasks import TASKS
from studio.ml.tasks.instance import MAPS_SPLIT

MODELS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    MODELS[spec.name] = spec


_register(ModelSpec(
    "simple_cnn", "classification", simple_cnn.build_simple_cnn,
    "Small textbook CNN (conv blocks + fully connected layers); trains fast from scratch",
    min_size=1, size_multiple=1, default_size=64, supports_pretrained=False,
    pretrained_weights_name=None, default_options=dict(simple_cnn.DEFAULT_OPTIONS),
))
_CLASSIFIERS = [
    ("alexnet", "AlexNet (2012)", "AlexNet_Weights.IMAGENET1K_V1", 63, {"dropout": 0.5}),
    ("vgg11_bn", "VGG-11 with batch norm", "VGG11_BN_Weights.IMAGENET1K_V1", 32,
     {"dropout": 0.5}),
    ("vgg16_bn", "VGG-16 with batch norm", "VGG16_BN_Weights.IMAGENET1K_V1", 32,
     {"dropout": 0.5}),
    ("resnet18", "ResNet-18: good default for transfer learning",
     "ResNet18_Weights.IMAGENET1K_V1", 32, {}),
    ("resnet50", "ResNet-50: stronger, slower", "ResNet50_Weights.IMAGENET1K_V2", 32, {}),
    ("mobilenet_v3_small", "MobileNetV3-Small: very fast, for CPUs",
     "MobileNet_V3_Small_Weights.IMAGENET1K_V1", 32, {"dropout": 0.2}),
    ("mobilenet_v3_large", "MobileNetV3-Large: fast and accurate",
     "MobileNet_V3_Large_Weights.IMAGENET1K_V1", 32, {"dropout": 0.2}),
]
for _name, _desc, _weights, _min, _opts in _CLASSIFIERS:
    _register(ModelSpec(
        _name, "classification", tv.build_classifier(_name), f"{_desc} (torchvision)",
        min_size=_min, size_multiple=32 if _name != "alexnet" else 1, default_size=224,
        supports_pretrained=True, pretrained_weights_name=_weights, default_options=_opts,
    ))

_register(ModelSpec(
    "unet", "semantic", unet.build_unet,
    "U-Net (our own): accurate masks from few images, trains from scratch",
    min_size=1, size_multiple=16, default_size=256, supports_pretrained=False,
    pretrained_weights_name=None, default_options=dict(unet.DEFAULT_OPTIONS),
))
for _arch, _weights in (
    ("resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
    ("resnet34", "ResNet34_Weights.IMAGENET1K_V1"),
    ("resnet50", "ResNet50_Weights.IMAGENET1K_V2"),
):
    _register(ModelSpec(
        f"unet_{_arch}", "semantic", unet.build_resnet_unet(_arch),
        f"U-Net decoder on a {_arch} encoder (ImageNet-pretrained encoder available)",
        min_size=1, size_multiple=32, default_size=256, supports_pretrained=True,
        pretrained_weights_name=_weights, default_options=dict(unet.RESNET_DEFAULT_OPTIONS),
    ))
for _name, _desc, _weights, _mult in (
    ("fcn_resnet50", "FCN with a ResNet-50 backbone", "ResNet50_Weights.IMAGENET1K_V1", 8),
    ("deeplabv3_resnet50", "DeepLabV3 with a ResNet-50 backbone",
     "ResNet50_Weights.IMAGENET1K_V1", 8),
    ("deeplabv3_mobilenet_v3_large", "DeepLabV3 with a MobileNetV3-Large backbone (fast)",
     "MobileNet_V3_Large_Weights.IMAGENET1K_V1", 16),
):
    _register(ModelSpec(
        _name, "semantic", tv.build_segmenter(_name), f"{_desc} (torchvision)",
        min_size=32, size_multiple=_mult, default_size=384, supports_pretrained=True,
        pretrained_weights_name=_weights,
    ))

for _name, _desc, _weights, _masks, _family, _opts in (
    ("fasterrcnn_resnet18_fpn", "Faster R-CNN, light ResNet-18 FPN: trains at a useful speed "
     "on a CPU", "ResNet18_Weights.IMAGENET1K_V1", False, "resnet18", detection.LIGHT_OPTIONS),
    ("fasterrcnn_resnet50_fpn_v2", "Faster R-CNN ResNet-50 FPN v2 (torchvision): accurate, "
     "for GPUs", "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1", False, "resnet50",
     detection.DETECTION_OPTIONS),
    ("fasterrcnn_mobilenet_v3_large_fpn", "Faster R-CNN MobileNetV3-Large FPN (torchvision): "
     "fast", "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1", False, "mobilenet",
     detection.MOBILE_OPTIONS),
    ("maskrcnn_resnet18_fpn", "Mask R-CNN, light ResNet-18 FPN: trains at a useful speed on "
     "a CPU", "ResNet18_Weights.IMAGENET1K_V1", True, "resnet18", detection.LIGHT_OPTIONS),
    ("maskrcnn_resnet50_fpn_v2", "Mask R-CNN ResNet-50 FPN v2 (torchvision): accurate, for "
     "GPUs", "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1", True, "resnet50",
     detection.DETECTION_OPTIONS),
):
    _light = _family == "resnet18"
    _register(ModelSpec(
        _name, "instance" if _masks else "detection",
        detection.build_light_detector(_masks) if _light else
        detection.build_torchvision_detector(_name, _masks),
        _desc, min_size=32, size_multiple=32, default_size=_opts["min_size"],
        supports_pretrained=True, pretrained_weights_name=_weights,
        default_options=dict(_opts), pretrained_source="imagenet" if _light else "coco",
        check_options=lambda options, family=_family: detection.check_options(family, options),
    ))


_register(ModelSpec(
    "unet_instances", "instance", unet_instances.build_unet_instances,
    MAPS_SPLIT.description, min_size=16, size_multiple=16, default_size=256,
    supports_pretrained=False, pretrained_weights_name=None,
    default_options=dict(unet_instances.DEFAULT_OPTIONS),
    check_options=unet_instances.check_options, averages_flips=True, cpu_bf16=True,
))


def list_models(task: str | None = None) -> list[ModelSpec]:
    """All registered models, or those of one task, in registration order."""
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    return [s for s in MODELS.values() if task is None or s.task == task]


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; ConfigError listing the valid names if unknown."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)}"
        ) from None


def _merge_options(spec: ModelSpec, options: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(spec.default_options)
    for key, value in (options or {}).items():
        if key not in spec.default_options:
            valid = ", ".join(spec.default_options) or "none"
            raise ConfigError(f"model {spec.name!r} has no option {key!r} (options: {valid})")
        merged[key] = value
    return merged


def check_pretrained(spec: ModelSpec, pretrained) -> None:
    """ConfigError when `pretrained` names published weights ("imagenet", "coco") that
    model `spec` does not have."""
    if pretrained in ("imagenet", "coco") and (
            not spec.supports_pretrained or pretrained != spec.pretrained_source):
        offered = (f"offers '{spec.pretrained_source}' weights" if spec.supports_pretrained
                   else "has no pretrained weights")
        kind = "ImageNet" if pretrained == "imagenet" else "COCO"
        raise ConfigError(f"Model {spec.name!r} has no {kind} weights (it {offered}); set "
                          "'pretrained' to what it has, to null (train from scratch) or "
                          "choose another model.")


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    pretrained: str | None = None,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` outputs and ``in_channels`` input channels.

    ``pretrained``: None (random init), ``"imagenet"`` (torchvision ImageNet weights for
    the encoder, from the torch.hub cache or downloaded; WeightsUnavailableError when
    neither works), ``"coco"`` (a detector's COCO weights, from the torch.hub cache only:
    WeightsUnavailableError naming the file when it is not there) or the path of a local checkpoint (its shape-matching tensors are
    loaded; the report is kept as ``model.studio_load_report``).
    The model gets ``studio_model_name``, ``studio_task`` and ``studio_num_classes``.
    """
    spec = get_spec(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(in_channels, int) or not 1 <= in_channels <= 64:
        raise ConfigError(f"in_channels must be an integer 1..64, got {in_channels!r}")
    merged = _merge_options(spec, options)
    state = None
    checkpoint: Path | None = None
    if pretrained in ("imagenet", "coco"):
        check_pretrained(spec, pretrained)
        state = load_pretrained_state(spec, False if pretrained == "coco" else None)
    elif pretrained is not None:
        checkpoint = Path(os.fspath(pretrained)).expanduser()
        if not checkpoint.is_file():
            raise ConfigError(
                f"pretrained must be None, 'imagenet' or an existing checkpoint file; "
                f"'{pretrained}' is none of these"
            )
    model = spec.builder(num_classes, in_channels, merged, pretrained_state=state)
    if checkpoint is not None:
        report = load_checkpoint_weights(model, checkpoint)
        if not report.matched:
            raise CheckpointError(
                f"no tensor of '{checkpoint}' fits model {name!r} ({report.summary()}); "
                "was it trained with another model?"
            )
        model.studio_load_report = report
    model.studio_model_name = name
    model.studio_task = spec.task
    model.studio_num_classes = num_classes
    return model


def check_model(name: str, num_classes: int, in_channels: int = 3,
                options: dict[str, Any] | None = None) -> int:
    """Build model ``name`` without weights to check its options (the builders reject bad
    ones) and count its parameters: on PyTorch's "meta" device nothing is allocated or
    initialised, so a window can ask this of a large model in a few milliseconds. A model
    that cannot be built there (an operation without a meta kernel) is built on the CPU."""
    try:
        with torch.device("meta"):
            model = build_model(name, num_classes, in_channels, options=options)
    except NotImplementedError:
        model = build_model(name, num_classes, in_channels, options=options)
    return count_parameters(model)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
