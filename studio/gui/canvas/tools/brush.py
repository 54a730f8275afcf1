"""Brush and eraser for masks.

A stroke is drawn into the canvas paint layer as thick line segments between successive
mouse positions (no gaps however fast the mouse moves); only the touched rectangle is
repainted. On release the stroke's footprint goes to the document as ONE edit holding
only the stroke's bounding box (semantic or instance rules, see LabelDocument.paint_mask),
written in the background: the stroke stays drawn until its edit has landed.
In instance mode every stroke makes a new object; with Shift held it adds to the selected
one. The right button erases with the brush (and paints with the eraser).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent

from studio.gui.canvas.tools.base import Tool


class BrushTool(Tool):
    name = "brush"
    erases = False
    cursor = Qt.CursorShape.BlankCursor  # the canvas draws a circle of the brush size

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._last: tuple[float, float] | None = None
        self._erase = False

    @property
    def busy(self) -> bool:
        return self._last is not None

    def cancel(self) -> None:
        if self._last is not None:
            self.canvas.paint_layer().clear()
        self._last = None

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._erase = self.erases != (button == Qt.MouseButton.RightButton)
        layer = self.canvas.paint_layer()
        layer.clear()
        if self._erase:
            layer.set_colors(QColor(255, 255, 255, 150))
        else:
            c = QColor(self.canvas.active_color())
            c.setAlphaF(0.6)
            layer.set_colors(c)
        self._last = (pos.x(), pos.y())
        layer.segment(self._last, self._last, self.canvas.brush_size)
        return True

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._last is None:
            return False
        p = (pos.x(), pos.y())
        self.canvas.paint_layer().segment(self._last, p, self.canvas.brush_size)
        self._last = p
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._last is None:
            return False
        self.move(pos, event)
        self._last = None
        layer = self.canvas.paint_layer()
        region = layer.region()
        if region is None:
            layer.clear()
            return True
        add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.commit_mask(*region, erase=self._erase, text="Erase" if self._erase else "Paint",
                         new_object=not (add or self._erase), on_done=self._landed)
        return True

    def _landed(self, _mask_id) -> None:
        if self._last is None:  # no newer stroke is being drawn: drop the drawn stroke
            self.canvas.paint_layer().clear()


class EraserTool(BrushTool):
    name = "eraser"
    erases = True
