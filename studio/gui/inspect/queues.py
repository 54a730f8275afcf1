"""Review queues (likely label errors, next to label) and, for classification runs, the
confusion matrix whose cells list their images with the top-k probabilities. A row
opens with a single click or Enter."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)


def once(owner, image_id: int) -> bool:
    """False for the second signal of one gesture (a double click is a click and an
    activation): the same row again within the double-click interval."""
    now = time.monotonic()
    last = owner._last_open
    owner._last_open = (image_id, now)
    return not (last is not None and last[0] == image_id
                and now - last[1] < QApplication.doubleClickInterval() / 1000)


QUEUE_TITLES = {"label-errors": "Likely label errors", "next-to-label": "Next to label"}


class QueueList(QWidget):
    """One review queue: a Compute button, its cost line and the ranked images."""

    computeRequested = Signal(str)  # queue name
    imageActivated = Signal(int, str)  # image id, queue name

    def __init__(self, queue: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.button = QPushButton("Compute")
        self.button.setToolTip("Rank the split's labelled images by how likely their label "
                               "is wrong" if queue == "label-errors" else
                               "Rank every unlabelled image of the project (all splits) by "
                               "the run's uncertainty")
        self.button.clicked.connect(lambda: self.computeRequested.emit(queue))
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        # a single click or Enter opens a row (a double click opens it once)
        self.tree.itemClicked.connect(self._on_activated)
        self.tree.itemActivated.connect(self._on_activated)
        self._last_open: tuple[int, float] | None = None
        top = QHBoxLayout()
        title = QLabel(f"<b>{QUEUE_TITLES[queue]}</b>")
        top.addWidget(title)
        top.addWidget(self.button)
        options = QHBoxLayout()
        if queue == "label-errors":
            self.folds = QSpinBox()
            self.folds.setRange(2, 10)
            self.folds.setValue(3)
            self.folds.setPrefix("folds ")
            self.folds.setToolTip("Training images are predicted by cross-validation fold "
                                  "models (each trained once), so the model never saw them.")
            self.epochs = QSpinBox()
            self.epochs.setRange(0, 1000)
            self.epochs.setSpecialValueText("run's epochs")
            self.epochs.setPrefix("epochs ")
            self.epochs.setToolTip("Epochs per fold model (fewer: cheaper, less faithful).")
            options.addWidget(self.folds)
            options.addWidget(self.epochs)
            options.addStretch(1)
            headers = ["#", "Image", "Score", "Given", "Proposed", "Model"]
        else:
            headers = ["#", "Image", "Uncertainty", "Margin"]
        top.addStretch(1)
        self.tree.setHeaderLabels(headers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(options)
        layout.addWidget(self.info)
        layout.addWidget(self.tree)

    def options(self) -> dict:
        if self.queue != "label-errors":
            return {}
        return {"folds": self.folds.value(), "epochs": self.epochs.value() or None}

    def set_busy(self, text: str) -> None:
        self.button.setEnabled(not text)
        if text:
            self.info.setText(text)

    def set_queue(self, queue) -> None:
        """Show a `studio.ml.review.ReviewQueue`."""
        self.tree.clear()
        self.button.setEnabled(True)
        scope = (f"the {queue.split} split" if queue.split else
                 "the whole project (all splits)")
        text = f"{len(queue.entries)} image(s) of {scope}, most in need of a look first."
        if queue.cost is not None:
            text += f" Held-out predictions: {queue.cost.describe()}."
        self.info.setText(text)
        for rank, e in enumerate(queue.entries, start=1):
            name = e.file.replace("\\", "/").rsplit("/", 1)[-1]
            if self.queue == "label-errors":
                cols = [str(rank), name, f"{e.score:.3f}", e.given or "–", e.proposed or "–",
                        e.source]
            else:
                cols = [str(rank), name, f"{e.score:.3f}", f"{e.details.get('margin', 0):.3f}"]
            item = QTreeWidgetItem(cols)
            item.setData(0, Qt.ItemDataRole.UserRole, int(e.image_id))
            item.setToolTip(1, e.file)
            shade = int(255 - 90 * min(max(e.score, 0.0), 1.0))
            item.setBackground(2, QBrush(QColor(255, shade, shade)))
            self.tree.addTopLevelItem(item)
        for c in range(self.tree.columnCount()):
            self.tree.resizeColumnToContents(c)

    def image_ids(self) -> list[int]:
        return [self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.tree.topLevelItemCount())]

    def _on_activated(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        image_id = int(item.data(0, Qt.ItemDataRole.UserRole))
        if not once(self, image_id):
            return
        self.imageActivated.emit(image_id, self.queue)


class ConfusionPanel(QWidget):
    """Classification: given (rows) x predicted (columns); a click lists the cell's images
    with their top-k probabilities; a click on one opens it."""

    imageActivated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = QTableWidget(0, 0)
        self.matrix.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.matrix.cellClicked.connect(self._on_cell)
        self.images = QTreeWidget()
        self.images.setRootIsDecorated(False)
        self.images.setHeaderLabels(["Image", "Given", "Top-k probabilities"])
        self.images.itemClicked.connect(self._on_image)
        self.images.itemActivated.connect(self._on_image)
        self._last_open: tuple[int, float] | None = None
        self.caption = QLabel("Rows: labelled class; columns: predicted class. Click a cell.")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.matrix, 2)
        layout.addWidget(self.images, 3)
        self._cells: dict[tuple[int, int], list[int]] = {}
        self._rows: dict[int, tuple[str, str, str]] = {}

    def set_data(self, counts: np.ndarray, cells: dict[tuple[int, int], list[int]],
                 names: list[str], rows: dict[int, tuple[str, str, str]]) -> None:
        """`rows`: image id -> (file name, given class, "cat 0.91, dog 0.07, ...")."""
        self._cells, self._rows = cells, rows
        c = len(names)
        self.matrix.setRowCount(c)
        self.matrix.setColumnCount(c)
        self.matrix.setHorizontalHeaderLabels([f"→ {n}" for n in names])
        self.matrix.setVerticalHeaderLabels(names)
        peak = max(int(counts.max()) if counts.size else 0, 1)
        for i in range(c):
            for j in range(c):
                n = int(counts[i, j])
                item = QTableWidgetItem(str(n))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                level = int(255 - 150 * n / peak)
                tint = QColor(level, 255, level) if i == j else QColor(255, level, level)
                item.setBackground(QBrush(tint if n else QColor(250, 250, 250)))
                self.matrix.setItem(i, j, item)
        self.matrix.resizeColumnsToContents()
        self.images.clear()

    def select_cell(self, row: int, col: int) -> None:
        self.matrix.setCurrentCell(row, col)
        self._on_cell(row, col)

    def listed_ids(self) -> list[int]:
        return [self.images.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.images.topLevelItemCount())]

    def _on_image(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        image_id = int(item.data(0, Qt.ItemDataRole.UserRole))
        if once(self, image_id):
            self.imageActivated.emit(image_id)

    def _on_cell(self, row: int, col: int) -> None:
        self.images.clear()
        for image_id in self._cells.get((row, col), []):
            name, given, top = self._rows[image_id]
            item = QTreeWidgetItem([name, given, top])
            item.setData(0, Qt.ItemDataRole.UserRole, int(image_id))
            self.images.addTopLevelItem(item)
        for c in range(3):
            self.images.resizeColumnToContents(c)
