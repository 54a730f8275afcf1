"""Box tool: press, drag and release to draw a box of the active class."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.core.errors import StudioError
from studio.core.geometry import clip_box
from studio.gui.canvas.tools.base import Tool


class BoxTool(Tool):
    name = "box"

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._start: QPointF | None = None
        self._preview: QGraphicsRectItem | None = None

    @property
    def busy(self) -> bool:
        return self._start is not None

    def cancel(self) -> None:
        self._start = None
        if self._preview is not None:
            self.canvas.scene().removeItem(self._preview)
            self._preview = None

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self.cancel()
        self._start = QPointF(pos)
        self._preview = QGraphicsRectItem(QRectF(pos, pos))
        pen = QPen(self.canvas.active_color(), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._preview.setPen(pen)
        fill = QColor(self.canvas.active_color())
        fill.setAlphaF(0.2)
        self._preview.setBrush(fill)
        self._preview.setZValue(1001)
        self.canvas.scene().addItem(self._preview)
        return True

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._start is None or self._preview is None:
            return False
        self._preview.setRect(QRectF(self._start, pos).normalized())
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        rect = QRectF(self._start, pos).normalized()
        self.cancel()
        w, h = self.canvas.image_size
        box = clip_box((rect.x(), rect.y(), rect.width(), rect.height()), w, h)
        min_size = self.screen_tol(3)
        if box[2] < min_size or box[3] < min_size:
            return True  # a click, not a drag
        try:
            new_id = self.doc.add_annotation("box", box)
        except StudioError as exc:
            self.report(exc)
            return True
        self.doc.select([new_id])
        return True
