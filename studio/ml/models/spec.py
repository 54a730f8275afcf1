"""What is known about a model before it is built (`ModelSpec`).

Its own module so the registry (which lists the specs) and `transfer` (which loads a
spec's pretrained weights) both read it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class ModelSpec:
    """What the GUI and the trainer need to know about a model before building it."""

    name: str
    task: str
    builder: Callable[..., nn.Module]
    description: str
    min_size: int
    size_multiple: int
    default_size: int
    supports_pretrained: bool
    pretrained_weights_name: str | None
    default_options: dict[str, Any] = field(default_factory=dict)
    # what `pretrained` names for this model's weights: "imagenet" (an ImageNet encoder)
    # or "coco" (a whole detector trained on COCO, only ever read from the local cache)
    pretrained_source: str = "imagenet"
    # extra validation of merged options (ConfigError), run before anything is built
    check_options: Callable[[dict[str, Any]], None] | None = None
    # a detection-task model that can average its prediction over flipped copies of the
    # image (config "tta"); classification and semantic models all can
    averages_flips: bool = False
    # trains under bfloat16 autocast on a CPU that computes bfloat16 natively (config
    # "amp"), measured to learn as well as in float32 and faster (`devices.autocast_dtype`)
    cpu_bf16: bool = False
