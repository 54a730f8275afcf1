"""Polygon tool: click points; close by clicking the first point or pressing Enter;
Backspace removes the last point; Esc cancels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from studio.core.errors import StudioError
from studio.gui.canvas.tools.base import Tool

CLOSE_PX = 8  # clicking this close (on screen) to the first point closes the polygon


class PolygonTool(Tool):
    name = "polygon"

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.points: list[tuple[float, float]] = []
        self._cursor: QPointF | None = None
        self._preview: QGraphicsPathItem | None = None

    @property
    def busy(self) -> bool:
        return bool(self.points)

    def cancel(self) -> None:
        self.points = []
        self._cursor = None
        if self._preview is not None:
            self.canvas.scene().removeItem(self._preview)
            self._preview = None

    def _clamp(self, pos: QPointF) -> tuple[float, float]:
        w, h = self.canvas.image_size
        return (min(max(pos.x(), 0.0), float(w)), min(max(pos.y(), 0.0), float(h)))

    def _redraw(self) -> None:
        if not self.points:
            return
        if self._preview is None:
            self._preview = QGraphicsPathItem()
            pen = QPen(self.canvas.active_color(), 2)
            pen.setCosmetic(True)
            self._preview.setPen(pen)
            fill = QColor(self.canvas.active_color())
            fill.setAlphaF(0.15)
            self._preview.setBrush(fill)
            self._preview.setZValue(1001)
            self.canvas.scene().addItem(self._preview)
        path = QPainterPath(QPointF(*self.points[0]))
        for p in self.points[1:]:
            path.lineTo(QPointF(*p))
        if self._cursor is not None:
            path.lineTo(self._cursor)
        # mark the first point so the user sees where to click to close
        r = self.screen_tol(CLOSE_PX / 2)
        path.addEllipse(QPointF(*self.points[0]), r, r)
        self._preview.setPath(path)

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        p = self._clamp(pos)
        if len(self.points) >= 3:
            x0, y0 = self.points[0]
            if np.hypot(p[0] - x0, p[1] - y0) <= self.screen_tol(CLOSE_PX):
                self.finish()
                return True
        if not self.points or p != self.points[-1]:
            self.points.append(p)
        self._redraw()
        return True

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if not self.points:
            return False
        self._cursor = QPointF(*self._clamp(pos))
        self._redraw()
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        return bool(self.points)

    def finish(self) -> int | None:
        """Close the polygon and add it (needs 3 points); returns the new id."""
        pts = np.asarray(self.points, dtype=np.float64)
        self.cancel()
        if len(pts) < 3:
            return None
        try:
            new_id = self.doc.add_annotation("polygon", pts)
        except StudioError as exc:
            self.report(exc)
            return None
        self.doc.select([new_id])
        return new_id

    def key_press(self, event: QKeyEvent) -> bool:
        key = event.key()
        if not self.points:
            return False
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()
        elif key == Qt.Key.Key_Backspace:
            self.points.pop()
            if self.points:
                self._redraw()
            else:
                self.cancel()
        elif key == Qt.Key.Key_Escape:
            self.cancel()
        else:
            return False
        return True
