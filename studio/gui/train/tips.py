"""Plain-words tooltips of the Train workspace's own controls and augmentation groups, and
the labels of fields whose spec has none. A config field's tooltip is the engine's help
text (its FieldSpec), shown with its unit and bounds."""

from __future__ import annotations

OVERFIT = ("Overfitting: the model learns the training images by heart; the training loss "
           "keeps falling while the validation loss rises.")
UNDERFIT = "Underfitting: both losses stay high; the model has not learned enough yet."

TIPS: dict[str, str] = {
    # what the controls and the panels' own lists are; every config field's tooltip is
    # the engine's help text (studio.ml.config.config_fields)
    "task": "What the model learns: one class per image (classification), a class per "
            "pixel (semantic segmentation), boxes (detection) or a mask per object "
            "(instance segmentation). The list comes from the engine.",
    "model": "The network architecture. Small models train fast and overfit less on few "
             "images; big pretrained ones need more images or frozen layers.",
    "pretrained": "Start from weights learned elsewhere (ImageNet or one of your runs) "
                  "instead of random ones: far better with few images.",
    "device": "Where training runs. A GPU is many times faster than the CPU.",
}

AUGMENT_TIPS: dict[str, str] = {
    "hflip": "Mirror left-right. Fine when a mirrored image keeps its label (cells, aerial "
             "images); wrong for text or digits.",
    "vflip": "Mirror up-down. Only when images have no up and down.",
    "rotation": "Rotate by a random angle in the range (degrees).",
    "translate": "Shift by up to this fraction of the size (horizontal, vertical).",
    "elastic": "Smooth random warping (alpha: strength, sigma: smoothness); the U-Net "
               "paper's key augmentation for microscopy.",
    "scale": "Random zoom: crop a part of this area range and aspect-ratio range.",
    "crop": "Random crop of a fixed size (height, width), with optional padding.",
    "brightness": "Random brightness change up to this factor.",
    "contrast": "Random contrast change up to this factor.",
    "saturation": "Random colour saturation change up to this factor.",
    "hue": "Random hue shift up to this factor.",
    "gaussian_blur": "Blur with a random sigma in the range (kernel size odd).",
    "sharpen": "Sharpen by this factor.",
    "invert": "Invert the intensities, so the model sees objects both brighter and darker "
              "than their background.",
    "gaussian_noise": "Add noise with a random sigma in the range (images in 0-1).",
    "cutout": "Blank a random patch (area fraction range, aspect ratio range, fill value): "
              "the model must use the rest of the image.",
    "mixup": "Blend pairs of images and their labels (alpha: mixing strength).",
    "cutmix": "Paste a patch of one image into another, labels mixed by area.",
}
AUGMENT_GENERAL = ("Augmentation shows the model altered copies of the training images: "
                   "regularisation against overfitting. Too strong and it underfits.")
PARAM_TIPS = {
    "enabled": "Use this augmentation.",
    "p": "Probability that an image gets this augmentation.",
}


def tip(path: str) -> str:
    """The tooltip of a config path (augmentation and model options included)."""
    if path in TIPS:
        return TIPS[path]
    parts = path.split(".")
    if parts[0] == "augment" and len(parts) >= 2:
        op = AUGMENT_TIPS.get(parts[1], "")
        if len(parts) == 3 and parts[2] in PARAM_TIPS:
            return f"{PARAM_TIPS[parts[2]]} {op}"
        return f"{op} {AUGMENT_GENERAL}"
    if parts[0] == "model_options":
        return (f"Model option '{parts[-1]}' of the chosen architecture: wider or deeper models "
                "learn more but overfit sooner on few images.")
    return path


LABELS: dict[str, str] = {"model": "Model", "pretrained": "Weights", "device": "Device"}


def label_for(path: str) -> str:
    """The label of a config path beside its editor ("scheduler.step_size" -> "Step size")."""
    if path in LABELS:
        return LABELS[path]
    last = path.rsplit(".", 1)[-1]
    if path.startswith(("augment.", "model_options.")):
        return last  # the spec's own names (p, degrees; width, anchor_sizes)
    return last.replace("_", " ").capitalize()
