"""The controls above and beside the Inspect view: run and split choice, overlays, view
mode, opacity, heatmap class, brush, accept; and the image browser."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledSlider

from studio.core.splits import SPLITS

OVERLAYS = [("none", "None"), ("gt", "Ground truth"), ("pred", "Prediction"),
            ("post", "Post-processed"), ("diff_raw", "Difference (prediction)"),
            ("diff_post", "Difference (post-processed)"), ("heatmap", "Probability heatmap")]
NAME_COLUMN_MAX = 170  # px
RANK_ROLE = Qt.ItemDataRole.UserRole + 1  # an image's place in the session's ranking
MODES = [("overlay", "Overlay"), ("split", "Split (divider)"), ("side", "Side by side")]


def _combo(items, current: str | None = None) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    for key, title in items:
        combo.addItem(title, key)
    if current is not None:
        combo.setCurrentIndex(combo.findData(current))
    return combo


TASK_ROLE = Qt.ItemDataRole.UserRole + 1  # a run's task, beside its id in the run list


class RunBar(QWidget):
    """Run, split, Open, a status line and a progress bar with Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = _combo([])
        self.run.setMinimumContentsLength(18)
        self.split = _combo([(s, s) for s in SPLITS], "val")
        self.open = QPushButton("Open")
        self.open.setToolTip("Predict the split's images with the run (once) and inspect them")
        self.status = QLabel("Choose a run and a split.")
        # a long file name in the line must not widen the window: it is cut (its tooltip
        # holds it whole)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.cancel = QPushButton("Cancel")
        self.cancel.hide()
        self.stale = QLabel("")  # the predictions are older than the run's checkpoint
        self.stale.setObjectName("stale_note")
        self.stale.setStyleSheet("color: #b07000; font-weight: bold")
        self.stale.setWordWrap(True)
        self.stale.hide()
        self.refresh = QPushButton("Refresh")
        self.refresh.setToolTip("Predict the split again with the run's current checkpoint")
        self.refresh.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for label, w in (("Run", self.run), ("Split", self.split)):
            layout.addWidget(QLabel(label))
            layout.addWidget(w)
        layout.addWidget(self.open)
        layout.addWidget(self.status, 1)
        layout.addWidget(self.stale, 1)
        layout.addWidget(self.refresh)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel)

    def set_runs(self, runs) -> None:
        keep = self.run.currentData()
        self.run.blockSignals(True)  # one change said, once the list is whole
        self.run.clear()
        for r in runs:
            self.run.addItem(f"{r.name} · {r.task} · {r.status}", r.id)
            self.run.setItemData(self.run.count() - 1, r.task, TASK_ROLE)
        if keep is not None and self.run.findData(keep) >= 0:
            self.run.setCurrentIndex(self.run.findData(keep))
        elif self.run.count():
            self.run.setCurrentIndex(self.run.count() - 1)
        self.run.blockSignals(False)
        self.run.currentIndexChanged.emit(self.run.currentIndex())
        self.open.setEnabled(self.run.count() > 0)

    def chosen_task(self) -> str | None:
        """The task of the run chosen in the list (None: no run)."""
        return self.run.currentData(TASK_ROLE)

    def show_stale(self, text: str | None) -> None:
        """Say that the predictions shown are stale (None: they are current)."""
        self.stale.setText(text or "")
        self.stale.setToolTip(text or "")
        self.stale.setVisible(bool(text))
        self.refresh.setVisible(bool(text))

    def show_progress(self, text: str | None, done: int = 0, total: int = 0) -> None:
        visible = text is not None
        self.progress.setVisible(visible)
        self.cancel.setVisible(visible)
        if visible:
            self.status.setText(text)
            self.progress.setMaximum(max(total, 0))
            self.progress.setValue(done)


class ViewBar(QWidget):
    """Overlay choices, view mode, opacity, the classes shown, heatmap class, brush and
    accept buttons."""

    classesChanged = Signal()  # a class was shown or hidden

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = QToolButton()
        self.classes.setText("Classes")
        self.classes.setToolTip("Which classes the label and difference overlays colour: "
                                "every class has its colour; untick one (the background "
                                "too) to hide it")
        self.classes.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.class_menu = QMenu(self.classes)
        self.classes.setMenu(self.class_menu)
        self.first = _combo(OVERLAYS, "post")
        self.second = _combo(OVERLAYS, "pred")
        self.mode = _combo(MODES, "overlay")
        self.heat_class = _combo([])
        self.opacity = QLabeledSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMinimumWidth(60)
        self.opacity.setMaximumWidth(160)
        self.brush = QCheckBox("Brush")
        self.brush.setToolTip("Paint the post-processed mask: left drag paints the class, "
                              "right drag erases")
        self.brush_class = _combo([])
        self.brush_size = QSpinBox()
        self.brush_size.setRange(1, 200)
        self.brush_size.setValue(8)
        self.brush_size.setSuffix(" px")
        self.pick = QCheckBox("Pick region")
        self.pick.setToolTip("Click a connected component of the post-processed mask to select it")
        self.accept_all = QPushButton("Accept into labels")
        self.accept_all.setToolTip("Write the post-processed mask into the image's labels "
                                   "(one undo step; marked for review)")
        self.accept_region = QPushButton("Accept region")
        self.accept_region.setEnabled(False)
        self.undo = QPushButton("Undo")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 2, 4, 2)
        outer.setSpacing(2)
        # three short rows, not two long ones: the bar's width is the window's minimum
        top, middle, bottom = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        for row in (top, middle, bottom):
            outer.addLayout(row)
        for label, w in (("Show", self.first), ("vs", self.second), ("View", self.mode)):
            top.addWidget(QLabel(label))
            top.addWidget(w)
        top.addStretch(1)
        for w in (self.classes, QLabel("Heatmap of"), self.heat_class, self.brush,
                  self.brush_class, self.brush_size):
            middle.addWidget(w)
        middle.addStretch(1)
        bottom.addWidget(self.pick)
        bottom.addWidget(QLabel("Opacity"))  # here, not on the top row: room for its groove
        bottom.addWidget(self.opacity)  # beside its label; a wide window's room goes after it
        bottom.addStretch(1)
        for w in (self.accept_region, self.accept_all, self.undo):
            bottom.addWidget(w)

    def set_classes(self, names: list[str]) -> None:
        self.class_menu.clear()
        for i, n in enumerate(names):
            action = self.class_menu.addAction(n)
            action.setCheckable(True)
            action.setChecked(True)
            action.setData(i)
            action.toggled.connect(self._on_class_toggled)
        self._on_class_toggled()
        for combo in (self.heat_class, self.brush_class):
            combo.clear()
            for i, n in enumerate(names):
                combo.addItem(n, i)
        self.heat_class.setCurrentIndex(min(1, len(names) - 1))
        self.brush_class.setCurrentIndex(min(1, len(names) - 1))


    def hidden_classes(self) -> list[int]:
        """Class indices the overlays leave transparent."""
        return [a.data() for a in self.class_menu.actions() if not a.isChecked()]

    def set_class_shown(self, index: int, shown: bool) -> None:
        self.class_menu.actions()[index].setChecked(shown)

    def _on_class_toggled(self, _checked: bool = True) -> None:
        hidden = len(self.hidden_classes())
        self.classes.setText(f"Classes ({hidden} hidden)" if hidden else "Classes")
        self.classesChanged.emit()


class ImageBrowser(QTreeWidget):
    """The split's images sorted by a per-image figure, worst first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setSortingEnabled(True)
        self.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.setHeaderLabels(["Image", "Dice", "Dice post"])
        self.header().setDefaultSectionSize(80)  # empty, it fits the column without scrolling

    def fill(self, images, classification: bool, names: list[str] | None = None,
             headers: tuple[str, str, str] | None = None) -> None:
        self.setSortingEnabled(False)
        self.clear()
        self.setHeaderLabels(list(headers) if headers else ["Image", "p(label)", "Predicted"]
                             if classification else ["Image", "Dice", "Dice post"])
        for rank, e in enumerate(images):
            predicted = ""
            if classification and e.probabilities is not None and names:
                predicted = names[int(e.probabilities.argmax())]
            item = _SortItem([e.name, _num(e.score), predicted])
            item.setData(0, Qt.ItemDataRole.UserRole, int(e.image_id))
            item.setData(0, RANK_ROLE, rank)
            item.setData(1, Qt.ItemDataRole.UserRole, e.score)
            item.setToolTip(0, e.name)
            if not e.labelled:
                item.setToolTip(0, "No label: prediction only")
            self.addTopLevelItem(item)
        self.setSortingEnabled(True)
        self.sortItems(1, Qt.SortOrder.AscendingOrder)
        for c in range(3):
            self.resizeColumnToContents(c)
        # long file names (e.g. exported datasets' hashes) must not push the figures away
        self.setColumnWidth(0, min(self.columnWidth(0), NAME_COLUMN_MAX))

    def set_after(self, values: dict[int, float | str]) -> None:
        self.set_values(2, values)

    def set_values(self, column: int, values: dict[int, float | int | str],
                   resort: bool = False) -> None:
        """Show per-image figures in `column`; `resort`: sort again by the sort column
        (the figures it sorts by changed)."""
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            v = values.get(item.data(0, Qt.ItemDataRole.UserRole))
            if v is not None:
                item.setText(column, v if isinstance(v, str) else
                             str(v) if isinstance(v, int) else _num(v))
                item.setData(column, Qt.ItemDataRole.UserRole,
                             float(v) if isinstance(v, int) else v)
        if resort and self.isSortingEnabled():
            self.sortItems(self.sortColumn(), self.header().sortIndicatorOrder())

    def image_ids(self) -> list[int]:
        return [self.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.topLevelItemCount())]

    def select_image(self, image_id: int) -> None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == image_id:
                self.setCurrentItem(item)
                return

    def selected_ids(self) -> list[int]:
        return [it.data(0, Qt.ItemDataRole.UserRole) for it in self.selectedItems()]


def _num(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


class _SortItem(QTreeWidgetItem):
    """Sorts figure columns numerically (no value last)."""

    def __lt__(self, other) -> bool:
        col = self.treeWidget().sortColumn() if self.treeWidget() else 0
        if col == 0:
            return self.text(0) < other.text(0)
        a, b = self.data(col, Qt.ItemDataRole.UserRole), other.data(col, Qt.ItemDataRole.UserRole)
        a = math.inf if not isinstance(a, float) or math.isnan(a) else a
        b = math.inf if not isinstance(b, float) or math.isnan(b) else b
        if a == b:  # equal figures keep the session's ranking (e.g. more errors first)
            return (self.data(0, RANK_ROLE) or 0) < (other.data(0, RANK_ROLE) or 0)
        return a < b
