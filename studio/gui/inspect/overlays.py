"""Overlay pictures (RGBA uint8 arrays) of label maps, differences and probabilities, and
the colour bar that explains a heatmap."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

UNLABELLED = 255
# Difference colours (RGB): true positive, false positive, false negative, wrong class.
TP_COLOR = (40, 200, 80)
FP_COLOR = (230, 50, 50)
FN_COLOR = (40, 120, 255)
WRONG_COLOR = (255, 170, 0)
HEATMAP = cv2.COLORMAP_INFERNO


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = QColor(color)
    return c.red(), c.green(), c.blue()


def label_overlay(labels: np.ndarray, colors: list[tuple[int, int, int]],
                  background: int | None = 0) -> np.ndarray:
    """RGBA of a label map: each class in its colour; unlabelled pixels (and the background
    class, when given) transparent."""
    lut = np.zeros((256, 4), np.uint8)
    for i, rgb in enumerate(colors[:255]):
        lut[i, :3] = rgb
        lut[i, 3] = 0 if i == background else 255
    return lut[np.asarray(labels, np.uint8)]


def difference_overlay(pred: np.ndarray, target: np.ndarray, background: int | None = 0
                       ) -> np.ndarray:
    """RGBA: true positives green, false positives red, false negatives blue, a foreground
    pixel given the wrong foreground class orange; background agreement and pixels without
    a label transparent."""
    p = np.asarray(pred, np.uint8)
    t = np.asarray(target, np.uint8)
    out = np.zeros(p.shape + (4,), np.uint8)
    valid = t != UNLABELLED
    bg = -1 if background is None else background
    t_fg = valid & (t != bg)
    p_fg = valid & (p != bg) & (p != UNLABELLED)
    same = p == t
    for where, rgb in ((t_fg & same, TP_COLOR), (p_fg & ~t_fg, FP_COLOR),
                       (t_fg & ~p_fg, FN_COLOR), (t_fg & p_fg & ~same, WRONG_COLOR)):
        out[where, :3] = rgb
        out[where, 3] = 255
    return out


def heatmap_overlay(prob: np.ndarray) -> np.ndarray:
    """RGBA of one class's probability map (0..1) in the heatmap colours."""
    grey = np.clip(np.asarray(prob, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(grey, HEATMAP)
    rgba = np.empty(grey.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = bgr[..., 2], bgr[..., 1], bgr[..., 0]
    rgba[..., 3] = 255
    return rgba


def heatmap_colors(n: int = 256) -> list[tuple[int, int, int]]:
    ramp = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], HEATMAP)[:, 0]
    idx = np.linspace(0, 255, n).astype(int)
    return [(int(ramp[i, 2]), int(ramp[i, 1]), int(ramp[i, 0])) for i in idx]


class ColorBar(QWidget):
    """A vertical colour bar from 0 (bottom) to 1 (top) with its title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = "p"
        self.setFixedWidth(64)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(120)
        self._stops = heatmap_colors(16)

    def set_title(self, title: str) -> None:
        self.title = title
        self.setToolTip(f"Probability of {title}")
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        fm = painter.fontMetrics()
        top, bottom = fm.height() + 8, self.height() - fm.height() // 2 - 4
        bar = QRectF(6, top, 16, max(bottom - top, 10))
        grad = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for i, rgb in enumerate(self._stops):
            grad.setColorAt(i / (len(self._stops) - 1), QColor(*rgb))
        painter.fillRect(bar, grad)
        painter.setPen(self.palette().windowText().color())
        painter.drawRect(bar)
        for frac in (0.0, 0.5, 1.0):
            y = bar.bottom() - frac * bar.height()
            painter.drawLine(int(bar.right()), int(y), int(bar.right()) + 4, int(y))
            painter.drawText(int(bar.right()) + 6, int(y + fm.ascent() / 2 - 1), f"{frac:g}")
        painter.drawText(QRectF(0, 0, self.width(), fm.height() + 4),
                         Qt.AlignmentFlag.AlignHCenter, fm.elidedText(
                             self.title, Qt.TextElideMode.ElideRight, self.width()))
        painter.end()


def rgba_qimage(rgba: np.ndarray) -> QImage:
    """A QImage copy of an RGBA uint8 array."""
    arr = np.ascontiguousarray(rgba)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888).copy()
