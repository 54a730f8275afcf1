"""U-Net (Ronneberger et al. 2015) and a U-Net decoder on a torchvision ResNet encoder.

Both accept any input size: ``forward`` pads the input on the bottom/right to a multiple
of the network's total stride and crops the logits back, so the output is always
(N, num_classes, H, W) at input resolution.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet

from studio.core.errors import ConfigError
from studio.ml.models.transfer import mark_parts, replace_first_conv

DEFAULT_OPTIONS: dict[str, Any] = {
    "depth": 4,
    "width": 32,
    "batch_norm": True,
    "dropout": 0.0,
    "up": "transpose",
    # 2 or 4: the network works on 2x2 (4x4) pixel blocks -- space-to-depth in, pixel
    # shuffle out -- so its first level runs at half (quarter) resolution; the output is
    # still one logit per pixel. About 3x faster per crop on a CPU at width 16.
    "space_to_depth": 1,
}
RESNET_DEFAULT_OPTIONS: dict[str, Any] = {"decoder_width": 256, "dropout": 0.0}


def _double_conv(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad bottom/right to a multiple of ``multiple``; always one pad op (even of 0)
    so that a traced model (TorchScript/ONNX export) pads correctly at every size."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple) % multiple))


class _Up(nn.Module):
    """Upsample x2, concatenate the skip connection, double conv."""

    def __init__(self, cin: int, cskip: int, cout: int, batch_norm: bool, mode: str) -> None:
        super().__init__()
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            cup = cin // 2
        else:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            cup = cin
        self.conv = _double_conv(cup + cskip, cout, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Encoder ``downs`` (inc + depth pooled double convs), decoder ``ups``, 1x1 ``head``."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        depth: int = 4,
        width: int = 32,
        batch_norm: bool = True,
        dropout: float = 0.0,
        up: str = "transpose",
        space_to_depth: int = 1,
    ) -> None:
        super().__init__()
        self.block = int(space_to_depth)
        self.multiple = 2**depth * self.block
        chans = [width * 2**i for i in range(depth + 1)]
        cin = in_channels * self.block**2
        downs: list[nn.Module] = [_double_conv(cin, chans[0], batch_norm)]
        for i in range(depth):
            downs.append(
                nn.Sequential(nn.MaxPool2d(2), _double_conv(chans[i], chans[i + 1], batch_norm))
            )
        self.downs = nn.ModuleList(downs)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            _Up(chans[i + 1], chans[i], chans[i], batch_norm, up) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], num_classes * self.block**2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = _pad_to_multiple(x, self.multiple)
        if self.block > 1:
            x = F.pixel_unshuffle(x, self.block)
        skips: list[torch.Tensor] = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop())
        x = self.head(x)
        if self.block > 1:
            x = F.pixel_shuffle(x, self.block)
        return x[..., :h, :w]


def build_unet(
    num_classes: int, in_channels: int, options: dict[str, Any], pretrained_state: None = None
) -> nn.Module:
    """Build our own :class:`UNet` from merged ``options`` (see ``DEFAULT_OPTIONS``)."""
    depth, width, up = options["depth"], options["width"], options["up"]
    if not isinstance(depth, int) or not 1 <= depth <= 6:
        raise ConfigError(f"unet: 'depth' must be an integer 1..6, got {depth!r}", path="model_options.depth")
    if not isinstance(width, int) or not 4 <= width <= 256:
        raise ConfigError(f"unet: 'width' must be an integer 4..256, got {width!r}", path="model_options.width")
    if up not in ("transpose", "bilinear"):
        raise ConfigError(f"unet: 'up' must be 'transpose' or 'bilinear', got {up!r}", path="model_options.up")
    dropout = options["dropout"]
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"unet: 'dropout' must be in [0, 1), got {dropout!r}",
                          path="model_options.dropout")
    block = options["space_to_depth"]
    if block not in (1, 2, 4):
        raise ConfigError(f"unet: 'space_to_depth' must be 1, 2 or 4, got {block!r}", path="model_options.space_to_depth")
    if width < in_channels * block**2:
        # the first convolution would squeeze every block's pixels into fewer channels:
        # detail lost there is lost for good, however long the model trains
        need = in_channels * block**2
        raise ConfigError(f"unet: with 'space_to_depth' {block} each position carries {need} "
                          f"values ({in_channels} channel(s) x {block}x{block} pixels), so "
                          f"'width' must be at least {need}, got {width}", path="model_options.width")
    model = UNet(num_classes, in_channels, depth, width, bool(options["batch_norm"]),
                 float(dropout), up, block)
    mark_parts(
        model,
        backbone=["downs"],
        head=["head"],
        stages=[[f"downs.{i}"] for i in range(depth + 1)],
    )
    return model


class ResNetUNet(nn.Module):
    """U-Net decoder over the five scales of a torchvision ResNet (strides 2..32)."""

    def __init__(
        self, encoder: resnet.ResNet, num_classes: int, decoder_width: int, dropout: float
    ) -> None:
        super().__init__()
        self.multiple = 32
        self.encoder = encoder
        del self.encoder.fc
        del self.encoder.avgpool
        expansion = 4 if isinstance(encoder.layer1[0], resnet.Bottleneck) else 1
        enc = [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
        dec = [max(decoder_width // 2**i, 16) for i in range(5)]  # 256,128,64,32,16
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        cin = enc[4]
        ups = []
        for i, skip in enumerate([enc[3], enc[2], enc[1], enc[0]]):
            ups.append(_Up2(cin, skip, dec[i]))
            cin = dec[i]
        ups.append(_Up2(cin, 0, dec[4]))  # stride 2 -> full resolution, no skip
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(dec[4], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = _pad_to_multiple(x, self.multiple)
        e = self.encoder
        s1 = e.relu(e.bn1(e.conv1(x)))
        s2 = e.layer1(e.maxpool(s1))
        s3 = e.layer2(s2)
        s4 = e.layer3(s3)
        s5 = self.dropout(e.layer4(s4))
        y = self.ups[0](s5, s4)
        y = self.ups[1](y, s3)
        y = self.ups[2](y, s2)
        y = self.ups[3](y, s1)
        y = self.ups[4](y, None)
        return self.head(y)[..., :h, :w]


class _Up2(nn.Module):
    """Bilinear x2, optional skip concatenation, two conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = _double_conv(cin + cskip, cout, True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if skip is not None:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([skip, x], dim=1)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(x)


def build_resnet_unet(arch: str):
    """Return a builder for a U-Net with the torchvision ``arch`` (resnet18/34/50) encoder."""

    def build(
        num_classes: int,
        in_channels: int,
        options: dict[str, Any],
        pretrained_state: dict[str, torch.Tensor] | None = None,
    ) -> nn.Module:
        width, dropout = options["decoder_width"], options["dropout"]
        if not isinstance(width, int) or not 32 <= width <= 1024:
            raise ConfigError(f"{arch} U-Net: 'decoder_width' must be 32..1024, got {width!r}", path="model_options.decoder_width")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{arch} U-Net: 'dropout' must be in [0, 1), got {dropout!r}",
                          path="model_options.dropout")
        encoder = getattr(resnet, arch)(weights=None)
        if pretrained_state is not None:
            encoder.load_state_dict(pretrained_state)
        replace_first_conv(encoder, "conv1", in_channels)
        model = ResNetUNet(encoder, num_classes, width, float(dropout))
        mark_parts(
            model,
            backbone=["encoder"],
            head=["head"],
            stages=[["encoder.conv1", "encoder.bn1"]]
            + [[f"encoder.layer{i}"] for i in range(1, 5)],
        )
        return model

    return build
