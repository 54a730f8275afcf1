"""The Classes dock: colour, hotkey and visibility of each class; add, rename, recolour,
delete and reorder. The current row is the document's active class.

Class management is not an annotation edit: it calls the project directly and then
`document.notify_classes_changed()`. Deleting asks first (delete the objects or move them).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.dialogs import ask_delete_class
from studio.gui.document import LabelDocument
from studio.gui.errors import show_error

ClassIdRole = Qt.ItemDataRole.UserRole + 1


def swatch(color: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(color))
    return QIcon(pix)


class ClassesPanel(QWidget):
    """A view of the project's classes bound to a LabelDocument."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: LabelDocument | None = None
        self._syncing = False
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Class", "Key"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 160)
        self.tree.setToolTip("Tick to show, untick to hide. The selected class is used for "
                             "new objects; keys 1-9 choose a class.")
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        buttons = QHBoxLayout()
        self.buttons: dict[str, QToolButton] = {}
        for name, text, tip, slot in (
            ("add", "Add", "Add a class", self.add_class),
            ("rename", "Rename", "Rename the selected class", self.rename_class),
            ("color", "Colour", "Change the selected class's colour", self.recolor_class),
            ("key", "Key", "Set the selected class's hotkey (0-9)", self.set_hotkey),
            ("delete", "Delete", "Delete the selected class", self.delete_class),
            ("up", "\u25b2", "Move up", lambda: self.move_class(-1)),
            ("down", "\u25bc", "Move down", lambda: self.move_class(1)),
        ):
            button = QToolButton(text=text, toolTip=tip, autoRaise=True)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[name] = button
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.tree.currentItemChanged.connect(self._on_current_item_changed)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemDoubleClicked.connect(lambda *_: self.rename_class())
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self._update_buttons()

    # --- document -------------------------------------------------------------------------
    def set_document(self, doc: LabelDocument | None) -> None:
        if self.doc is not None:
            self.doc.classesChanged.disconnect(self.reload)
            self.doc.activeClassChanged.disconnect(self._on_active_class_changed)
            self.doc.visibilityChanged.disconnect(self.reload)
        self.doc = doc
        if doc is not None:
            doc.classesChanged.connect(self.reload)
            doc.activeClassChanged.connect(self._on_active_class_changed)
            doc.visibilityChanged.connect(self.reload)
        self.reload()

    def reload(self) -> None:
        self._syncing = True
        try:
            self.tree.clear()
            if self.doc is not None:
                for c in self.doc.project.classes():
                    item = QTreeWidgetItem([c.name, "" if c.hotkey is None else str(c.hotkey)])
                    item.setData(0, ClassIdRole, c.id)
                    item.setIcon(0, swatch(c.color))
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(0, Qt.CheckState.Checked if self.doc.is_visible(c.id)
                                       else Qt.CheckState.Unchecked)
                    item.setToolTip(0, f"{c.name} ({c.color})")
                    self.tree.addTopLevelItem(item)
                    if c.id == self.doc.active_class_id:
                        self.tree.setCurrentItem(item)
        finally:
            self._syncing = False
        self._update_buttons()

    def _item_of(self, class_id: int) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ClassIdRole) == class_id:
                return item
        return None

    def _on_active_class_changed(self, class_id: int) -> None:
        item = self._item_of(class_id)
        self._syncing = True
        try:
            self.tree.setCurrentItem(item)
        finally:
            self._syncing = False
        self._update_buttons()

    def _on_current_item_changed(self, current: QTreeWidgetItem | None, _prev) -> None:
        self._update_buttons()
        if self._syncing or self.doc is None or current is None:
            return
        self.doc.set_active_class(current.data(0, ClassIdRole))

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._syncing or self.doc is None or column != 0:
            return
        self.doc.set_class_visible(item.data(0, ClassIdRole),
                                   item.checkState(0) == Qt.CheckState.Checked)

    def _update_buttons(self) -> None:
        has_doc = self.doc is not None
        has_current = self.current_class_id() is not None
        self.buttons["add"].setEnabled(has_doc)
        for name in ("rename", "color", "key", "delete", "up", "down"):
            self.buttons[name].setEnabled(has_doc and has_current)

    def current_class_id(self) -> int | None:
        item = self.tree.currentItem()
        return item.data(0, ClassIdRole) if item is not None else None

    def _on_context_menu(self, pos) -> None:
        if self.doc is None:
            return
        menu = QMenu(self)
        menu.addAction("Add class...", self.add_class)
        if self.current_class_id() is not None:
            menu.addAction("Rename...", self.rename_class)
            menu.addAction("Colour...", self.recolor_class)
            menu.addAction("Hotkey...", self.set_hotkey)
            menu.addAction("Delete...", self.delete_class)
        menu.addSeparator()
        menu.addAction("Show all", lambda: self.doc.set_all_visible(True))
        menu.addAction("Hide all", lambda: self.doc.set_all_visible(False))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def class_for_hotkey(self, digit: int):
        """The class record with this hotkey, or None."""
        if self.doc is None:
            return None
        return next((c for c in self.doc.project.classes() if c.hotkey == digit), None)

    def use_hotkey(self, digit: int) -> bool:
        """Make the class with this hotkey the class of the next shape drawn. The selected
        objects keep theirs (see `give_selection_hotkey_class`). False when no class has
        the key."""
        match = self.class_for_hotkey(digit)
        if match is None:
            return False
        self.doc.set_active_class(match.id)
        return True

    def give_selection_hotkey_class(self, digit: int) -> int | None:
        """Give the selected objects the class with this hotkey (one undo step); returns
        how many objects changed, None when no class has the key."""
        match = self.class_for_hotkey(digit)
        if match is None:
            return None
        try:
            return self.doc.set_class(list(self.doc.selected_ids), match.id)
        except Exception as exc:  # shown to the person, with details when unexpected
            show_error(self, exc)
            return 0

    # --- class management (project calls, then notify the document) ------------------------
    def _apply(self, change, *args, **kwargs):
        """Run one class change on the store; show a failure (nothing changed) or tell the
        document. Returns the change's result (True for None), or None when it failed."""
        try:
            result = change(*args, **kwargs)
        except Exception as exc:  # shown to the person, with details when unexpected
            show_error(self, exc)
            return None
        self.doc.notify_classes_changed()
        return True if result is None else result

    def add_class(self) -> int | None:
        if self.doc is None:
            return None
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if not ok or not name.strip():
            return None
        class_id = self._apply(self.doc.project.add_class, name.strip())
        if class_id is not None:
            self.doc.set_active_class(class_id)
        return class_id

    def rename_class(self) -> None:
        class_id = self.current_class_id()
        if self.doc is None or class_id is None:
            return
        old = self.doc.project.class_record(class_id).name
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if not ok or not name.strip() or name.strip() == old:
            return
        self._apply(self.doc.project.rename_class, class_id, name.strip())

    def recolor_class(self) -> None:
        class_id = self.current_class_id()
        if self.doc is None or class_id is None:
            return
        record = self.doc.project.class_record(class_id)
        color = QColorDialog.getColor(QColor(record.color), self, f"Colour of {record.name}")
        if not color.isValid():
            return
        self._apply(self.doc.project.set_class_color, class_id, color.name())

    def set_hotkey(self) -> None:
        class_id = self.current_class_id()
        if self.doc is None or class_id is None:
            return
        record = self.doc.project.class_record(class_id)
        key, ok = QInputDialog.getInt(self, "Class hotkey", f"Digit key for {record.name} "
                                      "(0 = none):", record.hotkey or 0, 0, 9)
        if not ok:
            return
        self._apply(self.doc.project.set_class_hotkey, class_id, key or None)

    def delete_class(self) -> None:
        class_id = self.current_class_id()
        if self.doc is None or class_id is None:
            return
        confirmed, move_to = ask_delete_class(self, self.doc.project, class_id)
        if not confirmed:
            return
        if self._apply(self.doc.project.delete_class, class_id, move_to=move_to) is None:
            return
        # Undo steps may refer to the deleted class or its objects: they cannot be replayed.
        for stack in self.doc.undo_group.stacks():
            stack.clear()
        if self.doc.image_id is not None:
            self.doc.annotationsChanged.emit(self.doc.image_id)

    def move_class(self, step: int) -> None:
        class_id = self.current_class_id()
        if self.doc is None or class_id is None:
            return
        ids = [c.id for c in self.doc.project.classes()]
        i = ids.index(class_id)
        j = i + step
        if not 0 <= j < len(ids):
            return
        ids[i], ids[j] = ids[j], ids[i]
        self._apply(self.doc.project.reorder_classes, ids)
