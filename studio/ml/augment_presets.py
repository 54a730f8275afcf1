"""Named augmentation presets: none, light, heavy and the one recommended for a task.

Each returns a complete spec (studio.ml.augment.default_spec with some ops switched);
"recommended" is the task's default config's spec, so it follows the engine's defaults.
"""

from __future__ import annotations

from studio.core.errors import ConfigError

PRESETS = ("none", "light", "heavy", "recommended")

_LIGHT = {"hflip": {"enabled": True, "p": 0.5},
          "brightness": {"enabled": True, "p": 0.5, "factor": 0.1},
          "contrast": {"enabled": True, "p": 0.5, "factor": 0.1}}
_HEAVY = {"hflip": {"enabled": True, "p": 0.5}, "vflip": {"enabled": True, "p": 0.5},
          "rotation": {"enabled": True, "p": 0.5, "degrees": [-30.0, 30.0]},
          "scale": {"enabled": True, "p": 0.5, "scale": [0.5, 1.0]},
          "elastic": {"enabled": True, "p": 0.3},
          "brightness": {"enabled": True, "p": 0.5, "factor": 0.3},
          "contrast": {"enabled": True, "p": 0.5, "factor": 0.3},
          "gaussian_blur": {"enabled": True, "p": 0.2},
          "gaussian_noise": {"enabled": True, "p": 0.2},
          "cutout": {"enabled": True, "p": 0.2}}


def preset_spec(name: str, task: str) -> dict:
    """The complete augmentation spec of preset `name` for `task`."""
    from studio.ml.augment_spec import default_spec, validate_spec
    from studio.ml.config import default_config

    if name == "recommended":
        return default_config(task)["augment"]
    if name not in PRESETS:
        raise ConfigError(f"Unknown augmentation preset {name!r}; use one of: "
                          f"{', '.join(PRESETS)}.")
    spec = default_spec()
    for params in spec.values():
        params["enabled"] = False
    for op, params in {"none": {}, "light": _LIGHT, "heavy": _HEAVY}[name].items():
        spec[op].update(params)
    return validate_spec(spec)
