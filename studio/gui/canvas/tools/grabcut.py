"""GrabCut assist: drag a box around an object, OpenCV's GrabCut proposes its mask.

Refine with strokes: left button marks foreground, right button marks background; each
stroke re-runs GrabCut from the current mask. Enter accepts (one undo step), Esc cancels.
GrabCut runs on a crop around the box, downscaled to at most WORK_SIDE pixels, so it stays
interactive on big images. No learned weights are involved.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.gui.canvas.tools.base import Tool

WORK_SIDE = 400
ITERATIONS = 3
FG_MARK, BG_MARK = 2, 3  # paint layer values of the refinement strokes
MARK_DIAMETER_PX = 6  # stroke width on screen


def _as_bgr(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


class GrabCutSession:
    """GrabCut state for one object: crop, working scale, models and current mask."""

    def __init__(self, crop: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        h, w = crop.shape[:2]
        self.full_shape = (h, w)
        self.scale = min(1.0, WORK_SIDE / max(h, w))
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        self.small = np.ascontiguousarray(_as_bgr(cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
                                                  if self.scale < 1 else crop))
        sh, sw = self.small.shape[:2]
        rx, ry, rw, rh = (int(round(v * self.scale)) for v in rect)
        rx, ry = min(max(rx, 0), sw - 1), min(max(ry, 0), sh - 1)
        rw, rh = max(1, min(rw, sw - rx)), max(1, min(rh, sh - ry))
        self.mask = np.zeros((sh, sw), np.uint8)
        self.bgd = np.zeros((1, 65), np.float64)
        self.fgd = np.zeros((1, 65), np.float64)
        cv2.grabCut(self.small, self.mask, (rx, ry, rw, rh), self.bgd, self.fgd, ITERATIONS,
                    cv2.GC_INIT_WITH_RECT)

    def refine(self, fg: np.ndarray, bg: np.ndarray) -> None:
        """Re-run with strokes (bool arrays of the crop's full size) as hard labels."""
        sh, sw = self.mask.shape
        for marks, label in ((fg, cv2.GC_FGD), (bg, cv2.GC_BGD)):
            if marks.any():
                small = cv2.resize(marks.astype(np.uint8) * 255, (sw, sh),
                                   interpolation=cv2.INTER_AREA) > 0
                self.mask[small] = label
        if not (self.mask == cv2.GC_FGD).any() and not (self.mask == cv2.GC_PR_FGD).any():
            return
        if not ((self.mask == cv2.GC_BGD) | (self.mask == cv2.GC_PR_BGD)).any():
            return
        cv2.grabCut(self.small, self.mask, None, self.bgd, self.fgd, ITERATIONS - 1,
                    cv2.GC_INIT_WITH_MASK)

    def result(self) -> np.ndarray:
        """The object's mask at the crop's full size (bool)."""
        fg = ((self.mask == cv2.GC_FGD) | (self.mask == cv2.GC_PR_FGD)).astype(np.float32)
        h, w = self.full_shape
        if fg.shape != (h, w):
            fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
        return fg > 0.5


class GrabCutTool(Tool):
    name = "grabcut"

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._start: QPointF | None = None
        self._rect_item: QGraphicsRectItem | None = None
        self.session: GrabCutSession | None = None
        self._origin = (0, 0)
        self._marks: np.ndarray | None = None  # uint8 crop-size: 0, FG_MARK, BG_MARK
        self._stroke: tuple[float, float] | None = None
        self._stroke_value = 0
        self.result: np.ndarray | None = None

    @property
    def busy(self) -> bool:
        return self._start is not None or self.session is not None

    def cancel(self) -> None:
        if self._rect_item is not None:
            self.canvas.scene().removeItem(self._rect_item)
            self._rect_item = None
        if self.session is not None or self._stroke is not None:
            self.canvas.paint_layer().clear()
        self._start, self.session, self._marks, self._stroke, self.result = (None,) * 5

    # --- box --------------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        button = event.button()
        if self.session is not None and button in (Qt.MouseButton.LeftButton,
                                                   Qt.MouseButton.RightButton):
            self._stroke_value = FG_MARK if button == Qt.MouseButton.LeftButton else BG_MARK
            self._stroke = (pos.x(), pos.y())
            self.canvas.paint_layer().segment(self._stroke, self._stroke, self._mark_width(),
                                              self._stroke_value)
            return True
        if button != Qt.MouseButton.LeftButton:
            return False
        self.cancel()
        self._start = QPointF(pos)
        self._rect_item = QGraphicsRectItem(QRectF(pos, pos))
        pen = QPen(QColor("yellow"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._rect_item.setPen(pen)
        self._rect_item.setZValue(1001)
        self.canvas.scene().addItem(self._rect_item)
        return True

    def _mark_width(self) -> float:
        return max(1.0, self.screen_tol(MARK_DIAMETER_PX))

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._stroke is not None:
            p = (pos.x(), pos.y())
            self.canvas.paint_layer().segment(self._stroke, p, self._mark_width(),
                                              self._stroke_value)
            self._stroke = p
            return True
        if self._start is not None and self._rect_item is not None:
            self._rect_item.setRect(QRectF(self._start, pos).normalized())
            return True
        return False

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._stroke is not None:
            self.move(pos, event)
            self._stroke = None
            self._refine()
            return True
        if self._start is None:
            return False
        rect = QRectF(self._start, pos).normalized()
        self._start = None
        if self._rect_item is not None:
            self.canvas.scene().removeItem(self._rect_item)
            self._rect_item = None
        if rect.width() < self.screen_tol(4) or rect.height() < self.screen_tol(4):
            return True
        self._init(rect)
        return True

    def _init(self, rect: QRectF) -> None:
        w, h = self.canvas.image_size
        margin = 0.15 * max(rect.width(), rect.height()) + 4
        x0 = int(max(0, np.floor(rect.left() - margin)))
        y0 = int(max(0, np.floor(rect.top() - margin)))
        x1 = int(min(w, np.ceil(rect.right() + margin)))
        y1 = int(min(h, np.ceil(rect.bottom() + margin)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        crop = self.canvas.image_region(x0, y0, x1 - x0, y1 - y0)
        box = (rect.left() - x0, rect.top() - y0, rect.width(), rect.height())
        self._origin = (x0, y0)
        self.session = GrabCutSession(crop, box)
        self._marks = np.zeros((y1 - y0, x1 - x0), np.uint8)
        self._show()

    def _refine(self) -> None:
        layer = self.canvas.paint_layer()
        x0, y0 = self._origin
        h, w = self._marks.shape
        region = layer.buf[y0:y0 + h, x0:x0 + w]
        for value in (FG_MARK, BG_MARK):
            self._marks[region == value] = value
        self.session.refine(self._marks == FG_MARK, self._marks == BG_MARK)
        self._show()

    def _show(self) -> None:
        self.result = self.session.result()
        view = self.result.astype(np.uint8)
        view[self._marks > 0] = self._marks[self._marks > 0]
        layer = self.canvas.paint_layer()
        c = QColor(self.canvas.active_color())
        c.setAlphaF(0.55)
        layer.set_colors(c, QColor(0, 255, 0, 200), QColor(255, 0, 0, 200))
        layer.clear()
        layer.set_region(*self._origin, view)
        self.canvas.message.emit("GrabCut: left-drag marks object, right-drag marks background; "
                                 "Enter accepts, Esc cancels")

    def accept(self) -> int | None:
        """Add the proposed mask as one undo step; returns the painted mask's id."""
        if self.session is None or self.result is None:
            return None
        result, (x0, y0) = self.result, self._origin
        self.cancel()
        if not result.any():
            self.canvas.message.emit("GrabCut found no object in the box.")
            return None
        return self.commit_mask(x0, y0, result, text="GrabCut", new_object=True)

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.session is not None:
            self.accept()
            return True
        if event.key() == Qt.Key.Key_Escape and self.busy:
            self.cancel()
            return True
        return False
