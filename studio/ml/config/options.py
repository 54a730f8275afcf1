"""Field specs of the parts of a config whose fields depend on a choice: the chosen
model's options (``model_options.<name>``) and the augmentation ops
(``augment.<op>.<param>``, from `studio.ml.augment_spec`).

Every option is bounded here, before anything is built: a fully connected layer of a
billion units is refused as ``model_options.fc``, not met by the allocator.
"""

from __future__ import annotations

from typing import Any

from studio.core.errors import ConfigError
from studio.ml.augment_spec import parameter_kinds
from studio.ml.config.fields import FieldSpec, fail, is_int, is_number

MAX_FC_UNITS = 16_384
MAX_FC_LAYERS = 8


def _odd(path: str):
    def check(value: int) -> int:
        if value % 2 == 0:
            raise fail(path, f"must be an odd whole number, got {value}.")
        return value
    return check


def _ordered(path: str):
    def check(value: list) -> list:
        if value[0] > value[1]:
            raise fail(path, f"is a range [min, max] but min > max: {value!r}.")
        return value
    return check


# option name -> (kind, help, keyword arguments of FieldSpec); per-model bounds below
_OPTIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "depth": ("int", "Number of blocks (levels): deeper sees larger context, costs more.",
              {"minimum": 1, "maximum": 8}),
    "width": ("int", "Channels of the first block; each deeper block doubles them.",
              {"minimum": 1, "maximum": 1024}),
    "fc": ("int_list", "Units of each fully connected layer before the output layer.",
           {"minimum": 1, "maximum": MAX_FC_UNITS, "max_len": MAX_FC_LAYERS}),
    "dropout": ("float", "Dropout probability of the model's dropout layers.",
                {"minimum": 0.0, "maximum": 1.0, "max_exclusive": True}),
    "batch_norm": ("bool", "Batch normalisation after each convolution.", {}),
    "pool_size": ("int", "Side of the pooled feature map the fully connected layers read.",
                  {"minimum": 1, "maximum": 16}),
    "up": ("enum", "Upsampling in the decoder: learned (transpose) or bilinear.",
           {"choices": ("transpose", "bilinear")}),
    "space_to_depth": ("enum", "Work on 2x2 or 4x4 pixel blocks (faster; still one logit "
                               "per pixel); 1: full resolution.", {"choices": (1, 2, 4)}),
    "decoder_width": ("int", "Channels of the decoder's first level.",
                      {"minimum": 32, "maximum": 1024}),
    "anchor_sizes": ("int_list_list", "Anchor box sizes in pixels, one list per feature "
                                      "level (finest first).",
                     {"minimum": 1, "maximum": 4096, "min_len": 1, "max_len": 6,
                      "unit": "px"}),
    "aspect_ratios": ("float_list", "Anchor shapes (height / width), shared by every level.",
                      {"minimum": 0.0, "maximum": 100.0, "min_exclusive": True,
                       "min_len": 1, "max_len": 16}),
    "min_size": ("int", "The model scales each image so its shorter side is this.",
                 {"minimum": 32, "maximum": 8192, "unit": "px"}),
    "max_size": ("int", "... and its longer side at most this.",
                 {"minimum": 32, "maximum": 8192, "unit": "px"}),
    "detections_per_image": ("int", "At most this many detections per image.",
                             {"minimum": 1, "maximum": 10_000}),
    "trainable_backbone_layers": ("int", "Only the last N backbone stages train; null: all.",
                                  {"minimum": 0, "maximum": 6, "optional": True}),
    "fpn_channels": ("int", "Channels of the feature pyramid.",
                     {"minimum": 8, "maximum": 1024}),
    "seed_threshold": ("float", "Instance split: a pixel seeds an object where its "
                                "predicted distance to the edge is above this (higher "
                                "splits touching objects more readily).",
                       {"minimum": 0.0, "maximum": 1.0, "max_exclusive": True}),
    "mask_threshold": ("float", "Instance split: foreground probability a pixel needs to "
                                "belong to an object.",
                       {"minimum": 0.0, "maximum": 1.0, "max_exclusive": True}),
    "min_area": ("int", "Instance split: objects of fewer pixels are dropped.",
                 {"minimum": 1, "maximum": 100_000, "unit": "px"}),
    "boundary_weight": ("float", "Weight of the touching-border pixels in the loss (they "
                                 "are few and decide the split).",
                        {"minimum": 0.0, "maximum": 100.0, "min_exclusive": True}),
    "distance_weight": ("float", "Weight of the distance-to-the-edge map in the loss (its "
                                 "dips between touching objects seed the split).",
                        {"minimum": 0.0, "maximum": 100.0, "min_exclusive": True}),
    "input_norm": ("enum", "Instance U-Net input: image (each image's channels scaled by "
                           "its own mean and spread, as StarDist and Cellpose do, so dim and "
                           "bright images look alike) or none (the run's normalisation only).",
                   {"choices": ("image", "none")}),
    "min_stride": ("enum", "Finest feature level: stride 8, or 4 for objects under ~12 px.",
                   {"choices": (4, 8)}),
}
# model -> option -> FieldSpec keyword arguments that differ from _OPTIONS
_MODEL_BOUNDS: dict[str, dict[str, dict[str, Any]]] = {
    "unet": {"depth": {"maximum": 6}, "width": {"minimum": 4, "maximum": 256}},
    "unet_instances": {"depth": {"maximum": 6}, "width": {"minimum": 4, "maximum": 256}},
}


def option_spec(model: str, name: str, default: Any) -> FieldSpec:
    """The spec of option `name` of `model` (default: what the config would use)."""
    path = f"model_options.{name}"
    if name not in _OPTIONS:  # an option the table does not know: any JSON value
        return FieldSpec(path, "json", default, f"Option {name!r} of {model}.",
                         section="model")
    kind, help_text, kw = _OPTIONS[name]
    kw = {**kw, **_MODEL_BOUNDS.get(model, {}).get(name, {})}
    return FieldSpec(path, kind, default, help_text, label=name.replace("_", " ").capitalize(),
                     section="model", **kw)


def coerce_option(name: str, value: Any) -> Any:
    """Older spellings: one anchor size per level (``[16, 32]``) means ``[[16], [32]]``."""
    if name == "anchor_sizes" and isinstance(value, (list, tuple)):
        return [[v] if is_int(v) else v for v in value]
    return value


_OP_HELP = {
    "hflip": "Mirror left-right.", "vflip": "Mirror top-bottom.",
    "rotation": "Rotate by a random angle.", "translate": "Shift by a random fraction.",
    "elastic": "Elastic deformation (bends shapes smoothly).",
    "scale": "Random resized crop: a part of the image scaled back to size.",
    "crop": "Random crop of a fixed size.", "brightness": "Random brightness change.",
    "contrast": "Random contrast change.", "saturation": "Random saturation change.",
    "hue": "Random hue shift.", "gaussian_blur": "Gaussian blur.",
    "sharpen": "Sharpening.",
    "invert": "Invert the intensities: dark objects on a bright ground become bright on "
              "dark.",
    "gaussian_noise": "Added Gaussian noise.",
    "cutout": "Erase a random rectangle.", "mixup": "Blend pairs of images and labels.",
    "cutmix": "Paste a patch of one image into another, labels by area.",
}
_PARAM_HELP = {
    "p": ("Probability the op is applied to an image.", ""),
    "degrees": ("Range [min, max] of the rotation angle.", "degrees"),
    "fraction": ("Largest shift as a fraction of width and height.", ""),
    "alpha": ("Strength (elastic: displacement; mixup/cutmix: Beta distribution "
              "parameter).", ""),
    "sigma": ("Smoothness (elastic) or standard deviation range (blur, noise).", ""),
    "scale": ("Range [min, max] of the area kept or erased, as a fraction.", ""),
    "ratio": ("Range [min, max] of the aspect ratio.", ""),
    "size": ("Crop size [height, width]; null: image_size.", "px"),
    "padding": ("Pixels padded around the image before cropping.", "px"),
    "factor": ("Strength of the change.", ""),
    "kernel_size": ("Blur kernel side (odd).", "px"),
    "value": ("Fill value of the erased rectangle (0-1).", ""),
}


def augment_specs(defaults: dict[str, dict[str, Any]]) -> list[FieldSpec]:
    """A spec for every op's "enabled" and parameters; `defaults` is the task's spec."""
    out: list[FieldSpec] = []
    kinds = parameter_kinds()
    for op, params in kinds.items():
        base = f"augment.{op}"
        out.append(FieldSpec(f"{base}.enabled", "bool", defaults[op]["enabled"],
                             _OP_HELP.get(op, op), label=op.replace("_", " ").capitalize(),
                             section="augment"))
        for key, (kind, lo, hi) in params.items():
            path = f"{base}.{key}"
            text, unit = _PARAM_HELP.get(key, ("", ""))
            common = {"label": key.replace("_", " ").capitalize(), "section": "augment",
                      "unit": unit}
            default = defaults[op].get(key)
            if kind == "num":
                spec = FieldSpec(path, "float", default, text, minimum=lo, maximum=hi, **common)
            elif kind in ("int", "odd"):
                spec = FieldSpec(path, "int", default, text, minimum=lo, maximum=hi,
                                 check=_odd(path) if kind == "odd" else None, **common)
            elif kind in ("range", "pair"):
                spec = FieldSpec(path, "float_list", default, text, minimum=lo, maximum=hi,
                                 min_len=2, max_len=2,
                                 check=_ordered(path) if kind == "range" else None, **common)
            else:  # size: null or [h, w]
                spec = FieldSpec(path, "int_list", default, text, minimum=lo, maximum=hi,
                                 min_len=2, max_len=2, optional=True, **common)
            out.append(spec)
    return out


def coerce_augment(path: str, value: Any) -> Any:
    """Older spellings: a rotation of d degrees means [-d, d]; a crop size n means [n, n]."""
    if path == "augment.rotation.degrees" and is_number(value):
        return [-abs(value), abs(value)]
    if path == "augment.crop.size" and is_int(value):
        return [value, value]
    return value


def check_section(value: Any, path: str) -> dict:
    """`value` must be a JSON object (a dict of options)."""
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be an object of options (a dict), got "
                          f"{type(value).__name__}.", path=path)
    return value
