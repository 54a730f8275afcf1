"""The Image tags dock: one check box per class; ticking tags the whole current image.

Each tick is an undoable document edit (`LabelDocument.set_tag`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)
        self.list.itemChanged.connect(self._on_item_changed)

    def reload(self, *_args) -> None:
        self._syncing = True
        try:
            self.list.clear()
            enabled = self.doc is not None and self.doc.image_id is not None
            self.list.setEnabled(enabled)
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
