"""The augmentation spec: every op with its defaults, and its validation.

A leaf module (no torch): the config, the transforms (:mod:`studio.ml.augment`), the
batch ops (:mod:`studio.ml.augment_batch`) and the GUI's panels all read the spec from
here. A spec maps op names to ``{"enabled": bool, "p": probability, ...parameters}``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from typing import Any

from studio.core.errors import ConfigError

GEOMETRIC = ("hflip", "vflip", "rotation", "translate", "elastic", "scale", "crop")
PHOTOMETRIC = ("brightness", "contrast", "saturation", "hue", "gaussian_blur", "sharpen",
               "invert")
FLOAT_OPS = ("gaussian_noise", "cutout")
BATCH_OPS = ("mixup", "cutmix")

# op -> defaults; parameter kinds are in _KINDS
_DEFAULTS: dict[str, dict[str, Any]] = {
    "hflip": {"enabled": True, "p": 0.5},
    "vflip": {"enabled": False, "p": 0.5},
    "rotation": {"enabled": False, "p": 0.5, "degrees": [-15.0, 15.0]},
    "translate": {"enabled": False, "p": 0.5, "fraction": [0.1, 0.1]},
    "elastic": {"enabled": False, "p": 0.3, "alpha": 50.0, "sigma": 5.0},
    "scale": {"enabled": False, "p": 0.5, "scale": [0.5, 1.0], "ratio": [0.75, 1.3333]},
    "crop": {"enabled": False, "p": 1.0, "size": None, "padding": 0},
    "brightness": {"enabled": False, "p": 0.5, "factor": 0.2},
    "contrast": {"enabled": False, "p": 0.5, "factor": 0.2},
    "saturation": {"enabled": False, "p": 0.5, "factor": 0.2},
    "hue": {"enabled": False, "p": 0.5, "factor": 0.05},
    "gaussian_blur": {"enabled": False, "p": 0.3, "kernel_size": 5, "sigma": [0.1, 2.0]},
    "sharpen": {"enabled": False, "p": 0.3, "factor": 2.0},
    "invert": {"enabled": False, "p": 0.5},
    "gaussian_noise": {"enabled": False, "p": 0.3, "sigma": [0.01, 0.05]},
    "cutout": {"enabled": False, "p": 0.3, "scale": [0.02, 0.2], "ratio": [0.3, 3.3],
               "value": 0.0},
    "mixup": {"enabled": False, "p": 0.5, "alpha": 0.2},
    "cutmix": {"enabled": False, "p": 0.5, "alpha": 1.0},
}
# parameter -> (kind, low, high); kinds: num, range (two ordered numbers), pair (two
# numbers), odd (odd integer), int, size (None, an integer or [h, w])
_KINDS: dict[str, tuple[str, float, float]] = {
    "p": ("num", 0.0, 1.0),
    "rotation.degrees": ("range", -180.0, 180.0),
    "translate.fraction": ("pair", 0.0, 1.0),
    "elastic.alpha": ("num", 0.0, 1000.0),
    "elastic.sigma": ("num", 0.01, 100.0),
    "scale.scale": ("range", 0.01, 1.0),
    "scale.ratio": ("range", 0.1, 10.0),
    "crop.size": ("size", 1, 16384),
    "crop.padding": ("int", 0, 4096),
    "brightness.factor": ("num", 0.0, 1.0),
    "contrast.factor": ("num", 0.0, 1.0),
    "saturation.factor": ("num", 0.0, 1.0),
    "hue.factor": ("num", 0.0, 0.5),
    "gaussian_blur.kernel_size": ("odd", 1, 99),
    "gaussian_blur.sigma": ("range", 0.01, 50.0),
    "sharpen.factor": ("num", 0.0, 10.0),
    "gaussian_noise.sigma": ("range", 0.0, 1.0),
    "cutout.scale": ("range", 0.0, 1.0),
    "cutout.ratio": ("range", 0.01, 100.0),
    "cutout.value": ("num", 0.0, 1.0),
    "mixup.alpha": ("num", 0.01, 100.0),
    "cutmix.alpha": ("num", 0.01, 100.0),
}


def default_spec() -> dict[str, dict[str, Any]]:
    """Every op with its defaults: horizontal flip on (p=0.5), everything else off."""
    return copy.deepcopy(_DEFAULTS)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_param(op: str, key: str, value: Any) -> Any:
    kind, lo, hi = _KINDS.get(f"{op}.{key}", _KINDS["p"] if key == "p" else ("?", 0, 0))
    where = f"augmentation '{op}': '{key}'"
    if kind == "num":
        if not _is_num(value) or not lo <= value <= hi:
            raise ConfigError(f"{where} must be a number in [{lo}, {hi}], got {value!r}")
        return float(value)
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(f"{where} must be an integer in [{lo}, {hi}], got {value!r}")
        return value
    if kind == "odd":
        if not isinstance(value, int) or value % 2 == 0 or not lo <= value <= hi:
            raise ConfigError(f"{where} must be an odd integer in [{lo}, {hi}], got {value!r}")
        return value
    if kind == "size":
        if value is None:
            return None
        vals = [value, value] if isinstance(value, int) else value
        if (not isinstance(vals, (list, tuple)) or len(vals) != 2
                or not all(isinstance(v, int) and lo <= v <= hi for v in vals)):
            raise ConfigError(f"{where} must be null, an integer or [height, width], "
                              f"got {value!r}")
        return [int(v) for v in vals]
    if kind in ("range", "pair"):
        if op == "rotation" and _is_num(value):  # a single number means [-d, d]
            value = [-abs(value), abs(value)]
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(_is_num(v) and lo <= v <= hi for v in value)):
            raise ConfigError(f"{where} must be two numbers in [{lo}, {hi}], got {value!r}")
        if kind == "range" and value[0] > value[1]:
            raise ConfigError(f"{where} is a range [min, max] but min > max: {value!r}")
        return [float(v) for v in value]
    raise ConfigError(f"{where}: unknown parameter (valid: "
                      f"{', '.join(k for k in _DEFAULTS[op] if k != 'enabled')})")


def validate_spec(spec: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A complete, checked copy of ``spec`` (missing ops/params get their defaults)."""
    if spec is None:
        return default_spec()
    if not isinstance(spec, dict):
        raise ConfigError(f"an augmentation spec is a dict of ops, got {type(spec).__name__}")
    out = default_spec()
    for op, params in spec.items():
        if op not in _DEFAULTS:
            raise ConfigError(f"unknown augmentation {op!r}; valid: {', '.join(_DEFAULTS)}")
        if not isinstance(params, dict):
            raise ConfigError(f"augmentation {op!r} needs a dict of parameters, got {params!r}")
        for key, value in params.items():
            if key == "enabled":
                if not isinstance(value, bool):
                    raise ConfigError(f"augmentation '{op}': 'enabled' must be true or false")
                out[op][key] = value
            else:
                out[op][key] = _check_param(op, key, value)
    return out


def parameter_kinds() -> dict[str, dict[str, tuple[str, float, float]]]:
    """Each op's parameters as {op: {param: (kind, low, high)}} for building editors.

    Kinds: num, int, odd (odd integer), range ([min, max]), pair (two numbers), size
    (null, an integer or [h, w]). Every op also has "enabled" (bool) and "p" (num 0-1).
    """
    out: dict[str, dict[str, tuple[str, float, float]]] = {}
    for op, params in _DEFAULTS.items():
        out[op] = {key: _KINDS.get(f"{op}.{key}", _KINDS["p"]) for key in params
                   if key != "enabled"}
    return out


# --- typed view ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One op of a checked spec: whether it is on and with which probability."""

    enabled: bool
    p: float


@dataclass(frozen=True)
class Rotation(Op):
    degrees: list[float]  # [min, max] degrees


@dataclass(frozen=True)
class Translate(Op):
    fraction: list[float]  # largest shift, [horizontal, vertical], of the image side


@dataclass(frozen=True)
class Elastic(Op):
    alpha: float  # displacement strength, pixels
    sigma: float  # smoothness of the displacement field, pixels


@dataclass(frozen=True)
class Scale(Op):
    scale: list[float]  # [min, max] area of the crop, of the image's
    ratio: list[float]  # [min, max] aspect ratio of the crop


@dataclass(frozen=True)
class Crop(Op):
    size: list[int] | None  # [height, width]; None: the run's image size
    padding: int  # pixels padded around the image before cropping


@dataclass(frozen=True)
class Jitter(Op):
    factor: float  # brightness / contrast / saturation / hue jitter


@dataclass(frozen=True)
class GaussianBlur(Op):
    kernel_size: int  # odd, pixels
    sigma: list[float]  # [min, max]


@dataclass(frozen=True)
class Sharpen(Op):
    factor: float


@dataclass(frozen=True)
class GaussianNoise(Op):
    sigma: list[float]  # [min, max], of the [0, 1] intensity range


@dataclass(frozen=True)
class Cutout(Op):
    scale: list[float]  # [min, max] erased area, of the image's
    ratio: list[float]  # [min, max] aspect ratio of the erased box
    value: float  # the erased pixels' value (normalised)


@dataclass(frozen=True)
class Mix(Op):
    alpha: float  # Beta(alpha, alpha) mixing weights


@dataclass(frozen=True)
class AugmentSpec:
    """A checked augmentation spec read by attribute (`spec.rotation.degrees`): what the
    transforms build from. `AugmentSpec.of(spec_dict)` checks the JSON dict first."""

    hflip: Op
    vflip: Op
    rotation: Rotation
    translate: Translate
    elastic: Elastic
    scale: Scale
    crop: Crop
    brightness: Jitter
    contrast: Jitter
    saturation: Jitter
    hue: Jitter
    gaussian_blur: GaussianBlur
    sharpen: Sharpen
    invert: Op
    gaussian_noise: GaussianNoise
    cutout: Cutout
    mixup: Mix
    cutmix: Mix

    @classmethod
    def of(cls, spec: AugmentSpec | dict[str, Any] | None) -> AugmentSpec:
        """`spec` as an AugmentSpec (a dict is checked with `validate_spec`: ConfigError)."""
        if isinstance(spec, AugmentSpec):
            return spec
        checked = validate_spec(spec)
        kinds = {f.name: f.type for f in fields(cls)}
        return cls(**{op: _OP_TYPES[kinds[op]](**params) for op, params in checked.items()})

    def op(self, name: str) -> Op:
        """The op called `name` ("hflip", ...)."""
        return getattr(self, name)


_OP_TYPES: dict[str, type[Op]] = {t.__name__: t for t in (
    Op, Rotation, Translate, Elastic, Scale, Crop, Jitter, GaussianBlur, Sharpen,
    GaussianNoise, Cutout, Mix)}
