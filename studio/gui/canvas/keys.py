"""Keys of the canvas (brush size, pan with Space, undo/redo, clipboard, zoom, delete),
and the short notes it shows over the image.

CanvasKeys is a mixin of CanvasView (kept apart so the view stays readable). Keys the
current tool wants while a shape is half made (Backspace, Enter, Esc) are taken before
the window's shortcuts see them.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QWidget

from studio.core.errors import StudioError

_CANVAS_KEYS = {Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight}
NOTE_MS = 5000  # how long a note on the canvas stays


class CanvasNote(QLabel):
    """A note at the bottom of the canvas, hidden again after NOTE_MS."""

    def __init__(self, viewport: QWidget) -> None:
        super().__init__(viewport)
        self.setStyleSheet("background: rgba(20, 20, 20, 210); color: white; "
                           "padding: 6px 10px; border-radius: 4px;")
        self.setWordWrap(True)
        self.hide()
        self.timer = QTimer(self, singleShot=True, interval=NOTE_MS)
        self.timer.timeout.connect(self.hide)

    def show_text(self, text: str) -> None:
        viewport = self.parentWidget()
        self.setText(text)
        width = self.fontMetrics().horizontalAdvance(text) + 24
        self.setFixedWidth(max(120, min(width, viewport.width() - 24)))
        self.adjustSize()
        self.move(12, viewport.height() - self.height() - 12)
        self.show()
        self.raise_()
        self.timer.start()


class CanvasKeys:
    """Key handling of CanvasView (uses its document, tool, zoom and brush)."""

    def event(self, event: QEvent) -> bool:
        # Take keys the canvas needs before window shortcuts do (Backspace while drawing...).
        if event.type() == QEvent.Type.ShortcutOverride:
            key = event.key()
            if key in _CANVAS_KEYS or (self.tool.busy and key in (
                    Qt.Key.Key_Backspace, Qt.Key.Key_Return, Qt.Key.Key_Enter,
                    Qt.Key.Key_Escape)):
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, doc = event.key(), self.document
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_BracketLeft:
            self.set_brush_size(self.brush_size - max(1, round(self.brush_size * 0.15)))
            return
        if key == Qt.Key.Key_BracketRight:
            self.set_brush_size(self.brush_size + max(1, round(self.brush_size * 0.15)))
            return
        try:
            if doc.image_id is not None and self.tool.key_press(event):
                return
            if self._standard_key(event):
                return
        except StudioError as exc:
            self.errorOccurred.emit(str(exc))
            return
        super().keyPressEvent(event)

    def _standard_key(self, event: QKeyEvent) -> bool:
        doc, key = self.document, event.key()
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
            self.fit()
        elif ctrl and key == Qt.Key.Key_1:
            self.zoom_100()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self._zoom_to(self.scale_factor() * 1.25, None)
        elif key == Qt.Key.Key_Minus:
            self._zoom_to(self.scale_factor() / 1.25, None)
        elif key == Qt.Key.Key_Delete and doc.selected_ids:
            doc.delete_annotations(doc.selected_ids)
        elif key == Qt.Key.Key_Escape and doc.selected_ids:
            doc.select([])
        else:
            return False
        return True

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            if not self._panning:
                self.viewport().setCursor(self.tool.cursor)
            return
        super().keyReleaseEvent(event)
