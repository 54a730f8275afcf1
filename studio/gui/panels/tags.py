"""The Image tags dock: one check box per class; ticking tags the whole current image.
Below, a free-text note about the image, saved as one types (after a short pause).

Each tick is an undoable document edit (`LabelDocument.set_tag`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.panels.bound import DocumentBoundPanel
from studio.gui.panels.classes import swatch

ClassIdRole = Qt.ItemDataRole.UserRole + 1


class TagsPanel(DocumentBoundPanel, QWidget):
    """Image-level labels of the current image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: LabelDocument | None = None
        self._syncing = False
        self.list = QListWidget()
        self.hint = QLabel("Tick the classes that apply to the whole image.")
        self.hint.setWordWrap(True)
        self.note = QPlainTextEdit(placeholderText="A note about this image (saved as you type)")
        self.note.setMaximumHeight(self.fontMetrics().lineSpacing() * 4 + 12)
        self._note_image: int | None = None
        self._note_timer = QTimer(self, singleShot=True, interval=400)
        self._note_timer.timeout.connect(self.save_note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)
        layout.addWidget(QLabel("Note:"))
        layout.addWidget(self.note)
        self.list.itemChanged.connect(self._on_item_changed)
        self.note.textChanged.connect(lambda: self._syncing or self._note_timer.start())

    def set_document(self, doc: LabelDocument | None) -> None:
        if self._note_timer.isActive():  # the project may be closing: save first
            self.save_note()
        super().set_document(doc)

    def save_note(self) -> None:
        """Write the note of the image it was typed for (called after a pause in typing)."""
        self._note_timer.stop()
        if self.doc is None or self._note_image is None:
            return
        try:
            self.doc.project.set_image_note(self._note_image, self.note.toPlainText())
        except Exception as exc:  # shown to the person, with details when unexpected
            show_error(self, exc)

    def reload(self, *_args) -> None:
        if self._note_timer.isActive():  # typed just before: keep it
            self.save_note()
        self._syncing = True
        try:
            self.list.clear()
            enabled = self.doc is not None and self.doc.image_id is not None
            self.list.setEnabled(enabled)
            self.note.setEnabled(enabled)
            self._note_image = self.doc.image_id if enabled else None
            note = self.doc.project.image_note(self._note_image) if enabled else ""
            if note != self.note.toPlainText():
                self.note.setPlainText(note)
            if self.doc is None:
                return
            tagged = self.doc.tags() if enabled else set()
            for c in self.doc.project.classes():
                item = QListWidgetItem(swatch(c.color), c.name)
                item.setData(ClassIdRole, c.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if c.id in tagged
                                   else Qt.CheckState.Unchecked)
                self.list.addItem(item)
        finally:
            self._syncing = False

    def item_of(self, class_id: int) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ClassIdRole) == class_id:
                return self.list.item(i)
        return None

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._syncing or self.doc is None:
            return
        try:
            self.doc.set_tag(item.data(ClassIdRole), item.checkState() == Qt.CheckState.Checked)
        except Exception as exc:
            show_error(self, exc)
            self.reload()
