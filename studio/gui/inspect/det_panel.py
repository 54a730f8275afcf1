"""The Inspect panel of detection and instance runs: score-threshold, NMS and match-IoU
sliders, and for runs that split per-pixel maps into objects the split's seed and
foreground thresholds (all debounced into one `paramsChanged`), what the canvas shows, the objects of the
current image (class, score, IoU with its match, status; a click selects one), the
readouts (image and split: precision, recall, F1, counts; the run's mAPs) and accepting
detections into the labels."""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from studio.gui.inspect.det_overlay import STATUS_COLORS
from studio.ml.inspect.detections import RAW_NMS_IOU, RAW_SCORE, DetectionParams, ObjectRow

DEBOUNCE_MS = 60
OBJECT_COLUMNS = ["#", "Class", "Score", "IoU", "Status"]
# (key, row label); "map:<kind>:<figure>" rows are split-only
COUNT_ROWS = [("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
              ("tp", "Matched (TP)"), ("fp", "False positives"), ("fn", "Missed (FN)"),
              ("mean_iou", "Mean IoU of matches")]
MAP_ROWS = [("map50", "mAP@0.5"), ("map", "mAP@[.5:.95]")]


def _slider(lo: float, hi: float, value: float, tip: str) -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setSingleStep(0.01)
    s.setDecimals(2)
    s.setValue(value)
    s.setToolTip(tip)
    return s


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


OBJECT_WIDTHS = (34, 70, 52, 48, 96)  # px; fixed: measuring hundreds of rows per move costs


class ObjectsModel(QAbstractTableModel):
    """The objects of the current image; cells are made only when the view asks for them
    and sorting is one Python sort (a few hundred detections per slider move stay cheap).
    `rows` keep their given order (# = position + 1); `order` is the shown one."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[ObjectRow] = []
        self.order: list[int] = []
        self.names: list[str] = []
        self.sorting = (0, Qt.SortOrder.AscendingOrder)
        self._brushes = {k: QBrush(QColor(*c).darker(120)) for k, c in STATUS_COLORS.items()}

    def set_rows(self, rows: list[ObjectRow], names: list[str]) -> None:
        self.beginResetModel()
        self.rows, self.names = list(rows), list(names)
        self.order = self._sorted(*self.sorting)
        self.endResetModel()

    def _key(self, i: int, column: int):
        row = self.rows[i]
        value = (i, name_key(self.names, row), row.score,
                 math.nan if row.status == "missed" else row.iou, row.status)[column]
        if isinstance(value, float):  # no number last
            return (math.isnan(value), 0.0 if math.isnan(value) else value)
        return (False, value)

    def _sorted(self, column: int, order) -> list[int]:
        out = sorted(range(len(self.rows)), key=lambda i: self._key(i, column))
        return out[::-1] if order == Qt.SortOrder.DescendingOrder else out

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.sorting = (column, order)
        self.order = self._sorted(column, order)
        self.layoutChanged.emit()

    def row_at(self, r: int) -> ObjectRow:
        return self.rows[self.order[r]]

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 (Qt name)
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 (Qt name)
        return 0 if parent is not None and parent.isValid() else len(OBJECT_COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return OBJECT_COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        i = self.order[index.row()]
        row, c = self.rows[i], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(i + 1), name_key(self.names, row), _fmt(row.score),
                    "–" if row.status == "missed" else _fmt(row.iou), row.status)[c]
        if role == Qt.ItemDataRole.ForegroundRole and c == 4:
            return self._brushes[row.status]
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (0, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def name_key(names: list[str], row: ObjectRow) -> str:
    return names[row.class_index] if row.class_index < len(names) else "?"


class DetectionPanel(QWidget):
    """Sliders, display options, objects list, readouts and accept buttons."""

    paramsChanged = Signal(object)  # DetectionParams, debounced
    displayChanged = Signal()  # what the canvas shows (no recomputation)
    objectSelected = Signal(str, int)  # row source ("prediction" / "ground truth"), index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.score = _slider(RAW_SCORE, 1.0, 0.5, "Detections scoring below this are "
                             "dropped (the network ran once; this only refilters)")
        self.nms = _slider(0.1, RAW_NMS_IOU, 0.5, "Class-wise non-maximum suppression: of two "
                           "boxes of a class overlapping more than this, the lower-scoring one "
                           f"is dropped (the network kept overlaps up to {RAW_NMS_IOU})")
        self.match_iou = _slider(0.1, 0.95, 0.5, "A detection matches a ground-truth object "
                                 "of its class when their IoU reaches this (greedy by score, as "
                                 "COCO matches)")
        # runs splitting per-pixel maps into objects: the split's own parameters
        self.seed = _slider(0.05, 0.95, 0.5, "Seed threshold of the split: a core of pixels "
                            "farther than this (as a fraction of its object's size) from the "
                            "edge starts an object (higher: more objects split apart; the "
                            "network's maps are split again, not re-computed)")
        self.foreground = _slider(0.05, 0.95, 0.5, "Foreground threshold of the split: pixels "
                                  "whose foreground probability exceeds this belong to an "
                                  "object")
        self.color_by = QComboBox()
        self.color_by.addItem("Match (TP / FP / missed)", "match")
        self.color_by.addItem("Class", "class")
        self.show_pred = QCheckBox("Predictions")
        self.show_gt = QCheckBox("Ground truth")
        for box in (self.show_pred, self.show_gt):
            box.setChecked(True)
        self.model = ObjectsModel(self)
        self.objects = QTableView()
        self.objects.setModel(self.model)
        self.objects.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.objects.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.objects.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.objects.verticalHeader().hide()
        self.objects.verticalHeader().setDefaultSectionSize(20)
        for c, width in enumerate(OBJECT_WIDTHS):
            self.objects.setColumnWidth(c, width)
        self.objects.horizontalHeader().setStretchLastSection(True)
        self.objects.setSortingEnabled(True)
        self.objects.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # '#': best first
        self.readouts = QTableWidget(0, 3)
        self.readouts.setHorizontalHeaderLabels(["Image", "Split", "Run record"])
        self.readouts.horizontalHeaderItem(2).setToolTip(
            "The mAPs the run recorded on its validation split at its best epoch (its own "
            "thresholds)")
        self.readouts.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.readouts.verticalHeader().setDefaultSectionSize(20)
        self.readouts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.readouts.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.status = QLabel("")
        self.status.setObjectName("readout_status")
        self.status.setWordWrap(True)
        self.accept_all = QPushButton("Accept into labels")
        self.accept_all.setToolTip("Replace the image's objects of the run's classes by the "
                                   "kept detections (model-sourced; one undo step; the image "
                                   "is marked for review)")
        self.accept_selected = QPushButton("Accept selected")
        self.accept_selected.setToolTip("Add the selected detection to the image's objects "
                                        "(one undo step; marked for review)")
        self.accept_selected.setEnabled(False)
        self.undo = QPushButton("Undo")
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.flush)
        self._splits = False
        self._build()
        for slider in (self.seed, self.foreground):
            self._form.setRowVisible(slider, False)
        self.set_kinds(["box"])
        for s in (self.score, self.nms, self.match_iou, self.seed, self.foreground):
            s.valueChanged.connect(lambda _v: self._timer.start())
        self.color_by.currentIndexChanged.connect(lambda _i: self.displayChanged.emit())
        for box in (self.show_pred, self.show_gt):
            box.toggled.connect(lambda _on: self.displayChanged.emit())
        self.objects.selectionModel().selectionChanged.connect(lambda *_a: self._on_row())

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Score ≥", self.score)
        form.addRow("NMS IoU", self.nms)
        form.addRow("Match IoU ≥", self.match_iou)
        form.addRow("Seed >", self.seed)
        form.addRow("Foreground >", self.foreground)
        self._form = form
        shown = QHBoxLayout()
        for w in (self.show_pred, self.show_gt, self.color_by):
            shown.addWidget(w)
        form.addRow("Show", shown)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(QLabel("<b>Detections</b> (sliders never re-run the network)"))
        tl.addLayout(form)
        buttons = QHBoxLayout()
        for b in (self.accept_selected, self.accept_all, self.undo):
            buttons.addWidget(b)
        tl.addLayout(buttons)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.status)
        bl.addWidget(self.readouts)
        split = self.split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(self.objects)
        split.addWidget(bottom)
        split.setStretchFactor(0, 1)  # the objects list takes what the readouts leave
        split.setStretchFactor(1, 0)
        split.setSizes([300, 240])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(top)
        layout.addWidget(split, 1)

    # --- sliders ------------------------------------------------------------------------------
    def splits(self) -> bool:
        """Whether the split sliders apply (the open run splits per-pixel maps)."""
        return self._splits

    def params(self) -> DetectionParams:
        split = {}
        if self._splits:
            split = {"seed": round(self.seed.value(), 4),
                     "foreground": round(self.foreground.value(), 4)}
        return DetectionParams(round(self.score.value(), 4), round(self.nms.value(), 4),
                               round(self.match_iou.value(), 4), **split)

    def set_params(self, params: DetectionParams) -> None:
        """Show `params` without announcing a change (a session just opened); the split
        sliders only where `params` has split values."""
        values = [(self.score, params.score), (self.nms, params.nms_iou),
                  (self.match_iou, params.match_iou)]
        self._splits = params.seed is not None
        if self._splits:
            values += [(self.seed, params.seed), (self.foreground, params.foreground)]
        for slider, value in values:
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        for slider in (self.seed, self.foreground):
            self._form.setRowVisible(slider, self._splits)
        self._timer.stop()

    def flush(self) -> None:
        """Announce the sliders' values now (the debounce timer's end, or a test's)."""
        self._timer.stop()
        self.paramsChanged.emit(self.params())

    def display(self) -> dict:
        return {"color_by": self.color_by.currentData(), "predictions":
                self.show_pred.isChecked(), "truth": self.show_gt.isChecked()}

    # --- objects ------------------------------------------------------------------------------
    def set_objects(self, rows: list[ObjectRow], names: list[str]) -> None:
        self.model.set_rows(rows, names)  # the selection goes with the old rows
        self.accept_selected.setEnabled(False)

    def row_count(self) -> int:
        return self.model.rowCount()

    def _row_at(self, r: int) -> ObjectRow:
        return self.model.row_at(r)

    def row_keys(self) -> list[tuple[str, int]]:
        """(source, index) of the listed objects, in the table's current order."""
        return [(row.source, row.index) for row in map(self._row_at, range(self.row_count()))]

    def statuses(self) -> list[str]:
        """The status column as listed (top to bottom)."""
        return [self._row_at(r).status for r in range(self.row_count())]

    def select_row(self, r: int) -> None:
        self.objects.selectRow(r)

    def select_key(self, key: tuple[str, int]) -> None:
        """Select the listed object (source, index), scrolling the list to it."""
        keys = self.row_keys()
        if key in keys:
            r = keys.index(key)
            self.objects.selectionModel().select(
                self.model.index(r, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
            self.objects.scrollTo(self.model.index(r, 0))

    def selected_row(self) -> ObjectRow | None:
        rows = self.objects.selectionModel().selectedRows()
        return self._row_at(rows[0].row()) if rows else None

    def _on_row(self) -> None:
        row = self.selected_row()
        self.accept_selected.setEnabled(row is not None and row.source == "prediction")
        if row is not None:
            self.objectSelected.emit(row.source, row.index)

    # --- readouts -----------------------------------------------------------------------------
    def _fit_readouts(self) -> None:
        """Every readout row in sight (the objects list, which scrolls, takes the rest)."""
        table = self.readouts
        want = (2 * self.status.fontMetrics().lineSpacing() + table.horizontalHeader()
                .sizeHint().height() + 20 * table.rowCount() + 2 * table.frameWidth() + 8)
        total = sum(self.split.sizes()) if self.split.height() > 100 else 560
        self.split.setSizes([max(total - want, 120), want])

    def set_kinds(self, kinds: list[str]) -> None:
        """mAP rows per evaluated kind ("box", and "mask" for instance runs)."""
        self._readout_rows = list(COUNT_ROWS) + [
            (f"map:{kind}:{key}", f"{kind.capitalize()} {label}")
            for kind in kinds for key, label in MAP_ROWS]
        self.readouts.setRowCount(len(self._readout_rows))
        self.readouts.setVerticalHeaderLabels([r[1] for r in self._readout_rows])
        self._fit_readouts()
        self.set_image_figures(None)
        self.set_split_figures(None)
        self.set_run_figures(None)

    def set_run_figures(self, maps: dict | None) -> None:
        self._fill(2, None if maps is None else {"map": maps})

    def set_image_figures(self, figures: dict | None) -> None:
        self._fill(0, figures)

    def set_split_figures(self, figures: dict | None) -> None:
        self._fill(1, figures)

    def _fill(self, column: int, figures: dict | None) -> None:
        for r, (key, _label) in enumerate(self._readout_rows):
            value = None
            if figures is not None:
                if key.startswith("map:"):
                    _m, kind, name = key.split(":")
                    value = figures.get("map", {}).get(kind, {}).get(name)
                else:
                    value = figures.get(key)
            item = self.readouts.item(r, column)
            if item is None:
                item = QTableWidgetItem()
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.readouts.setItem(r, column, item)
            item.setText(_fmt(value))

    def value(self, row_label: str, column: int) -> str:
        for r, (_key, label) in enumerate(self._readout_rows):
            if label == row_label:
                item = self.readouts.item(r, column)
                return item.text() if item is not None else ""
        raise KeyError(row_label)

    def set_updating(self, updating: bool, text: str = "") -> None:
        self.status.setText("Split: updating…" if updating else text)
        self.status.setStyleSheet("color: #b07000; font-weight: bold" if updating else "")
