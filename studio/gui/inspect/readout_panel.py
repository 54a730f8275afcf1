"""Readouts before and after post-processing, for the current image and the split, with
the change coloured (better green, worse red), and a chart of per-image Dice.

The table fits the width it is given (a 1366 px laptop's right panel): its six columns
share the width, headers wrap onto two lines, row labels (a long class name) are cut
with an ellipsis and told whole in their tooltip; it never scrolls sideways."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

# (key in the readout, label, higher is better)
SCALARS = [("pixel_accuracy", "Pixel accuracy", True), ("mean_iou", "Mean IoU", True),
           ("mean_dice", "Dice", True), ("mean_precision", "Precision", True),
           ("mean_recall", "Recall", True), ("mean_boundary_f1", "Boundary F1", True),
           ("mean_hd95", "HD95 (px)", False)]
COLUMNS = ["Image\nbefore", "Image\nafter", "Image\nΔ", "Split\nbefore", "Split\nafter", "Split\nΔ"]
BETTER, WORSE = QColor(30, 150, 60), QColor(200, 40, 40)
ROW_LABEL_WIDTH = 112  # px at most: a long class name is cut (its tooltip tells it whole)
MIN_COLUMN_WIDTH = 44  # px: "0.0000" and "+0.0000" at the usual font
ROW_HEIGHT = 20
MIN_ROWS = 4  # never fewer rows in sight (the table scrolls down to the others)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def _scalar(figures: dict | None, which: str, key: str, cls: int | None):
    if figures is None:
        return None
    part = figures.get(which)
    if part is None:
        return None
    value = part.get(key)
    if cls is not None:
        value = None if value is None or cls >= len(value) else value[cls]
    return None if value is None else float(value)


def change_cell(change: float | None, higher_better: bool) -> tuple[str, QColor | None]:
    """The text and colour of a change: signed and coloured (better green, worse red)
    only when it shows as a non-zero number; a change that rounds to zero reads "0"
    without colour (never "-0.0000" in red)."""
    if change is None or math.isnan(change):
        return "–", None
    text = f"{change:+.4f}" if abs(change) < 100 else f"{change:+.1f}"
    if float(text) == 0.0:
        return "0", None
    better = change > 0 if higher_better else change < 0
    return text, BETTER if better else WORSE


def split_summary(figures: dict) -> str:
    """The line under the readouts once the split's figures are in."""
    after, left_out = figures["after"], figures.get("left_out", 0)
    text = "Split: no image with ground truth" if after is None else (
        f"Split: {after['images']} image(s), mean Dice {after['mean_dice']:.4f} after "
        "post-processing")
    if left_out:
        text += (f"; {left_out} image(s) left out: their labels are a model's, waiting for "
                 "review")
    return text


class ReadoutTable(QWidget):
    """Rows: the scalar figures, then IoU per class; columns: image and split, before,
    after and change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        rows = self.table.verticalHeader()
        rows.setDefaultSectionSize(ROW_HEIGHT)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setMaximumWidth(ROW_LABEL_WIDTH)
        rows.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(MIN_COLUMN_WIDTH)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # the width is shared
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(self._table_height(MIN_ROWS))
        self.status = QLabel("")
        self.status.setObjectName("readout_status")
        self.status.setWordWrap(True)
        self.note = QLabel("")  # says when the image's labels are a model's, not ground truth
        self.note.setObjectName("readout_note")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b07000")
        self.note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        self.class_names: list[str] = []
        self.image_figures: dict | None = None
        self.split_figures: dict | None = None
        self._rows: list[tuple[str, str, bool, int | None]] = []
        self.set_classes([])

    def set_classes(self, names: list[str]) -> None:
        self.class_names = list(names)
        self._rows = [(k, label, hib, None) for k, label, hib in SCALARS]
        self._rows += [("iou", f"IoU {n}", True, i) for i, n in enumerate(names)]
        self.table.setRowCount(len(self._rows))
        self.table.setVerticalHeaderLabels([r[1] for r in self._rows])
        for r, row in enumerate(self._rows):
            self.table.verticalHeaderItem(r).setToolTip(row[1])
        self._fill()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Narrow enough for a laptop's right panel: the row labels, six columns of
        MIN_COLUMN_WIDTH and the vertical scroll bar."""
        hint = super().minimumSizeHint()
        width = (ROW_LABEL_WIDTH + len(COLUMNS) * MIN_COLUMN_WIDTH
                 + self.table.verticalScrollBar().sizeHint().width() + 2 * self.table.frameWidth())
        return QSize(width, hint.height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Tall enough for every row (the workspace's splitter gives it that when it can)."""
        line = self.status.fontMetrics().lineSpacing()  # the status: one line at least
        extra = max(self.status.sizeHint().height(), line) + (
            0 if self.note.isHidden() else self.note.sizeHint().height())
        return QSize(self.minimumSizeHint().width(),
                     self._table_height(len(self._rows)) + extra + 4)

    def _table_height(self, rows: int) -> int:
        return (self.table.horizontalHeader().sizeHint().height() + rows * ROW_HEIGHT
                + 2 * self.table.frameWidth())

    def visible_rows(self) -> int:
        """How many rows are in sight at once."""
        return self.table.viewport().height() // ROW_HEIGHT

    def set_image(self, figures: dict | None) -> None:
        self.image_figures = figures
        model = bool(figures and figures.get("model_labels"))
        self.note.setText("Image columns: this image's labels are a model's (accepted, "
                          "waiting for review), not ground truth; the split leaves it out."
                          if model else "")
        self.note.setVisible(model)
        labels = list(COLUMNS)
        if model:
            labels[:3] = [c.replace("Image", "Image*") for c in COLUMNS[:3]]
        self.table.setHorizontalHeaderLabels(labels)
        self._fill()

    def set_split(self, figures: dict | None) -> None:
        self.split_figures = figures
        self._fill()

    def set_updating(self, updating: bool, text: str = "") -> None:
        self.status.setText("Split: updating…" if updating else text)
        self.status.setStyleSheet("color: #b07000; font-weight: bold" if updating else "")

    def value(self, row_label: str, column: int) -> str:
        for r, row in enumerate(self._rows):
            if row[1] == row_label:
                item = self.table.item(r, column)
                return item.text() if item is not None else ""
        raise KeyError(row_label)

    def change_color(self, row_label: str, column: int) -> QColor | None:
        for r, row in enumerate(self._rows):
            if row[1] == row_label:
                item = self.table.item(r, column)
                brush = item.foreground() if item is not None else None
                return brush.color() if brush is not None and brush.style() != Qt.BrushStyle.NoBrush else None
        raise KeyError(row_label)

    def _fill(self) -> None:
        for r, (key, _label, higher_better, cls) in enumerate(self._rows):
            for col0, figures in ((0, self.image_figures), (3, self.split_figures)):
                before = _scalar(figures, "before", key, cls)
                after = _scalar(figures, "after", key, cls)
                change = None if before is None or after is None else after - before
                for c, v in enumerate((before, after)):
                    self._put(r, col0 + c, _fmt(v), None)
                text, color = change_cell(change, higher_better)
                self._put(r, col0 + 2, text, color)

    def _put(self, r: int, c: int, text: str, color: QColor | None) -> None:
        item = self.table.item(r, c)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, c, item)
        item.setText(text)
        item.setForeground(QBrush(color) if color is not None else QBrush())


def image_ticks(n: int, most: int = 8) -> list[tuple[float, str]]:
    """Ticks of the chart's x axis for `n` images: whole image numbers from 1 (the worst),
    at most about `most` of them (one image: the tick "1", not -0.4..0.4 in thousandths;
    none: no tick)."""
    if n <= 0:
        return []
    step, k = 1, 0
    while math.ceil(n / step) > most:  # 1, 2, 5, 10, 20, 50, ...
        k += 1
        step = (1, 2, 5)[k % 3] * 10 ** (k // 3)
    return [(float(i - 1), str(i)) for i in sorted({1, *range(step, n + 1, step)})]


class DiceChart(pg.PlotWidget):
    """Per-image Dice across the split: before (grey) and after (blue), one point per image
    in the browser's order; a click selects that image."""

    imageClicked = Signal(int)  # image id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMinimumHeight(110)
        self.setMaximumHeight(180)
        # the readout table above takes the height first; the chart no more than it asks
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.setLabel("left", "Dice")
        self.setLabel("bottom", "image (worst first)")
        self.setYRange(0, 1.02)
        self.showGrid(y=True, alpha=0.3)
        self.getPlotItem().setMenuEnabled(False)
        self.before = self.plot([], [], pen=pg.mkPen((150, 150, 150), width=1), symbol="o",
                                symbolSize=5, symbolBrush=(150, 150, 150), name="before")
        self.after = self.plot([], [], pen=pg.mkPen((30, 90, 200), width=2), symbol="o",
                               symbolSize=6, symbolBrush=(30, 90, 200), name="after")
        self.after.sigPointsClicked.connect(self._on_clicked)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen((220, 120, 0), width=1))
        self.addItem(self.marker)
        self.marker.hide()
        self.image_ids: list[int] = []

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(super().sizeHint().width(), 120)

    def set_values(self, image_ids: list[int], before: list[float], after: list[float]) -> None:
        self.image_ids = list(image_ids)
        x = np.arange(len(image_ids), dtype=float)
        b = np.asarray(before, float)
        a = np.asarray(after, float)
        self.before.setData(x, b, connect="finite")
        self.after.setData(x, a, connect="finite")
        self.setXRange(-0.5, max(1, len(x)) - 0.5, padding=0.02)
        self.getAxis("bottom").setTicks([image_ticks(len(x))])

    def mark(self, image_id: int | None) -> None:
        if image_id in self.image_ids:
            self.marker.setValue(self.image_ids.index(image_id))
            self.marker.show()
        else:
            self.marker.hide()

    def _on_clicked(self, _item, points, *_args) -> None:
        if len(points):
            i = int(round(points[0].pos().x()))
            if 0 <= i < len(self.image_ids):
                self.imageClicked.emit(self.image_ids[i])
