"""Keys every canvas tool shares (undo/redo, copy/paste/duplicate, zoom, delete, Esc) and
the brush outline that follows the mouse."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsScene


def brush_cursor_items(scene: QGraphicsScene) -> list[QGraphicsEllipseItem]:
    """Two circles (black solid, white dashed) that show the brush on any background."""
    items = [QGraphicsEllipseItem(), QGraphicsEllipseItem()]
    for item, color, style in zip(items, ("black", "white"),
                                  (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine), strict=True):
        pen = QPen(QColor(color), 1, style)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(2000)
        item.setVisible(False)
        scene.addItem(item)
    return items


def place_brush_cursor(items: list[QGraphicsEllipseItem], pos: QPointF,
                       radius: float | None) -> None:
    """Centre the brush circles on `pos`; a radius of None hides them."""
    for item in items:
        item.setVisible(radius is not None)
        if radius is not None:
            item.setRect(QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius))


def standard_key(view, event: QKeyEvent) -> bool:
    """Undo/redo, clipboard, zoom, delete and Esc on the canvas; False for other keys."""
    doc, key = view.document, event.key()
    ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
    if event.matches(QKeySequence.StandardKey.Undo):
        doc.undo_group.undo()
    elif event.matches(QKeySequence.StandardKey.Redo) or (ctrl and key == Qt.Key.Key_Y):
        doc.undo_group.redo()
    elif event.matches(QKeySequence.StandardKey.Copy):
        doc.copy_selection()
    elif event.matches(QKeySequence.StandardKey.Paste):
        doc.paste()
    elif ctrl and key == Qt.Key.Key_D:
        doc.duplicate_selection()
    elif ctrl and key == Qt.Key.Key_0:
        view.fit()
    elif ctrl and key == Qt.Key.Key_1:
        view.zoom_100()
    elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
        view.set_zoom_percent(view.zoom_percent * 1.25)
    elif key == Qt.Key.Key_Minus:
        view.set_zoom_percent(view.zoom_percent / 1.25)
    elif key == Qt.Key.Key_Delete and doc.selected_ids:
        doc.delete_annotations(doc.selected_ids)
    elif key == Qt.Key.Key_Escape and doc.selected_ids:
        doc.select([])
    else:
        return False
    return True
