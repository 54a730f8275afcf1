"""Class names drawn beside the objects on the canvas.

A label is a child of its object's item that ignores the view's zoom, so it has the same
size on screen at any zoom: a small tag in the class colour at the object's top-left
corner, with black or white text, whichever reads better on that colour.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

PAD_X, PAD_Y = 4.0, 1.0


def text_color_on(color: QColor) -> QColor:
    """Black or white, whichever contrasts more with `color` (relative luminance)."""
    r, g, b = color.redF(), color.greenF(), color.blueF()
    return QColor("black") if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else QColor("white")


class ObjectLabel(QGraphicsItem):
    """The class name (and object id) of an object, at constant screen size."""

    def __init__(self, parent: QGraphicsItem, text: str, color: QColor, anchor: QPointF) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.font = QFont()
        self.font.setPointSizeF(max(self.font.pointSizeF() * 0.85, 7.0))
        self.text = ""
        self.color = QColor(color)
        self._rect = QRectF()
        self.set_text(text)
        self.setPos(anchor)

    def set_text(self, text: str) -> None:
        self.prepareGeometryChange()
        self.text = text
        metrics = QFontMetricsF(self.font)
        w, h = metrics.horizontalAdvance(text) + 2 * PAD_X, metrics.height() + 2 * PAD_Y
        self._rect = QRectF(0, -h, w, h)  # above the anchor, like a tab on the outline
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        fill = QColor(self.color)
        fill.setAlphaF(0.85)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(self._rect, 2, 2)
        painter.setFont(self.font)
        painter.setPen(text_color_on(self.color))
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)
