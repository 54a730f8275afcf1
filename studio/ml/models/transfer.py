"""Transfer learning: pretrained weights, checkpoint loading, freezing, parameter groups.

Every model built by the registry carries three plain attributes naming its parts by
submodule path (strings survive ``deepcopy``, pickling and DDP wrapping):

* ``studio_backbone``: the encoder (the part ImageNet weights initialise),
* ``studio_head``: the final prediction layer(s), created fresh for ``num_classes``,
* ``studio_stages``: the encoder split into ordered stages, each a list of paths.

Whatever is neither backbone nor head (a decoder, ASPP, hidden FC layers) is the "neck":
:func:`parameter_groups` counts it with the head (it is trained at the full LR).

Frozen BatchNorm layers: :func:`freeze` only turns ``requires_grad`` off; because
``model.train()`` puts every BN back into training mode (updating running statistics),
the trainer calls :func:`set_frozen_bn_eval` right after each ``model.train()``. It puts
every BN whose affine parameters are all frozen into eval mode, so a frozen part keeps
exactly the statistics it was pretrained with.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import CheckpointError, ConfigError, WeightsUnavailableError
from studio.ml.models.spec import ModelSpec
from studio.ml.tasks import FREEZE_MODES


# --- parts of a model ------------------------------------------------------------------
def mark_parts(
    model: nn.Module, *, backbone: list[str], head: list[str], stages: list[list[str]]
) -> None:
    """Record which submodules form the backbone, the head and the encoder stages."""
    for name in [*backbone, *head, *(n for s in stages for n in s)]:
        model.get_submodule(name)  # fail early on a typo
    model.studio_backbone = list(backbone)
    model.studio_head = list(head)
    model.studio_stages = [list(s) for s in stages]


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _parts(model: nn.Module, attr: str) -> list[Any]:
    inner = unwrap(model)
    value = getattr(inner, attr, None)
    if value is None:
        raise ConfigError(
            f"{type(inner).__name__} has no '{attr}' description; build it with "
            "studio.ml.models.build_model to use transfer-learning helpers"
        )
    return value


def _params_of(model: nn.Module, names: list[str]) -> list[nn.Parameter]:
    inner = unwrap(model)
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for name in names:
        for p in inner.get_submodule(name).parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def parameter_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """{"backbone": encoder parameters, "head": every other parameter} (disjoint, complete)."""
    backbone = _params_of(model, _parts(model, "studio_backbone"))
    ids = {id(p) for p in backbone}
    head = [p for p in unwrap(model).parameters() if id(p) not in ids]
    return {"backbone": backbone, "head": head}


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the final prediction layer(s) only."""
    return _params_of(model, _parts(model, "studio_head"))


def stages(model: nn.Module) -> list[nn.Module]:
    """Ordered encoder stages (a stage of several modules comes as an ``nn.ModuleList``)."""
    inner = unwrap(model)
    out: list[nn.Module] = []
    for names in _parts(model, "studio_stages"):
        mods = [inner.get_submodule(n) for n in names]
        out.append(mods[0] if len(mods) == 1 else nn.ModuleList(mods))
    return out


def freeze(model: nn.Module, mode: str, n_stages: int = 0) -> None:
    """Turn ``requires_grad`` off for part of the model; everything else is made trainable.

    ``none``: train everything. ``backbone``: freeze the encoder. ``all_but_head``: freeze
    all but the final prediction layer(s). ``first_n_stages``: freeze the first
    ``n_stages`` encoder stages (0 <= n_stages <= len(stages(model))).
    """
    if mode not in FREEZE_MODES:
        raise ConfigError(f"unknown freeze mode {mode!r}; use one of {', '.join(FREEZE_MODES)}")
    unfreeze_all(model)
    if mode == "none":
        return
    if mode == "backbone":
        frozen = parameter_groups(model)["backbone"]
    elif mode == "all_but_head":
        keep = {id(p) for p in head_parameters(model)}
        frozen = [p for p in unwrap(model).parameters() if id(p) not in keep]
    else:
        names = _parts(model, "studio_stages")
        if not isinstance(n_stages, int) or not 0 <= n_stages <= len(names):
            raise ConfigError(
                f"n_stages must be an integer between 0 and {len(names)} for this model, "
                f"got {n_stages!r}"
            )
        frozen = _params_of(model, [n for s in names[:n_stages] for n in s])
    for p in frozen:
        p.requires_grad_(False)


def unfreeze_all(model: nn.Module) -> None:
    """Make every parameter trainable again (BN layers follow the next ``model.train()``)."""
    for p in model.parameters():
        p.requires_grad_(True)


def set_frozen_bn_eval(model: nn.Module) -> int:
    """Put BatchNorm layers whose affine parameters are all frozen into eval mode.

    Call after ``model.train()``. Returns how many layers were switched.
    """
    count = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
                count += 1
    return count


def optimizer_param_groups(
    model: nn.Module, lr: float, backbone_lr_factor: float = 1.0, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters: backbone at ``lr * factor``.

    Empty groups are left out; each group carries a ``name`` ("backbone" / "head").
    """
    if backbone_lr_factor < 0:
        raise ConfigError(f"backbone_lr_factor must be >= 0, got {backbone_lr_factor}")
    groups = []
    for name, params in parameter_groups(model).items():
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            factor = backbone_lr_factor if name == "backbone" else 1.0
            groups.append(
                {"params": trainable, "lr": lr * factor, "weight_decay": weight_decay,
                 "name": name}
            )
    return groups


def replace_first_conv(model: nn.Module, path: str, in_channels: int) -> None:
    """Replace the Conv2d at ``path`` so it takes ``in_channels`` inputs.

    The new kernel is the old one averaged over its input channels, repeated and scaled by
    ``old_in / in_channels``, so a grey image replicated over the channels gives the same
    response as before (for random weights this keeps the initial activation scale).
    """
    old = model.get_submodule(path)
    if not isinstance(old, nn.Conv2d):
        raise TypeError(f"{path} is {type(old).__name__}, not Conv2d")
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
        old.dilation, old.groups, old.bias is not None, old.padding_mode,
    )
    with torch.no_grad():
        mean = old.weight.mean(dim=1, keepdim=True)
        new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (old.in_channels / in_channels))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, new)


# --- pretrained ImageNet weights -------------------------------------------------------
def _weights(spec: ModelSpec):
    if not spec.supports_pretrained or not spec.pretrained_weights_name:
        raise ConfigError(f"model {spec.name!r} has no pretrained weights; use pretrained=None")
    from torchvision.models import get_weight

    return get_weight(spec.pretrained_weights_name)


def weights_file(spec: ModelSpec) -> Path:
    """Where torch.hub keeps the ImageNet weights of ``spec`` (``<hub dir>/checkpoints/``)."""
    url = _weights(spec).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _download(url: str, dst: Path, hash_prefix: str | None) -> None:
    """Download ``url`` to ``dst`` (verified against the hash in the file name)."""
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=False)


def load_pretrained_state(spec: ModelSpec, allow_download: bool | None = None) -> dict:
    """The ImageNet state dict of ``spec``: from the torch.hub cache, else downloaded.

    Downloads are skipped when ``allow_download`` is False or the environment variable
    ``STUDIO_OFFLINE`` is set. Raises :class:`WeightsUnavailableError` (naming the file,
    the folder to put it in and the URL) when the weights cannot be had.
    """
    weights = _weights(spec)
    path = weights_file(spec)
    if allow_download is None:
        allow_download = not os.environ.get("STUDIO_OFFLINE")
    if not path.is_file():
        help_text = (
            f"Pretrained weights for {spec.name!r} are not cached: copy the file "
            f"'{path.name}' into the folder '{path.parent}' (download it from {weights.url}), "
            "or train without pretrained weights."
        )
        if not allow_download:
            raise WeightsUnavailableError(help_text)
        stem = path.name.rsplit(".", 1)[0]
        hash_prefix = stem.rsplit("-", 1)[-1] if "-" in stem else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _download(weights.url, path, hash_prefix)
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            raise WeightsUnavailableError(f"{help_text} (download failed: {exc})") from exc
    state = _torch_load(path)
    return state.get("model", state) if isinstance(state, dict) else state


# --- our own and foreign checkpoints ---------------------------------------------------
@dataclass
class LoadReport:
    """What :func:`load_checkpoint_weights` did with each tensor."""

    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # same name, other shape
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model

    def summary(self) -> str:
        total = len(self.matched) + len(self.unmatched) + len(self.missing)
        parts = [f"loaded {len(self.matched)} of {total} tensors"]
        for label, names in (
            ("shape mismatch", self.unmatched),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
        ):
            if names:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                parts.append(f"{len(names)} {label} ({shown})")
        return "; ".join(parts)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError,
            ValueError, AttributeError, TypeError, KeyError, IndexError) as exc:
        # the weights-only unpickler meets arbitrary bytes with any of these
        raise CheckpointError(
            f"'{path}' is not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Choose a .pt/.pth file saved "
            "by this application or by torch.save(state_dict)."
        ) from exc


def _strip(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def checkpoint_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The named tensors of a checkpoint file: a raw state dict, our checkpoints
    ``{"model": state_dict, ...}`` or a ``{"state_dict": ...}`` dict, with ``module.``
    prefixes (DDP) stripped. ConfigError when the file does not exist, CheckpointError
    when it holds no weights."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' does not exist; choose an existing file")
    obj = _torch_load(path)
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"'{path}' holds no model weights (expected a state dict or a dict with a "
            "'model' state dict)"
        )
    return {_strip(str(k)): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_checkpoint_weights(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load the shape-matching tensors of a checkpoint (`checkpoint_tensors`) into
    ``model``."""
    loaded = checkpoint_tensors(path)
    target = unwrap(model)
    own = target.state_dict()
    report = LoadReport()
    good: dict[str, torch.Tensor] = {}
    for key, tensor in own.items():
        if key not in loaded:
            report.missing.append(key)
        elif loaded[key].shape != tensor.shape:
            report.unmatched.append(key)
        else:
            report.matched.append(key)
            good[key] = loaded[key]
    report.unexpected = [k for k in loaded if k not in own]
    target.load_state_dict(good, strict=False)
    return report
