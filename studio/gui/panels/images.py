"""The Images dock: a virtual list of the project's images with filters and navigation."""

from __future__ import annotations

import bisect

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.project_images import STATUSES
from studio.core.splits import SPLITS
from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.panels.images_model import (
    COL_NAME,
    COL_OBJECTS,
    COL_SPLIT,
    COL_STATUS,
    STATUS_LABELS,
    THUMB_SIZE,
    ImageListModel,
)
from studio.gui.workers import WorkerPool


class ImagesPanel(QWidget):
    """Lists images page by page; choosing one shows it in the document."""

    countChanged = Signal(int, int)  # current row (or -1), rows under the filters
    message = Signal(str)  # a short note for the status bar

    def __init__(self, parent: QWidget | None = None, workers: WorkerPool | None = None) -> None:
        super().__init__(parent)
        self.doc: LabelDocument | None = None
        self.model = ImageListModel(self, workers)
        self._syncing = False

        self.search = QLineEdit(placeholderText="Search file names", clearButtonEnabled=True)
        self.status_filter = QComboBox(toolTip="Show only images with this status")
        self.status_filter.addItem("Any status", None)
        for s in STATUSES:
            self.status_filter.addItem(STATUS_LABELS[s], s)
        self.split_filter = QComboBox(toolTip="Show only images of this split")
        self.split_filter.addItem("Any split", None)
        for s in SPLITS:
            self.split_filter.addItem("no split" if s == "none" else s, s)
        self.class_filter = QComboBox(toolTip="Show only images with objects of this class")
        self.thumbs_box = QCheckBox("Thumbnails", checked=self.model.thumbnails_enabled)
        self.thumbs_box.setEnabled(workers is not None)

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        # "BloodImage_00001.jpg" -> "BloodI…001.jpg": the part that differs stays visible
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        header = self.view.horizontalHeader()
        # Fixed widths: sizing columns to their contents would read a thousand rows.
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        metrics = self.fontMetrics()
        for col, sample in ((COL_STATUS, "in progress"), (COL_SPLIT, "Split."),
                            (COL_OBJECTS, "Objects")):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, metrics.horizontalAdvance(sample) + 10)
        self.setMinimumWidth(340)
        self._apply_row_height()

        self.next_new_button = QPushButton("Next unlabelled",
                                           toolTip="First image after this one without annotations")
        self.count_label = QLabel()

        filters = QHBoxLayout()
        filters.addWidget(self.status_filter)
        filters.addWidget(self.split_filter)
        filters.addWidget(self.class_filter)
        bottom = QHBoxLayout()
        bottom.addWidget(self.next_new_button)
        bottom.addWidget(self.thumbs_box)
        bottom.addStretch(1)
        bottom.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)

        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self._apply_filters)
        self.search.textChanged.connect(self._search_timer.start)
        for combo in (self.status_filter, self.split_filter, self.class_filter):
            combo.currentIndexChanged.connect(self._apply_filters)
        self.thumbs_box.toggled.connect(self._on_thumbnails_toggled)
        self.view.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.next_new_button.clicked.connect(self.go_next_unlabelled)
        self.model.modelReset.connect(self._update_count)

    # --- document -------------------------------------------------------------------------
    def set_document(self, doc: LabelDocument | None) -> None:
        if self.doc is not None:
            self.doc.imageChanged.disconnect(self._on_image_changed)
            self.doc.annotationsChanged.disconnect(self._on_annotations_changed)
            self.doc.classesChanged.disconnect(self._on_classes_changed)
        self.doc = doc
        self.clear_filters()  # another project: the last one's filters mean nothing here
        self.model.set_project(doc.project if doc else None)
        self._on_classes_changed()
        if doc is not None:
            doc.imageChanged.connect(self._on_image_changed)
            doc.annotationsChanged.connect(self._on_annotations_changed)
            doc.classesChanged.connect(self._on_classes_changed)
        self._update_count()

    def _on_classes_changed(self) -> None:
        current = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("Any class", None)
        if self.doc is not None:
            for c in self.doc.project.classes():
                self.class_filter.addItem(c.name, c.id)
        idx = self.class_filter.findData(current)
        self.class_filter.setCurrentIndex(max(idx, 0))
        self.class_filter.blockSignals(False)
        if idx < 0 and current is not None:
            self._apply_filters()

    def _on_image_changed(self, image_id: int) -> None:
        self._select_row(self.model.row_of(image_id) if image_id >= 0 else None)
        self._update_count()

    def _on_annotations_changed(self, image_id: int) -> None:
        if self.model.filters["class_id"] is not None:
            self.refresh()
        else:
            self.model.refresh_image(image_id)

    # --- filters ------------------------------------------------------------------------------
    def clear_filters(self) -> None:
        """No search text, any status, split and class (the list is refreshed by the caller)."""
        self._search_timer.stop()
        widgets = (self.search, self.status_filter, self.split_filter, self.class_filter)
        for w in widgets:
            w.blockSignals(True)
        self.search.clear()
        for combo in widgets[1:]:
            combo.setCurrentIndex(0)
        for w in widgets:
            w.blockSignals(False)
        self.model.set_filters()

    def _apply_filters(self) -> None:
        self.model.set_filters(status=self.status_filter.currentData(),
                               split=self.split_filter.currentData(),
                               class_id=self.class_filter.currentData(),
                               search=self.search.text().strip() or None)
        self._reselect_current()

    def refresh(self) -> None:
        """Reload the list (after imports, status changes under a status filter, ...)."""
        self.model.refresh()
        self._reselect_current()

    def refresh_image(self, image_id: int) -> None:
        if self.model.filters["status"] is not None or self.model.filters["split"] is not None:
            self.refresh()
        else:
            self.model.refresh_image(image_id)

    def _reselect_current(self) -> None:
        if self.doc is not None and self.doc.image_id is not None:
            self._select_row(self.model.row_of(self.doc.image_id))
        self._update_count()

    def _on_thumbnails_toggled(self, on: bool) -> None:
        self.model.thumbnails_enabled = on
        self._apply_row_height()
        self.model.refresh()
        self._reselect_current()

    def _apply_row_height(self) -> None:
        height = THUMB_SIZE + 4 if self.model.thumbnails_enabled else self.fontMetrics().height() + 6
        self.view.verticalHeader().setDefaultSectionSize(height)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)

    # --- selection and navigation ----------------------------------------------------------
    def _select_row(self, row: int | None) -> None:
        self._syncing = True
        try:
            sel = self.view.selectionModel()
            if row is None:
                sel.clearSelection()
                sel.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)
            else:
                index = self.model.index(row, COL_NAME)
                sel.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                    | QItemSelectionModel.SelectionFlag.Rows)
                self.view.scrollTo(index)
        finally:
            self._syncing = False

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or self.doc is None or not current.isValid():
            return
        image_id = self.model.image_id_at(current.row())
        if image_id is not None and image_id != self.doc.image_id:
            self.doc.set_image(image_id)

    def current_row(self) -> int | None:
        if self.doc is None or self.doc.image_id is None:
            return None
        return self.model.row_of(self.doc.image_id)

    def neighbour(self, delta: int) -> int | None:
        """The image `delta` rows away from the current one under the filters."""
        if self.doc is None or self.model.rowCount() == 0:
            return None
        if self.doc.image_id is None:
            return self.model.image_id_at(0 if delta > 0 else self.model.rowCount() - 1)
        row = self.model.row_of(self.doc.image_id)
        if row is None:  # the current image is filtered out: step from where it would be
            ids = self.model.project.image_ids(**self.model.filters)
            pos = bisect.bisect_left(ids, self.doc.image_id)
            row = pos - 1 if delta > 0 else pos
        target = row + delta
        if not 0 <= target < self.model.rowCount():
            return None
        return self.model.image_id_at(target)

    def go(self, delta: int) -> bool:
        """Show the previous (-1) or next (+1) image; False at either end."""
        image_id = self.neighbour(delta)
        if image_id is None or self.doc is None:
            return False
        self.doc.set_image(image_id)
        return True

    def first_unlabelled_after(self, image_id: int | None) -> int | None:
        """The first unlabelled image (no annotation, not marked done) after `image_id`
        (wrapping), honouring the split, class and search filters."""
        if self.doc is None:
            return None
        f = self.model.filters
        filters = dict(split=f["split"], class_id=f["class_id"], search=f["search"],
                       unlabelled=True)
        project = self.doc.project
        after = project.images(**filters, after_id=image_id, limit=1) if image_id else []
        first = after or project.images(**filters, limit=1)  # wrap around to the start
        candidate = first[0].id if first else None
        return None if candidate == image_id else candidate

    def go_next_unlabelled(self) -> bool:
        if self.doc is None:
            return False
        image_id = self.first_unlabelled_after(self.doc.image_id)
        if image_id is None:
            self.message.emit("No unlabelled image left (every image has annotations or is done).")
            return False
        if self.model.row_of(image_id) is None:  # hidden by the status filter: show all
            self.status_filter.setCurrentIndex(0)
        self.doc.set_image(image_id)
        return True

    def _update_count(self) -> None:
        row = self.current_row() if self.doc is not None else None
        total = self.model.rowCount()
        self.count_label.setText(f"{total:,} image(s)")
        self.countChanged.emit(-1 if row is None else row, total)

    # --- status and split of the current image ------------------------------------------------
    def set_status(self, status: str) -> None:
        if self.doc is None or self.doc.image_id is None:
            return
        try:
            self.doc.project.set_status(self.doc.image_id, status)
        except StudioError as exc:
            show_error(self, exc)
            return
        self.refresh_image(self.doc.image_id)

    def mark_done_and_next(self) -> None:
        """Mark the current image done and show the next unlabelled one (else the next)."""
        if self.doc is None or self.doc.image_id is None:
            return
        self.set_status("done")
        if not self.go_next_unlabelled():
            self.go(1)

    def set_split(self, split: str) -> None:
        if self.doc is None or self.doc.image_id is None:
            return
        try:
            self.doc.project.set_split(self.doc.image_id, split)
        except StudioError as exc:
            show_error(self, exc)
            return
        self.refresh_image(self.doc.image_id)

    def random_split(self) -> None:
        """Ask for ratios and assign train/val/test at random (seeded)."""
        from studio.core.splits import random_split
        from studio.gui.dialogs import QDialog, SplitDialog

        dialog = SplitDialog(self)
        if self.doc is None or dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            counts = random_split(self.doc.project, **dialog.values())
        except StudioError as exc:
            show_error(self, exc)
            return
        self.refresh()
        self.message.emit("Split: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
