"""The textbook convolutional classifier: conv blocks, pooling, fully connected layers.

Each block is conv3x3 -> (BatchNorm) -> ReLU -> maxpool 2x2. Pooling rounds up
(``ceil_mode``), and an adaptive average pool sits before the fully connected layers, so
the same network runs on 8x8 digit images as well as on 224x224 photographs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from studio.core.errors import ConfigError
from studio.ml.models.transfer import mark_parts

DEFAULT_OPTIONS: dict[str, Any] = {
    "depth": 3,
    "width": 32,
    "fc": [128],
    "dropout": 0.5,
    "batch_norm": True,
    "pool_size": 1,
}


class SimpleCNN(nn.Module):
    """conv blocks (``features``) -> adaptive pool -> fully connected layers (``classifier``)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        depth: int = 3,
        width: int = 32,
        fc: list[int] | tuple[int, ...] = (128,),
        dropout: float = 0.5,
        batch_norm: bool = True,
        pool_size: int = 1,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = min(width * 2**i, 1024)
            layers: list[nn.Module] = [
                nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm)
            ]
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            blocks.append(nn.Sequential(*layers))
            channels = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        hidden: list[nn.Module] = [nn.Flatten()]
        size = channels * pool_size * pool_size
        for units in fc:
            hidden += [nn.Dropout(dropout), nn.Linear(size, units), nn.ReLU(inplace=True)]
            size = units
        self.classifier = nn.Sequential(*hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.classifier(self.pool(self.features(x))))


def _check(options: dict[str, Any]) -> None:
    depth, width, fc = options["depth"], options["width"], options["fc"]
    if not isinstance(depth, int) or not 1 <= depth <= 8:
        raise ConfigError(f"simple_cnn: 'depth' must be an integer 1..8, got {depth!r}", path="model_options.depth")
    if not isinstance(width, int) or not 1 <= width <= 1024:
        raise ConfigError(f"simple_cnn: 'width' must be an integer 1..1024, got {width!r}", path="model_options.width")
    if not isinstance(fc, (list, tuple)) or not all(isinstance(u, int) and u > 0 for u in fc):
        raise ConfigError(f"simple_cnn: 'fc' must be a list of positive integers, got {fc!r}", path="model_options.fc")
    dropout = options["dropout"]
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"simple_cnn: 'dropout' must be in [0, 1), got {dropout!r}",
                          path="model_options.dropout")
    pool = options["pool_size"]
    if not isinstance(pool, int) or not 1 <= pool <= 16:
        raise ConfigError(f"simple_cnn: 'pool_size' must be an integer 1..16, got {pool!r}", path="model_options.pool_size")


def build_simple_cnn(
    num_classes: int, in_channels: int, options: dict[str, Any], pretrained_state: None = None
) -> nn.Module:
    """Build :class:`SimpleCNN` from merged ``options`` (see ``DEFAULT_OPTIONS``)."""
    _check(options)
    model = SimpleCNN(
        num_classes,
        in_channels,
        depth=options["depth"],
        width=options["width"],
        fc=list(options["fc"]),
        dropout=float(options["dropout"]),
        batch_norm=bool(options["batch_norm"]),
        pool_size=options["pool_size"],
    )
    n = len(model.features)
    mark_parts(
        model,
        backbone=["features"],
        head=["head"],
        stages=[[f"features.{i}"] for i in range(n)],
    )
    return model
