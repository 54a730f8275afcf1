"""The Objects dock: the current image's objects (class, kind, area, source).

Selection is shared with the canvas through the document in both directions; deleting
and changing the class go through the document, so they are undoable.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.panels.bound import DocumentBoundPanel
from studio.gui.panels.classes import swatch

AnnIdRole = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("#", "Class", "Kind", "Area", "Source")


class _NumberItem(QTreeWidgetItem):
    """Sorts the id and area columns numerically."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else 0
        if col in (0, 3):
            return float(self.data(col, Qt.ItemDataRole.UserRole) or 0) < float(
                other.data(col, Qt.ItemDataRole.UserRole) or 0)
        return super().__lt__(other)


class ObjectsPanel(DocumentBoundPanel, QWidget):
    """Lists the objects of the document's current image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: LabelDocument | None = None
        self._syncing = False
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.header().setStretchLastSection(False)
        self.class_combo = QComboBox(toolTip="Change the class of the selected objects")
        self.delete_button = QPushButton("Delete", toolTip="Delete the selected objects (Del)")
        self.summary = QLabel()
        row = QHBoxLayout()
        row.addWidget(QLabel("Class:"))
        row.addWidget(self.class_combo, 1)
        row.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        self.tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.class_combo.activated.connect(self._on_class_chosen)
        self.delete_button.clicked.connect(self.delete_selected)
        self._update_controls()

    # --- document -----------------------------------------------------------------------------
    def _extra_bindings(self) -> list:
        return [("visibilityChanged", self.reload),
                ("selectionChanged", self._on_doc_selection_changed)]

    def reload(self, *_args) -> None:
        """Rebuild the rows from the store (objects of the current image)."""
        self._syncing = True
        try:
            self.tree.clear()
            self.class_combo.clear()
            if self.doc is None:
                return
            classes = {c.id: c for c in self.doc.project.classes()}
            for c in classes.values():
                self.class_combo.addItem(swatch(c.color), c.name, c.id)
            if self.doc.image_id is None:
                self.summary.setText("No image open.")
                return
            items = []
            for ann in self.doc.project.annotations(self.doc.image_id):
                if ann.kind == "tag":
                    continue  # image tags live in their own panel
                cls = classes.get(ann.class_id)
                item = _NumberItem([str(ann.id), cls.name if cls else "?", ann.kind,
                                    f"{ann.area:,.0f}", ann.source])
                item.setData(0, AnnIdRole, ann.id)
                item.setData(0, Qt.ItemDataRole.UserRole, ann.id)
                item.setData(3, Qt.ItemDataRole.UserRole, ann.area)
                item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if cls is not None:
                    item.setIcon(1, swatch(cls.color, 10))
                if ann.locked:
                    item.setText(2, f"{ann.kind} (locked)")
                if not self.doc.is_visible(ann.class_id) or ann.hidden:
                    for col in range(len(COLUMNS)):
                        item.setForeground(col, QBrush(QColor("#999999")))
                tip = f"{cls.name if cls else '?'} {ann.kind} #{ann.id}, from {ann.source}"
                if ann.score is not None:
                    tip += f", score {ann.score:.3f}"
                tip += "".join(f"\n{k}: {v}" for k, v in ann.attributes.items())
                tip += "\nhidden on the canvas" if ann.hidden else ""
                for col in range(len(COLUMNS)):
                    item.setToolTip(col, tip)
                items.append(item)
            self.tree.addTopLevelItems(items)
            for col in range(len(COLUMNS)):  # whole source and class names, not "import:vo"
                self.tree.resizeColumnToContents(col)
            self.summary.setText(f"{len(items)} object(s)")
            self._apply_selection(self.doc.selected_ids)
        finally:
            self._syncing = False
            self._update_controls()

    # --- selection (both directions) -----------------------------------------------------
    def _apply_selection(self, ids: list[int]) -> None:
        wanted = set(ids)
        last = None
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            chosen = item.data(0, AnnIdRole) in wanted
            item.setSelected(chosen)
            if chosen:
                last = item
        if last is not None:
            self.tree.scrollToItem(last)

    def _on_doc_selection_changed(self, ids: list) -> None:
        self._syncing = True
        try:
            self._apply_selection(list(ids))
        finally:
            self._syncing = False
        self._update_controls()

    def selected_ids(self) -> list[int]:
        return [item.data(0, AnnIdRole) for item in self.tree.selectedItems()]

    def _on_tree_selection_changed(self) -> None:
        self._update_controls()
        if self._syncing or self.doc is None:
            return
        self.doc.select(self.selected_ids())

    def _update_controls(self) -> None:
        ids = self.selected_ids()
        self.delete_button.setEnabled(bool(ids))
        self.class_combo.setEnabled(bool(ids))
        if ids and self.doc is not None:
            first = self.tree.selectedItems()[0].text(1)
            idx = self.class_combo.findText(first)
            if idx >= 0:
                self.class_combo.setCurrentIndex(idx)

    def select_all(self) -> None:
        """Select every object of the current image (canvas included, via the document)."""
        if self.doc is not None:
            self.doc.select([self.tree.topLevelItem(i).data(0, AnnIdRole)
                             for i in range(self.tree.topLevelItemCount())])

    # --- edits (through the document: undoable) ---------------------------------------------
    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if self.doc is None or not ids:
            return
        try:
            self.doc.delete_annotations(ids)
        except Exception as exc:
            show_error(self, exc)

    def set_selected_class(self, class_id: int) -> None:
        ids = self.selected_ids()
        if self.doc is None or not ids:
            return
        try:
            self.doc.set_class(ids, class_id)
        except Exception as exc:
            show_error(self, exc)

    def _on_class_chosen(self, index: int) -> None:
        class_id = self.class_combo.itemData(index)
        if class_id is not None:
            self.set_selected_class(class_id)

    def _on_context_menu(self, pos) -> None:
        if self.doc is None or not self.selected_ids():
            return
        menu = QMenu(self)
        change = menu.addMenu("Change class")
        for c in self.doc.project.classes():
            change.addAction(swatch(c.color), c.name, lambda cid=c.id: self.set_selected_class(cid))
        menu.addAction("Delete", self.delete_selected)
        menu.exec(self.tree.viewport().mapToGlobal(pos))
