"""A finished (or stopped) run at a glance: best metrics, epoch, time, device; for
classification the confusion matrix (counts or row-normalised) and per-class precision,
recall and F1; for segmentation per-class IoU and Dice. The per-class figures come from
the engine's `evaluate_run` on the validation split: the report the training process
kept in the run's folder, or else evaluated in a worker."""

from __future__ import annotations

import math
import numbers

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.errors import show_error


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _cell(text: str, colour: QColor | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    if colour is not None:
        item.setBackground(colour)
        if colour.lightness() < 110:
            item.setForeground(QColor("white"))
    return item


class NumberItem(QTableWidgetItem):
    """A figure shown with a fixed number of decimals (0.7940, not 0.794, beside 0.8123)
    that sorts by its value."""

    def __init__(self, value) -> None:
        number = int(value) if isinstance(value, numbers.Integral) else float(value)
        super().__init__(f"{number:,}" if isinstance(number, int) else _fmt(number))
        self.setData(Qt.ItemDataRole.UserRole, number)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if not isinstance(theirs, (int, float)):
            return super().__lt__(other)
        mine = -math.inf if math.isnan(mine) else mine  # "-" (no figure) sorts first
        theirs = -math.inf if math.isnan(theirs) else theirs
        return mine < theirs


def heat(value: float) -> QColor:
    """White (0) to dark blue (1)."""
    v = min(1.0, max(0.0, value))
    return QColor(int(255 - 222 * v), int(255 - 175 * v), int(255 - 100 * v))


def summary_report(project, run_id: int, which: str) -> dict:
    """The run's validation report: the one its training process kept, else evaluated
    here (on the CPU: the window's process does not take a GPU)."""
    from studio.gui.train.backend import evaluate_run, stored_report

    return stored_report(project, run_id, "val", which) or evaluate_run(
        project, run_id, "val", which, "cpu")


class SummaryPanel(QWidget):
    # (run id, a line for the run's log): its per-class report is shown, or why not
    reportShown = Signal(int, str)

    def __init__(self, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.header = QLabel("No run yet: start one, or pick one in the history.")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.normalised = QCheckBox("Row-normalised")
        self.normalised.setToolTip("Each row divided by its total: the share of each true "
                                   "class predicted as each class (the diagonal is recall).")
        self.normalised.toggled.connect(lambda _on: self._draw_confusion())
        self.confusion = QTableWidget()
        self.confusion.setToolTip("Rows: true class; columns: predicted class.")
        self.per_class = QTableWidget()
        self.per_class.setSortingEnabled(True)
        self.per_class.setToolTip("Per-class figures on the validation split.")
        self.note = QLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        row = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Confusion matrix</b> (validation)"))
        left.addWidget(self.normalised)
        # the axes named beside the class names: rows are the true class, columns the
        # predicted one
        self.predicted_axis = QLabel("predicted class \u2192")
        self.true_axis = QLabel("true\nclass\n\u2193")
        matrix = QGridLayout()
        matrix.setSpacing(2)
        matrix.addWidget(self.predicted_axis, 0, 1)  # over the columns, from the left
        matrix.addWidget(self.true_axis, 1, 0, Qt.AlignmentFlag.AlignTop)  # by the rows
        matrix.addWidget(self.confusion, 1, 1)
        matrix.setRowStretch(1, 1)
        matrix.setColumnStretch(1, 1)
        left.addLayout(matrix, 1)
        self.confusion_box = QWidget()
        self.confusion_box.setLayout(left)
        row.addWidget(self.confusion_box, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("<b>Per class</b> (validation)"))
        right.addWidget(self.per_class, 1)
        row.addLayout(right, 1)
        layout.addLayout(row, 1)
        layout.addWidget(self.note)
        self.result: dict | None = None
        self.run_id: int | None = None

    def show_run(self, project, run_id: int | None) -> None:
        self.run_id = run_id
        self.result = None
        self.confusion.clear()
        self.confusion.setRowCount(0)
        self.per_class.setRowCount(0)
        if project is None or run_id is None:
            self.header.setText("No run yet: start one, or pick one in the history.")
            return
        run = project.run(run_id)
        best = run.best_metrics or {}
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in best.items()
                            if isinstance(v, float) and k not in ("lr", "elapsed",
                                                                  "images_per_s"))
        duration = f"{run.duration_s:.0f} s" if run.duration_s else "-"
        self.header.setText(
            f"<b>{run.name}</b> ({run.status}) - model {run.config.get('model')}, device "
            f"{run.device or '-'}, time {duration}<br>best epoch {best.get('epoch', '-')}: "
            f"{figures or 'no metrics'}" + (f"<br><span style='color:#c0392b'>{run.error}</span>"
                                           if run.error else ""))
        if not run.checkpoints.get("best") and not run.checkpoints.get("last"):
            self.note.setText("This run has no checkpoint to evaluate.")
            return
        self.note.setText("Evaluating on the validation split...")
        which = "best" if run.checkpoints.get("best") else "last"
        self.workers.submit(summary_report, project, run_id, which, key="run_summary",
                            on_result=self._show_result, on_error=self._on_error)

    def _on_error(self, exc: BaseException) -> None:
        self.note.setText(f"No per-class figures: {exc}")
        if self.run_id is not None:
            self.reportShown.emit(self.run_id, f"Summary ready, without per-class figures: {exc}")
        if not isinstance(exc, Exception):
            show_error(self, exc)

    def _show_result(self, result: dict) -> None:
        self.result = result
        self.note.setText(f"{result.get('images', 0)} validation images.")
        names = list(result.get("class_names", []))
        classification = "f1" in result and "iou" not in result
        self.confusion_box.setVisible(classification)
        if classification:
            self._draw_confusion()
            columns = [("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                       ("support", "images")]
        else:
            columns = [("iou", "IoU"), ("dice", "Dice"), ("precision", "precision"),
                       ("recall", "recall"), ("support", "pixels")]
        self.per_class.setSortingEnabled(False)
        self.per_class.setColumnCount(len(columns) + 1)
        self.per_class.setHorizontalHeaderLabels(["class"] + [c[1] for c in columns])
        self.per_class.setRowCount(len(names))
        for r, name in enumerate(names):
            self.per_class.setItem(r, 0, QTableWidgetItem(name))
            for c, (key, _label) in enumerate(columns, start=1):
                values = result.get(key) or []
                value = values[r] if r < len(values) else float("nan")
                self.per_class.setItem(r, c, NumberItem(value))
        self.per_class.resizeColumnsToContents()
        self.per_class.setSortingEnabled(True)
        if self.run_id is not None:
            self.reportShown.emit(self.run_id, f"Summary ready: {result.get('images', 0)} "
                                  "validation images (the Summary tab).")

    def _draw_confusion(self) -> None:
        if self.result is None or "confusion_matrix" not in self.result:
            return
        cm = np.asarray(self.result["confusion_matrix"], dtype=np.float64)
        names = list(self.result.get("class_names", []))
        n = len(cm)
        rows = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        scale = cm.max() or 1.0
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        self.confusion.setHorizontalHeaderLabels(names[:n])
        self.confusion.setVerticalHeaderLabels(names[:n])
        for i, name in enumerate(names[:n]):
            self.confusion.horizontalHeaderItem(i).setToolTip(f"predicted: {name}")
            self.confusion.verticalHeaderItem(i).setToolTip(f"true: {name}")
        for i in range(n):
            for j in range(n):
                if self.normalised.isChecked():
                    self.confusion.setItem(i, j, _cell(f"{share[i, j]:.2f}", heat(share[i, j])))
                else:
                    self.confusion.setItem(i, j, _cell(f"{int(cm[i, j]):,}",
                                                       heat(cm[i, j] / scale)))
        self.confusion.resizeColumnsToContents()
