"""GrabCut assist: drag a box around an object, OpenCV's GrabCut proposes its mask.

Refine with strokes: left button marks foreground, right button marks background; each
stroke re-runs GrabCut from the current mask. Enter accepts (one undo step), Esc cancels.
GrabCut (studio.core.assists.GrabCutSession) runs on the canvas's worker, on a crop around
the box downscaled to at most a few hundred pixels; the window stays responsive and a
"computing" note shows until the proposal arrives. An empty proposal says so at once and
asks for object strokes. No learned weights are involved.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.core.assists import GrabCutSession
from studio.gui.canvas.tools.base import Tool

FG_MARK, BG_MARK = 2, 3  # paint layer values of the refinement strokes
MARK_DIAMETER_PX = 6  # stroke width on screen
EMPTY_HINT = "GrabCut: nothing found in the box; add object strokes (left drag) inside it."


def _start(canvas, window, box) -> tuple[GrabCutSession, np.ndarray]:
    """Worker: read the crop, run the first GrabCut pass."""
    x0, y0, w, h = window
    session = GrabCutSession(canvas.image_region(x0, y0, w, h), box)
    return session, session.result()


def _refine(session: GrabCutSession, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    session.refine(fg, bg)
    return session.result()


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
        self._box_item: QGraphicsRectItem | None = None  # the box, kept while computing
        self.result: np.ndarray | None = None
        self.computing = False
        self._job = None

    @property
    def busy(self) -> bool:
        return self._start is not None or self.session is not None or self.computing

    def cancel(self) -> None:
        for item in (self._rect_item, self._box_item):
            if item is not None:
                self.canvas.scene().removeItem(item)
        self._rect_item = self._box_item = None
        if self.session is not None or self._stroke is not None or self.computing:
            self.canvas.paint_layer().clear()
        self._start, self.session, self._marks, self._stroke, self.result = (None,) * 5
        self.computing = False
        self._job = None

    # --- box --------------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        button = event.button()
        if self.computing:
            return True  # a stroke waits for the proposal it refines
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
        self._box_item, self._rect_item = self._rect_item, None  # stays until a result
        if rect.width() < self.screen_tol(4) or rect.height() < self.screen_tol(4):
            self.cancel()
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
        box = (rect.left() - x0, rect.top() - y0, rect.width(), rect.height())
        self._origin = (x0, y0)
        self._marks = np.zeros((y1 - y0, x1 - x0), np.uint8)
        self._run(_start, self.canvas, (x0, y0, x1 - x0, y1 - y0), box)

    def _run(self, fn, *args) -> None:
        self.computing = True
        self.canvas.message.emit("GrabCut: computing...")
        job = self.canvas.workers.submit(fn, *args, key="grabcut", on_error=self._failed,
                                         on_result=lambda out: self._arrived(job, out))
        self._job = job

    def _failed(self, exc: BaseException) -> None:
        self.cancel()
        self.report(exc)

    def _arrived(self, job, out) -> None:
        if job is not self._job:
            return  # cancelled (Esc, another image) meanwhile
        self.computing = False
        if isinstance(out, tuple):
            self.session, out = out
        self.result = out
        if self._box_item is not None and out.any():  # an empty proposal keeps its box
            self.canvas.scene().removeItem(self._box_item)
            self._box_item = None
        self._show()

    def _refine(self) -> None:
        layer = self.canvas.paint_layer()
        x0, y0 = self._origin
        h, w = self._marks.shape
        region = layer.buf[y0:y0 + h, x0:x0 + w]
        for value in (FG_MARK, BG_MARK):
            self._marks[region == value] = value
        self._run(_refine, self.session, self._marks == FG_MARK, self._marks == BG_MARK)

    def _show(self) -> None:
        view = self.result.astype(np.uint8)
        view[self._marks > 0] = self._marks[self._marks > 0]
        layer = self.canvas.paint_layer()
        c = QColor(self.canvas.active_color())
        c.setAlphaF(0.55)
        layer.set_colors(c, QColor(0, 255, 0, 200), QColor(255, 0, 0, 200))
        layer.clear()
        layer.set_region(*self._origin, view)
        if not self.result.any():
            self.canvas.message.emit(EMPTY_HINT)
            self.canvas.toast(EMPTY_HINT)
            return
        self.canvas.message.emit("GrabCut: left-drag marks object, right-drag marks background; "
                                 "Enter accepts, Esc cancels")

    def accept(self) -> None:
        """Add the proposed mask as one undo step (written in the background)."""
        if self.session is None or self.result is None or self.computing:
            return
        result, (x0, y0) = self.result, self._origin
        if not result.any():
            self.canvas.message.emit(EMPTY_HINT)
            self.canvas.toast(EMPTY_HINT)
            return
        self.cancel()
        self.commit_mask(x0, y0, result, text="GrabCut", new_object=True)

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.session is not None:
            self.accept()
            return True
        if event.key() == Qt.Key.Key_Escape and self.busy:
            self.cancel()
            return True
        return False
