"""Overlay pictures (RGBA uint8 arrays) of label maps, differences and probabilities."""

from __future__ import annotations

import cv2
import numpy as np

from studio.ml.tasks import IGNORE_INDEX as UNLABELLED

# Difference colours (RGB): true positive, false positive, false negative, wrong class.
TP_COLOR = (40, 200, 80)
FP_COLOR = (230, 50, 50)
FN_COLOR = (40, 120, 255)
WRONG_COLOR = (255, 170, 0)
HEATMAP = cv2.COLORMAP_INFERNO
OVERLAY_MAX_SIDE = 4096  # bigger overlays are shown downscaled (the image keeps its tiles)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """(r, g, b) of a "#rrggbb" colour (the store's form); magenta for anything else."""
    text = str(color).strip().lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    try:
        value = int(text, 16) if len(text) == 6 else -1
    except ValueError:
        value = -1
    if value < 0:
        return 255, 0, 255
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _lut32(rows: np.ndarray) -> np.ndarray:
    """A (256, 4) uint8 RGBA table as 256 uint32 (one gather per pixel, not four)."""
    return np.ascontiguousarray(rows, np.uint8).view(np.uint32).ravel()


def _apply(lut: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return _lut32(lut)[np.asarray(codes, np.uint8)].view(np.uint8).reshape(codes.shape + (4,))


def _shown(hidden) -> np.ndarray:
    """(256,) bool: which label values are drawn (the classes not hidden; never 255)."""
    shown = np.ones(256, bool)
    shown[UNLABELLED] = False
    for k in hidden or ():
        if 0 <= int(k) < 256:
            shown[int(k)] = False
    return shown


def label_overlay(labels: np.ndarray, colors: list[tuple[int, int, int]],
                  hidden=()) -> np.ndarray:
    """RGBA of a label map: each class in its colour, the first (often called background)
    like every other; the classes in `hidden` and unlabelled pixels transparent."""
    lut = np.zeros((256, 4), np.uint8)
    shown = _shown(hidden)
    for i, rgb in enumerate(colors[:255]):
        lut[i, :3] = rgb
        lut[i, 3] = 255 if shown[i] else 0
    return _apply(lut, labels)


# difference codes: 0 transparent, 1 TP, 2 FP, 3 FN, 4 wrong shown class
_DIFF_LUT = np.zeros((256, 4), np.uint8)
for _code, _rgb in ((1, TP_COLOR), (2, FP_COLOR), (3, FN_COLOR), (4, WRONG_COLOR)):
    _DIFF_LUT[_code, :3], _DIFF_LUT[_code, 3] = _rgb, 255
# index = 4 * target is shown + 2 * prediction is shown + same class
_DIFF_CODE = np.array([0, 0, 2, 0, 3, 0, 4, 1], np.uint8)


def difference_overlay(pred: np.ndarray, target: np.ndarray, hidden=()) -> np.ndarray:
    """RGBA of prediction against label, over the shown classes (all but `hidden`): a
    shown class predicted where it is labelled green, predicted where a hidden class is
    labelled red (false positive), labelled but predicted as a hidden class blue (false
    negative), labelled as one shown class and predicted as another orange. Agreement on
    hidden classes and pixels without a label stay transparent. With nothing hidden every
    class counts: right is green, wrong is orange; hide the background class for the
    usual false positive / false negative picture."""
    p = np.asarray(pred, np.uint8)
    t = np.asarray(target, np.uint8)
    shown = _shown(hidden)
    t_fg = shown[t]
    p_fg = shown[p] & (t != UNLABELLED)
    index = (t_fg.view(np.uint8) << 2) | (p_fg.view(np.uint8) << 1) | (p == t).view(np.uint8)
    return _apply(_DIFF_LUT, _DIFF_CODE[index])


def heatmap_overlay(prob: np.ndarray) -> np.ndarray:
    """RGBA of one class's probability map (0..1) in the heatmap colours."""
    grey = np.clip(np.asarray(prob, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(grey, HEATMAP)
    rgba = np.empty(grey.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = bgr[..., 2], bgr[..., 1], bgr[..., 0]
    rgba[..., 3] = 255
    return rgba


def shrink(rgba: np.ndarray | None, max_side: int = OVERLAY_MAX_SIDE) -> np.ndarray | None:
    """An overlay of a huge image, downscaled (nearest) to at most `max_side` pixels on its
    long side; the view stretches it back over the image."""
    if rgba is None or max(rgba.shape[:2]) <= max_side:
        return rgba
    h, w = rgba.shape[:2]
    f = max_side / max(h, w)
    size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
    return cv2.resize(rgba, size, interpolation=cv2.INTER_NEAREST)


def overlay_for(kind: str, raw: np.ndarray, mask: np.ndarray, target: np.ndarray | None,
                probabilities: np.ndarray, colors: list[tuple[int, int, int]],
                hidden=(), heat_class: int = 1) -> np.ndarray | None:
    """The RGBA overlay `kind` of one image: gt, pred, post, diff_raw, diff_post, heatmap
    (None when there is nothing to show, e.g. no ground truth)."""
    return shrink(_overlay(kind, raw, mask, target, probabilities, colors, hidden,
                           heat_class))


MASK_KINDS = ("post", "diff_post")  # overlays drawn from the post-processed mask


def mask_patch(kind: str, mask: np.ndarray, target: np.ndarray | None,
               colors: list[tuple[int, int, int]], hidden=()) -> np.ndarray:
    """The RGBA of a region of a mask overlay (`kind` in MASK_KINDS): every pixel of these
    overlays depends on its own pixel only, so a brush dab redraws just its rectangle."""
    if kind == "post":
        return label_overlay(mask, colors, hidden)
    return difference_overlay(mask, target, hidden)


def _overlay(kind, raw, mask, target, probabilities, colors, hidden, heat_class):
    if kind == "none":
        return None
    if kind == "gt":
        return None if target is None else label_overlay(target, colors, hidden)
    if kind == "pred":
        return label_overlay(raw, colors, hidden)
    if kind == "post":
        return label_overlay(mask, colors, hidden)
    if kind in ("diff_raw", "diff_post"):
        if target is None:
            return None
        return difference_overlay(raw if kind == "diff_raw" else mask, target, hidden)
    if kind == "heatmap":
        k = min(max(int(heat_class), 0), probabilities.shape[0] - 1)
        return heatmap_overlay(probabilities[k])
    raise ValueError(f"unknown overlay {kind!r}")


def heatmap_colors(n: int = 256) -> list[tuple[int, int, int]]:
    ramp = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], HEATMAP)[:, 0]
    idx = np.linspace(0, 255, n).astype(int)
    return [(int(ramp[i, 2]), int(ramp[i, 1]), int(ramp[i, 0])) for i in idx]
