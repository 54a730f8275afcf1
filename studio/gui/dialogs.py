"""Dialogs of the labelling window: new project, import, export, split, class deletion,
brightness/contrast and the keyboard cheat sheet. They collect choices; the main window
does the work (in a worker where it is long)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import FormatError, ImageError
from studio.core.formats import FORMATS
from studio.gui.import_preview import LayoutPreview

FORMAT_HINTS = {
    "coco": "COCO JSON file (boxes, polygons, RLE masks)",
    "voc": "Pascal VOC folder (Annotations/*.xml, JPEGImages)",
    "yolo": "YOLO folder or data.yaml (txt labels)",
    "labelme": "Folder of labelme JSON files",
    "masks": "Folder of label masks (one PNG per image)",
    "instances": "Instance masks: per-object masks, or label images (one id per object)",
    "folders": "Class folders: one sub-folder per class",
}


def _path_row(edit: QLineEdit, *buttons: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    for b in buttons:
        layout.addWidget(b)
    return row


def _ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                           | QDialogButtonBox.StandardButton.Cancel)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


class NewProjectDialog(QDialog):
    """Choose a folder (created if needed) and a name for a new project."""

    def __init__(self, parent: QWidget | None = None, start_dir: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.setMinimumWidth(560)  # a whole folder path shows
        self.folder = QLineEdit(start_dir, placeholderText="Folder for the new project")
        self.name = QLineEdit(placeholderText="Name (defaults to the folder name)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        form = QFormLayout(self)
        form.addRow("Folder:", _path_row(self.folder, browse))
        form.addRow("Name:", self.name)
        form.addRow(_ok_cancel(self))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def values(self) -> tuple[Path, str | None]:
        return Path(self.folder.text().strip()), (self.name.text().strip() or None)


class ImportDialog(QDialog):
    """Format, source (file or folder), an optional images folder and, for masks, the
    names of the classes by mask value (read from the masks in a worker when asked)."""

    def __init__(self, parent: QWidget | None = None, fmt: str = "coco",
                 workers=None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.setWindowTitle("Import dataset")
        self.setMinimumWidth(640)  # a whole folder path shows
        self.format = QComboBox()
        for name in FORMATS:
            self.format.addItem(f"{name} - {FORMAT_HINTS.get(name, '')}", name)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        self.source = QLineEdit(placeholderText="Annotation file or dataset folder")
        self.images = QLineEdit(placeholderText="Optional: where the images are")
        file_button, folder_button, images_button = (QPushButton("File..."),
                                                     QPushButton("Folder..."),
                                                     QPushButton("Folder..."))
        file_button.clicked.connect(self._browse_file)
        folder_button.clicked.connect(lambda: self._browse_dir(self.source))
        images_button.clicked.connect(lambda: self._browse_dir(self.images))
        self.class_names = QLineEdit(placeholderText="e.g. 0=membrane, 255=cell")
        self.class_names.setToolTip(
            "Name the classes by mask value: value=name, separated by commas. Empty: the "
            "names of a classes.txt beside the masks, else background/foreground for 0/255 "
            "masks, else class_<value>.")
        self.class_names_label = QLabel("Class names:")
        self.read_values = QPushButton("Read values")
        self.read_values.setToolTip("Read the masks' values and fill in their names to edit")
        self.read_values.clicked.connect(self._read_values)
        self.read_values.setEnabled(workers is not None)
        self.values_info = QLabel()
        self.values_info.hide()
        self.error = QLabel()
        self.error.setStyleSheet("color: #c02020")
        self.error.hide()
        form = QFormLayout(self)
        form.addRow("Format:", self.format)
        form.addRow("Source:", _path_row(self.source, file_button, folder_button))
        form.addRow("Images:", _path_row(self.images, images_button))
        self.class_names_row = _path_row(self.class_names, self.read_values)
        form.addRow(self.class_names_label, self.class_names_row)
        form.addRow(self.values_info)
        self.preview = LayoutPreview(workers)  # label images: which folders, first pair
        self.preview.look.clicked.connect(self._look)
        self.preview.format_chosen.connect(
            lambda name: self.format.setCurrentIndex(self.format.findData(name)))
        form.addRow(self.preview)
        form.addRow(QLabel("The whole import lands in one step: if it fails, nothing changes."))
        form.addRow(self.error)
        form.addRow(_ok_cancel(self))
        self.format.currentIndexChanged.connect(self._on_format)
        self._on_format()

    def _on_format(self) -> None:
        masks = self.format.currentData() == "masks"  # the formats whose values need names
        self.class_names_row.setVisible(masks)
        self.class_names_label.setVisible(masks)
        self.values_info.setVisible(masks and bool(self.values_info.text()))
        self.preview.setVisible(self.format.currentData() in ("masks", "instances"))
        self.preview.switch.hide()

    def _look(self) -> None:
        images = self.images.text().strip()
        self.preview.request(Path(self.source.text().strip()), Path(images) if images else None,
                             self.format.currentData())

    def _read_values(self) -> None:
        self.read_values.setEnabled(False)
        self.error.hide()
        self.workers.submit(mask_values, Path(self.source.text().strip()), key="mask-values",
                            on_result=self._show_values, on_error=self._show_values_error,
                            on_finished=lambda: self.read_values.setEnabled(True))

    def _show_values(self, found: tuple[list[int], int, dict[int, str]]) -> None:
        values, read, names = found
        if len(values) > MAX_NAMED_VALUES:
            self.values_info.setText(f"{len(values)} different values in {read} mask(s): "
                                     "compressed (JPEG) masks or instance ids, not classes; "
                                     "the import report says what it makes of them.")
        else:
            self.values_info.setText(f"Values in {read} mask(s): "
                                     f"{', '.join(map(str, values)) or 'none'}. Edit the names.")
            self.class_names.setText(suggested_names(values, names))
        self.values_info.show()

    def _show_values_error(self, exc: BaseException) -> None:
        self.error.setText(str(exc))
        self.error.show()

    def accept(self) -> None:
        try:
            self.options()
        except ValueError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        super().accept()

    def options(self) -> dict:
        """The importer's keyword options: `classes` (mask value -> name) for masks."""
        if self.format.currentData() != "masks":
            return {}
        names = parse_class_names(self.class_names.text())
        return {"classes": names} if names else {}

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Annotation file", self.source.text(),
                                              "Annotations (*.json *.yaml *.yml *.xml *.txt);;"
                                              "All files (*)")
        if path:
            self.source.setText(path)

    def _browse_dir(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder", edit.text())
        if folder:
            edit.setText(folder)

    def values(self) -> tuple[str, Path, Path | None, dict]:
        """Format, source, images folder (or None) and the importer's options."""
        images = self.images.text().strip()
        return (self.format.currentData(), Path(self.source.text().strip()),
                Path(images) if images else None, self.options())


MASK_VALUE_SAMPLE = 200  # masks read for their values (the import itself reads them all)
MAX_NAMED_VALUES = 32  # more values than this are not classes to name one by one


def mask_values(source: Path, limit: int = MASK_VALUE_SAMPLE
                ) -> tuple[list[int], int, dict[int, str]]:
    """The values in (up to `limit` of) the masks of a masks dataset folder, how many masks
    were read, and the names a classes file beside them gives (value -> name)."""
    from studio.core.formats import masks as fmt

    if not source.is_dir():
        raise FormatError(f"{source} is not a folder: choose the dataset folder (the one "
                          "holding images/ and masks/) as the source.")
    mask_dir = fmt.find_subfolder(source, fmt.MASK_DIRS)
    if mask_dir is None:
        raise FormatError(f"No masks folder in {source}: expected masks/ (or labels/).")
    values: set[int] = set()
    read = 0
    for path in fmt.image_files(mask_dir)[:limit]:
        try:
            arr = fmt.read_label_image(path)
        except ImageError:
            continue  # the import reports it
        values.update(int(v) for v in np.unique(arr))
        read += 1
    names: dict[int, str] = {}
    for fname in fmt.CLASS_FILES:
        if (source / fname).is_file():
            names = fmt.parse_class_names((source / fname).read_text(encoding="utf-8"))
            break
    return sorted(values), read, names


def suggested_names(values: list[int], names: dict[int, str]) -> str:
    """'value=name, ...' for the values found, as the import would name them (255 is
    'not labelled' unless the masks are 0/255 or a classes file names it)."""
    if not names and set(values) <= {0, 255} and 255 in values:
        names = {0: "background", 255: "foreground"}
    shown = [v for v in values if v != 255 or v in names]
    return ", ".join(f"{v}={names.get(v, f'class_{v}')}" for v in shown)


def parse_class_names(text: str) -> dict[int, str]:
    """'0=membrane, 255=cell' -> {0: 'membrane', 255: 'cell'} (ValueError says what is
    wrong); an empty text gives {}."""
    names: dict[int, str] = {}
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        value, sep, name = part.partition("=")
        value, name = value.strip(), name.strip()
        if not sep or not value.isdigit() or not name:
            raise ValueError(f"Class names: {part!r} is not value=name (e.g. 0=membrane).")
        if int(value) > 65535:
            raise ValueError(f"Class names: {value} is not a mask value (0 to 65535).")
        if int(value) in names:
            raise ValueError(f"Class names: the value {value} is named twice.")
        names[int(value)] = name
    return names


class ExportDialog(QDialog):
    """Format, output folder and which split to export."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export dataset")
        self.setMinimumWidth(560)  # a whole folder path shows
        self.format = QComboBox()
        for name in FORMATS:
            self.format.addItem(name, name)
        self.out_dir = QLineEdit(placeholderText="Output folder")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.split = QComboBox()
        for label, value in (("all images", None), ("train", "train"), ("val", "val"),
                             ("test", "test"), ("no split", "none")):
            self.split.addItem(label, value)
        form = QFormLayout(self)
        form.addRow("Format:", self.format)
        form.addRow("Output:", _path_row(self.out_dir, browse))
        form.addRow("Split:", self.split)
        form.addRow(_ok_cancel(self))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def values(self) -> tuple[str, Path, str | None]:
        return self.format.currentData(), Path(self.out_dir.text().strip()), self.split.currentData()


class SplitDialog(QDialog):
    """Ratios, seed and options of a random train/val/test split."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Random split")
        self.ratios = {}
        form = QFormLayout(self)
        for name, value in (("train", 70.0), ("val", 20.0), ("test", 10.0)):
            spin = QDoubleSpinBox(minimum=0.0, maximum=100.0, value=value, suffix=" %")
            self.ratios[name] = spin
            form.addRow(f"{name}:", spin)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.stratify = QCheckBox("Keep class proportions (stratify)", checked=True)
        self.only_unassigned = QCheckBox("Only images without a split", checked=False)
        form.addRow("Seed:", self.seed)
        form.addRow(self.stratify)
        form.addRow(self.only_unassigned)
        form.addRow(_ok_cancel(self))

    def values(self) -> dict:
        return dict(train=self.ratios["train"].value(), val=self.ratios["val"].value(),
                    test=self.ratios["test"].value(), seed=self.seed.value(),
                    stratify=self.stratify.isChecked(),
                    only_unassigned=self.only_unassigned.isChecked())


class DeleteClassDialog(QDialog):
    """Delete a class: remove its objects, or move them to another class."""

    def __init__(self, parent: QWidget | None, name: str, n_objects: int,
                 others: list[tuple[int, str]]) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Delete class {name}")
        self.delete_radio = QRadioButton(f"Delete its {n_objects} object(s)")
        self.move_radio = QRadioButton("Move them to:")
        self.target = QComboBox()
        for cid, other in others:
            self.target.addItem(other, cid)
        group = QButtonGroup(self)
        group.addButton(self.delete_radio)
        group.addButton(self.move_radio)
        self.move_radio.setEnabled(bool(others))
        (self.move_radio if others else self.delete_radio).setChecked(True)
        self.move_radio.toggled.connect(self.target.setEnabled)
        self.target.setEnabled(self.move_radio.isChecked())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"The class <b>{name}</b> has {n_objects} object(s)."))
        layout.addWidget(self.delete_radio)
        row = QHBoxLayout()
        row.addWidget(self.move_radio)
        row.addWidget(self.target, 1)
        layout.addLayout(row)
        layout.addWidget(QLabel("This cannot be undone."))
        layout.addWidget(_ok_cancel(self))

    def move_to(self) -> int | None:
        return self.target.currentData() if self.move_radio.isChecked() else None


def ask_delete_class(parent: QWidget | None, project, class_id: int) -> tuple[bool, int | None]:
    """Ask how to delete a class. Returns (confirmed, move_to) where move_to None deletes
    the class's objects."""
    record = project.class_record(class_id)
    n = int(project.counts()["annotations"]["by_class"].get(record.name, 0))
    if n == 0:
        box = QMessageBox(QMessageBox.Icon.Question, "Delete class",
                          f"Delete the class {record.name}? It has no objects.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
        return box.exec() == QMessageBox.StandardButton.Yes, None
    others = [(c.id, c.name) for c in project.classes() if c.id != class_id]
    dialog = DeleteClassDialog(parent, record.name, n, others)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return False, None
    return True, dialog.move_to()


class BrightnessContrastDialog(QDialog):
    """Display brightness (-100..100) and contrast (10..400 %); the data is not changed."""

    changed = Signal(float, float)  # brightness in [-1, 1], contrast factor (> 0)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Brightness / contrast")
        self.brightness = QSlider(Qt.Orientation.Horizontal, minimum=-100, maximum=100, value=0)
        self.contrast = QSlider(Qt.Orientation.Horizontal, minimum=10, maximum=400, value=100)
        reset = QPushButton("Reset")
        reset.clicked.connect(self.reset)
        form = QFormLayout(self)
        form.addRow("Brightness:", self.brightness)
        form.addRow("Contrast:", self.contrast)
        form.addRow(reset)
        self.brightness.valueChanged.connect(self._on_changed)
        self.contrast.valueChanged.connect(self._on_changed)

    def reset(self) -> None:
        self.brightness.setValue(0)
        self.contrast.setValue(100)

    def _on_changed(self) -> None:
        self.changed.emit(self.brightness.value() / 100.0, self.contrast.value() / 100.0)


class CheatSheetDialog(QDialog):
    """Every keyboard shortcut: the window's actions and the canvas's own keys."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 620)
        self.filter = QLineEdit(placeholderText="Filter", clearButtonEnabled=True)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Keys", "Action", "Where"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (keys, text, group) in enumerate(rows):
            for c, value in enumerate((keys, text, group)):
                self.table.setItem(r, c, QTableWidgetItem(value))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addWidget(close)
        self.filter.textChanged.connect(self._apply_filter)

    def _apply_filter(self, text: str) -> None:
        text = text.lower()
        for r in range(self.table.rowCount()):
            cells = " ".join(self.table.item(r, c).text().lower() for c in range(3))
            self.table.setRowHidden(r, bool(text) and text not in cells)


def show_report(parent: QWidget | None, title: str, summary: str, details: str = "") -> None:
    """An information box with a summary and (optionally) the full list of details."""
    box = QMessageBox(QMessageBox.Icon.Information, title, summary,
                      QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def show_import_report(parent: QWidget | None, report) -> None:
    """Summary of an ImportReport; skipped items and warnings in the details."""
    details = "\n".join([*(f"{i}: {r}" for i, r in report.skipped), *report.warnings])
    show_report(parent, "Import finished", report.summary(), details)


def show_export_report(parent: QWidget | None, report) -> None:
    text = (f"Exported {report.images} image(s) and {report.annotations} object(s) to "
            f"{report.out_dir}.")
    if report.skipped:
        text += f" Skipped {len(report.skipped)}."
    show_report(parent, "Export finished", text,
                "\n".join(f"{i}: {r}" for i, r in report.skipped))
