"""Dataset summary of the open project for the chosen task, with warnings to act on.

The counts come from the engine's `summarize` (run in a worker); a missing validation
split has a button that makes a stratified split (studio.core.splits). Train and val images
whose files changed size on disk since import (training refuses them) are a warning too,
with a button that re-reads them (studio.core.relink's refresh) and counts again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.relink import changed_images
from studio.core.splits import carve_split, random_split
from studio.gui.errors import show_error
from studio.gui.relink_ui import reread_changed

SPLIT_RATIOS = (0.7, 0.2, 0.1)
VAL_SHARE = 0.2  # of train, when every image has a split already


def pixel_count(n: float) -> str:
    """1234 -> '1.2k px', 3.4e6 -> '3.4M px'."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{unit} px"
    return f"{n:.0f} px"


def changed_warning(project):
    """A warning naming the train and val images whose files changed size on disk since
    import (read from their headers; a scan of its own, so the counts never wait for it),
    or None."""
    from studio.ml.data_summary import DataWarning

    records = [r for split in ("train", "val") for r in project.images(split=split)]
    changed = changed_images(project, records)
    if not changed:
        return None
    shown = "; ".join(c.describe() for c in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return DataWarning(
        "changed_on_disk", f"{len(changed)} image(s) changed on disk since they were "
        f"imported: {shown}{more}. Training refuses them: check their annotations (drawn "
        "on the old size), then re-read them.", "reread")


class DataPanel(QWidget):
    """Images per split, labelled or not, objects (and pixels) per class; warnings below."""

    splitsChanged = Signal()
    refreshRequested = Signal()

    def __init__(self, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.project = None
        self.summary = None
        self.changed = None  # the warning about files changed on disk, once scanned
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Images per split, how many carry labels for this task, and "
                              "objects (tags, boxes or regions) per class; for segmentation "
                              "also the labelled pixels of each class.")
        self.sizes = QLabel()
        self.reread_note = QLabel()  # what the last re-read did
        self.reread_note.setWordWrap(True)
        self.reread_note.hide()
        self.warnings_box = QVBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Count again (after labelling more images).")
        refresh.clicked.connect(self.refreshRequested)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.sizes, 1)
        row.addWidget(refresh)
        layout.addLayout(row)
        layout.addLayout(self.warnings_box)
        layout.addWidget(self.reread_note)
        self.split_button: QPushButton | None = None
        self.review_button: QPushButton | None = None
        self.reread_button: QPushButton | None = None

    def refresh(self, project, task: str) -> None:
        from studio.gui.train.backend import summarize

        if project is not self.project:
            self.reread_note.hide()
            self.changed = None
        self.project = project
        if project is None:
            self.show_summary(None)
            return
        self.workers.submit(summarize, project, task, key="data_summary",
                            on_result=self.show_summary,
                            on_error=lambda exc: show_error(self, exc))
        self.workers.submit(changed_warning, project, key="data_changed",
                            on_result=self._show_changed,
                            on_error=lambda exc: show_error(self, exc))

    def _show_changed(self, warning) -> None:
        self.changed = warning
        if self.summary is not None:
            self.show_summary(self.summary)

    def shown_warnings(self) -> list:
        """The warnings below the table: files changed on disk first, then the summary's."""
        if self.summary is None:
            return []
        return ([self.changed] if self.changed is not None else []) + self.summary.warnings

    def show_summary(self, summary) -> None:
        self.summary = summary
        while self.warnings_box.count():
            item = self.warnings_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.split_button = self.review_button = self.reread_button = None
        if summary is None:
            self.table.setRowCount(0)
            self.sizes.setText("No project is open.")
            return
        class_ids = sorted(set().union(*(set(c) for c in summary.objects.values())))
        headers = ["images", "labelled"] + [summary.class_names.get(c, str(c)) for c in class_ids]
        splits = list(summary.images)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(splits))
        self.table.setVerticalHeaderLabels(splits)
        for r, split in enumerate(splits):
            pixels = summary.pixels.get(split)
            values = [f"{summary.images[split]:,}", f"{summary.labelled[split]:,}"] + [
                f"{summary.objects[split].get(c, 0):,}" + (
                    f" \u00b7 {pixel_count(pixels[c])}" if pixels and pixels.get(c) else "")
                for c in class_ids]
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.sizes.setText(f"Image sides {summary.min_side}-{summary.max_side} px"
                           if summary.max_side else "No images yet.")
        for warning in self.shown_warnings():
            self._add_warning(warning)

    def _add_warning(self, warning) -> None:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        text = QLabel(f"\u26a0 {warning.message}")
        text.setWordWrap(True)
        text.setStyleSheet("color: #8a5a00;")
        text.setProperty("warning_code", warning.code)
        row.addWidget(text, 1)
        if warning.action == "stratified_split":
            self.split_button = QPushButton("Make a stratified split")
            self.split_button.setToolTip(
                f"Split the images {int(SPLIT_RATIOS[0] * 100)}/{int(SPLIT_RATIOS[1] * 100)}/"
                f"{int(SPLIT_RATIOS[2] * 100)} into train/val/test so every class keeps its "
                "share in each; when every image has a split, move "
                f"{int(VAL_SHARE * 100)}% of train to val instead (test is left alone).")
            self.split_button.clicked.connect(self.make_split)
            row.addWidget(self.split_button)
        elif warning.action == "mark_reviewed":
            self.review_button = QPushButton("Mark them reviewed")
            self.review_button.setToolTip(
                "Mark these images done: their model annotations become training labels as "
                "they are. Check them first if you can.")
            self.review_button.clicked.connect(self.mark_reviewed)
            row.addWidget(self.review_button)
        elif warning.action == "reread":
            self.reread_button = QPushButton("Re-read changed images")
            self.reread_button.setToolTip(
                "Record each changed file's new size and content, as `studio-cli refresh` "
                "does; check the annotations of resized images afterwards.")
            self.reread_button.clicked.connect(self.reread)
            row.addWidget(self.reread_button)
        self.warnings_box.addWidget(box)

    def warning_codes(self) -> list[str]:
        return [w.code for w in self.shown_warnings()]

    def make_split(self, _checked: bool = False, ask: bool = True) -> None:
        """Labelled images without a split are split train/val/test (unlabelled ones stay
        in 'none'); when every labelled image has one, a stratified share of train moves
        to val (test stays as it is)."""
        if self.project is None:
            return
        unassigned = len(self.project.image_ids(split="none")) - len(
            self.project.image_ids(split="none", unlabelled=True))
        if unassigned > 0:
            self.workers.submit(random_split, self.project, *SPLIT_RATIOS, seed=0,
                                stratify=True, only_unassigned=True, key="make_split",
                                on_result=lambda _counts: self.splitsChanged.emit(),
                                on_error=lambda exc: show_error(self, exc))
            return
        share = int(VAL_SHARE * 100)
        if ask and QMessageBox.question(
                self, "Make a validation split",
                f"Every image already has a split. Move {share}% of the train images to val, "
                "keeping each class's share (the test split is left as it is)?"
        ) != QMessageBox.StandardButton.Yes:
            return
        self.workers.submit(carve_split, self.project, "train", "val", VAL_SHARE, seed=0,
                            key="make_split", on_result=lambda _n: self.splitsChanged.emit(),
                            on_error=lambda exc: show_error(self, exc))

    def mark_reviewed(self, _checked: bool = False, ask: bool = True) -> None:
        """Mark the labelled train/val images waiting for review done (after asking)."""
        if self.project is None or self.summary is None:
            return
        n = sum(self.summary.pending.get(k, 0) for k in ("train", "val"))
        if ask and QMessageBox.question(
                self, "Mark reviewed", f"Mark {n} image(s) done, taking their model "
                "annotations as training labels without checking them?"
        ) != QMessageBox.StandardButton.Yes:
            return
        self.workers.submit(mark_pending_done, self.project, key="mark_reviewed",
                            on_result=lambda _n: self.splitsChanged.emit(),
                            on_error=lambda exc: show_error(self, exc))


    def reread(self, _checked: bool = False) -> None:
        """Re-read the changed images in a worker, then count again (and re-validate)."""
        if self.project is None:
            return
        if self.reread_button is not None:
            self.reread_button.setEnabled(False)

        def done(text: str) -> None:
            self.reread_note.setText(text)
            self.reread_note.show()
            self.splitsChanged.emit()  # counted again, checked again, other views refresh

        self.workers.submit(reread_changed, self.project, key="reread_images",
                            on_result=done, on_error=lambda exc: show_error(self, exc))


def mark_pending_done(project) -> int:
    """Mark the images of train and val waiting for review (with model annotations) done."""
    ids = sorted(project.pending_model_images("train") | project.pending_model_images("val"))
    if ids:
        project.set_status(ids, "done")
    return len(ids)
