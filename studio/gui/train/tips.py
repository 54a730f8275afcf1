"""Plain-words tooltips for every training option: what it does and when to change it."""

from __future__ import annotations

OVERFIT = ("Overfitting: the model learns the training images by heart; the training loss "
           "keeps falling while the validation loss rises.")
UNDERFIT = "Underfitting: both losses stay high; the model has not learned enough yet."

TIPS: dict[str, str] = {
    "task": "What the model learns: one class per image (classification) or a class per "
            "pixel (semantic segmentation). The list comes from the engine.",
    "model": "The network architecture. Small models train fast and overfit less on few "
             "images; big pretrained ones need more images or frozen layers.",
    "pretrained": "Start from weights learned elsewhere (ImageNet or one of your runs) "
                  "instead of random ones: far better with few images.",
    "freeze.mode": "Keep some layers as the pretrained weights have them. Freezing is "
                   "regularisation: fewer weights to fit means less overfitting on few "
                   "images, but it can underfit when your images look unlike ImageNet.",
    "freeze.n_stages": "With 'first N stages': how many of the earliest stages stay frozen.",
    "finetune.unfreeze_epoch": "Fine-tune phase: at this epoch every frozen layer starts "
                               "learning too (0 = never). Train the head first, then all.",
    "finetune.backbone_lr_factor": "After unfreezing, the backbone learns at the learning "
                                   "rate times this factor (e.g. 0.1), so the pretrained "
                                   "features change only gently.",
    "loss.name": "What the model minimises. Cross entropy is the safe default; dice or "
                 "ce_dice help segmentation when a class covers few pixels; focal puts "
                 "weight on hard examples.",
    "loss.class_weights": "One weight per class (comma separated), empty = equal. Raise the "
                          "weight of rare classes when the model ignores them.",
    "loss.label_smoothing": "Softens the targets (e.g. 0.1): a mild regularisation against "
                            "over-confident, overfitted models.",
    "optimizer.name": "How weights are updated. Adam/AdamW work out of the box; SGD with "
                      "momentum can generalise a bit better with a tuned learning rate.",
    "optimizer.lr": "Learning rate: the step size of each update. Too high and the loss "
                    "jumps or becomes NaN; too low and training crawls (underfitting). "
                    "Try 10x up or down first.",
    "optimizer.weight_decay": "Pulls weights towards zero every step: regularisation "
                              "against overfitting. 1e-4 is mild; raise it when validation "
                              "loss rises.",
    "optimizer.momentum": "SGD/RMSprop: how much of the previous step carries on (0.9 is "
                          "usual).",
    "l1": "Penalty on the absolute size of weights (L1): regularisation that drives many "
          "weights to exactly zero. Usually 0; try 1e-5 against overfitting.",
    "dropout": "Randomly silences this fraction of units while training: regularisation "
               "against overfitting. Empty keeps the model's own default.",
    "scheduler.name": "How the learning rate changes over the run. Cosine lowers it "
                      "smoothly to the end; plateau lowers it when validation stops "
                      "improving; step lowers it every few epochs.",
    "scheduler.warmup_epochs": "Epochs in which the learning rate ramps up from a tenth. "
                               "Helps when the first steps make the loss jump.",
    "scheduler.min_lr_factor": "Cosine: the final learning rate as a fraction of the start.",
    "scheduler.step_size": "Step: epochs between learning-rate drops.",
    "scheduler.gamma": "Step: the factor of each drop (0.1 = ten times lower).",
    "scheduler.patience": "Plateau: epochs without improvement before the rate drops.",
    "epochs": "Passes over the training images. More epochs fit better until the model "
              "starts overfitting (early stopping ends the run then).",
    "batch_size": "Images per update. Larger batches are faster per image but need more "
                  "memory; lower it after an out-of-memory error.",
    "image_size": "Side in pixels the images are resized or cropped to. Larger sees finer "
                  "detail but costs memory and time.",
    "resize_policy": "How images reach the model's size: resize (stretch), crop (train on "
                     "crops at full resolution, predict by tiles) or letterbox (keep "
                     "proportions, pad).",
    "samples_per_image": "Random crops drawn from each training image per epoch (crop "
                         "policy): more crops per epoch from few large images.",
    "early_stopping.enabled": "End the run when the chosen metric has not improved for "
                              "'patience' epochs, and keep the best epoch's weights: the "
                              "simplest cure for overfitting.",
    "early_stopping.metric": "The validation figure that picks the best epoch.",
    "early_stopping.mode": "Whether a higher (max) or lower (min) value is better.",
    "early_stopping.patience": "Epochs without improvement before the run stops early.",
    "early_stopping.min_delta": "The smallest change that counts as an improvement.",
    "amp": "Mixed precision on NVIDIA GPUs: faster and half the memory, same accuracy. "
           "Ignored on the CPU.",
    "device": "Where training runs. A GPU is many times faster than the CPU.",
    "cpu_threads": "Threads torch uses on the CPU (0 = its own choice). Leave one core free "
                   "to keep the window quick while labelling during training.",
    "seed": "Start of the random numbers: the same seed and config repeat a run.",
    "grad_clip": "Caps the size of each update (0 = off); helps when the loss jumps to NaN.",
    "val_every": "Validate every N epochs (1 = every epoch).",
    "overfit_patience": "Epochs in a row with validation loss rising while training loss "
                        "falls before the plot marks the stretch 'overfitting'.",
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


LABELS: dict[str, str] = {
    "loss.name": "Loss", "loss.class_weights": "Class weights",
    "loss.label_smoothing": "Label smoothing", "optimizer.name": "Optimizer",
    "optimizer.lr": "Learning rate", "optimizer.weight_decay": "Weight decay",
    "optimizer.momentum": "Momentum", "l1": "L1", "grad_clip": "Gradient clip",
    "scheduler.name": "Scheduler", "scheduler.warmup_epochs": "Warm-up epochs",
    "scheduler.min_lr_factor": "Final LR factor", "scheduler.patience": "Plateau patience",
    "samples_per_image": "Crops per image", "early_stopping.enabled": "Enabled",
    "early_stopping.min_delta": "Min. change", "overfit_patience": "Overfit marker after",
    "cpu_threads": "CPU threads", "amp": "Mixed precision (AMP)", "pretrained": "Weights",
    "freeze.mode": "Freeze", "freeze.n_stages": "Stages",
    "finetune.unfreeze_epoch": "Unfreeze at epoch",
    "finetune.backbone_lr_factor": "Backbone LR factor", "tta": "Test-time flips (TTA)",
    "cache_mb": "Image cache", "val_every": "Validate every",
}


def label_for(path: str) -> str:
    """The label of a config path beside its editor ("scheduler.step_size" -> "Step size")."""
    if path in LABELS:
        return LABELS[path]
    last = path.rsplit(".", 1)[-1]
    if path.startswith(("augment.", "model_options.")):
        return last  # the spec's own names (p, degrees; width, anchor_sizes)
    return last.replace("_", " ").capitalize()
