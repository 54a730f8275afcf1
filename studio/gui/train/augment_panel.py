"""Augmentation options from the engine's spec, presets, and a live 3 x 3 preview.

Every op of `parameter_kinds()` gets a checkable group (on/off) with its probability and
parameters. The preview draws augmented copies of one image (masks blended in their class
colours, or the class name for classification) in a worker: a change schedules a new
request after a short pause, the newest request wins and nothing waits on the GUI thread.
The image is picked by name among those labelled for the task (an unlabelled image would
show no masks); it starts on the Label workspace's image when that one is labelled.
The ops the task's training refuses (detection and instance segmentation:
`DETECTION_UNSUPPORTED_AUGMENT`, which would not move boxes and masks with the image) are
hidden; their fields stay in the form, off, so the config still reads back whole.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pixels import display_buffer, qimage_view
from studio.gui.train.form import ConfigForm, FieldGroup
from studio.gui.train.tips import AUGMENT_GENERAL, tip
from studio.ml.config import DETECTION_UNSUPPORTED_AUGMENT
from studio.ml.tasks import task_of

GRID = 3
TILE = 150
DEBOUNCE_MS = 150


PREFIX = "augment."


def _op(path: str) -> str | None:
    """The augmentation op a config path belongs to ("augment.rotation.p" -> "rotation")."""
    parts = path.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "augment" else None


def render_previews(samples, colours: list[tuple[int, int, int]], names: list[str],
                    task: str) -> list[tuple[np.ndarray, str]]:
    """RGB tiles with the label map blended in (semantic) and a caption (worker side)."""
    out = []
    for image, target in samples:
        rgb = image.astype(np.float32)
        caption = ""
        if task_of(task).label_map:
            for index, colour in enumerate(colours):
                mask = target == index
                if mask.any():
                    rgb[mask] = 0.55 * rgb[mask] + 0.45 * np.asarray(colour, np.float32)
            ignored = target == 255
            rgb[ignored] *= 0.8
        else:
            caption = names[target] if 0 <= int(target) < len(names) else "(no tag)"
        out.append((np.ascontiguousarray(rgb.clip(0, 255).astype(np.uint8)), caption))
    return out


def _preview_job(token, spec, project, image_id, seed, task, image_size, class_ids, colours,
                 names):
    from studio.gui.train.backend import augment_preview

    token.check()
    samples = augment_preview.preview(spec, project, image_id, GRID * GRID, seed, task=task,
                                      class_ids=class_ids, image_size=image_size)
    token.check()
    return [(display_buffer(_fit_tile(rgb)), caption, rgb.shape[1], rgb.shape[0])
            for rgb, caption in render_previews(samples, colours, names, task)]


def _choices_job(project, task: str):
    from studio.gui.train.backend import augment_preview

    return augment_preview.preview_choices(project, task)


def _fit_tile(rgb: np.ndarray) -> np.ndarray:
    """The sample shrunk to fit a preview tile (here, in the worker: a 1024-px sample
    scaled on the GUI thread would hold it up)."""
    h, w = rgb.shape[:2]
    f = TILE / max(h, w)
    if f >= 1:
        return rgb
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class AugmentPanel(QWidget):
    """Options (bound to `form`) on the left, preview grid on the right."""

    previewShown = Signal()

    def __init__(self, form: ConfigForm, workers, parent: QWidget | None = None) -> None:
        from studio.gui.train.backend import PRESETS

        super().__init__(parent)
        self.form, self.workers = form, workers
        self.project = None
        self.config_source = None  # callable returning the current config
        self.seed = 0
        self.previews_done = 0
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.setToolTip("Fill every option from a preset: none, light, heavy, or the "
                               "one recommended for the task. " + AUGMENT_GENERAL)
        self.apply_preset_button = QPushButton("Apply preset")
        self.apply_preset_button.setToolTip(self.preset.toolTip())
        options = QWidget()
        self.column = QVBoxLayout(options)
        self.column.addStretch(1)
        self.groups: dict[str, FieldGroup] = {}  # op -> its box, made as the fields come
        self.hidden_ops: frozenset[str] = frozenset()  # ops the task refuses (set_task)
        form.add_placer(self._place)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(options)
        scroll.setMinimumWidth(300)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.preset)
        top.addWidget(self.apply_preset_button)
        top.addStretch(1)
        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(scroll, 1)
        # preview
        self.image_choice = QComboBox()
        self.image_choice.setEditable(True)  # type a part of a name to find the image
        self.image_choice.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.image_choice.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        self.image_choice.completer().setCompletionMode(
            QCompleter.CompletionMode.PopupCompletion)
        self.image_choice.setMinimumContentsLength(14)
        self.image_choice.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.image_choice.setToolTip("The image previewed, by name: those with labels for "
                                     "the task (type a part of a name to find one). It "
                                     "starts on the Label workspace's image when that one "
                                     "is labelled.")
        self._wanted: int | None = None  # the image to start on, once the list is in
        self._choices_task: str | None = None  # the task the list was made for
        self.reshuffle = QPushButton("Reshuffle")
        self.reshuffle.setToolTip("Draw new random augmentations of the same image.")
        self.status = QLabel()
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        grid.setSpacing(4)
        self.tiles: list[QLabel] = []
        for i in range(GRID * GRID):
            tile = QLabel()
            tile.setFixedSize(TILE, TILE + 16)
            tile.setAlignment(Qt.AlignmentFlag.AlignCenter)
            tile.setStyleSheet("background: #222; color: white;")
            grid.addWidget(tile, i // GRID, i % GRID)
            self.tiles.append(tile)
        right = QVBoxLayout()
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Image"))
        bar.addWidget(self.image_choice, 1)
        bar.addWidget(self.reshuffle)
        bar.addStretch(1)
        right.addLayout(bar)
        right.addWidget(grid_widget)
        right.addWidget(self.status)
        right.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right)
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self.request_preview)
        self.apply_preset_button.clicked.connect(lambda: self.apply_preset(self.preset.currentText()))
        self.reshuffle.clicked.connect(self._on_reshuffle)
        self.image_choice.currentIndexChanged.connect(lambda _i: self.schedule_preview())
        form.changed.connect(self._on_form_changed)

    def _place(self, fields) -> list[str]:
        """One box per op of the engine's fields ("on" and its probability first)."""
        ops: dict[str, list] = {}
        for field in fields:
            op = _op(field.path)
            if op is not None:
                ops.setdefault(op, []).append(field)
        for op, box in self.groups.items():
            if op not in ops:
                box.take([])
        taken = []
        for op, op_fields in ops.items():
            box = self.groups.get(op)
            if box is None:
                box = self.groups[op] = FieldGroup(op.replace("_", " "))
                box.setToolTip(tip(f"{PREFIX}{op}"))
                self.column.insertWidget(self.column.count() - 1, box)
            for field in op_fields:
                if field.path.endswith(".enabled"):
                    field.label.setText("on")
            taken += box.take(op_fields, everything=True)
        self._show_ops()
        return taken

    def set_task(self, task: str) -> None:
        """Hide the ops `task`'s training refuses (the engine's list for the tasks whose
        models take boxes and masks); the others show."""
        refused = DETECTION_UNSUPPORTED_AUGMENT if task_of(task).is_detection else ()
        self.hidden_ops = frozenset(refused)
        self._show_ops()

    def _show_ops(self) -> None:
        for op, box in self.groups.items():
            box.setVisible(bool(box.paths) and op not in self.hidden_ops)

    def apply_preset(self, name: str) -> None:
        """Fill every augmentation option from the engine's preset `name`."""
        from studio.gui.train.backend import preset_spec

        task = self.config_source()["task"] if self.config_source else "classification"
        self.form.update({"augment": preset_spec(name, task)})
        self.form.changed.emit("augment")

    def _on_form_changed(self, path: str) -> None:
        if path.startswith("augment.") or path in ("image_size", "resize_policy", "task"):
            self.schedule_preview()

    def _on_reshuffle(self) -> None:
        self.seed += 1
        self.request_preview()

    def set_project(self, project, image_id: int | None) -> None:
        """Preview `project`'s images, starting on `image_id` when it is labelled."""
        self.project = project
        self._wanted = image_id
        self.load_choices()

    def _task(self) -> str:
        return self.config_source().get("task", "classification") if self.config_source \
            else "classification"

    def load_choices(self) -> None:
        """List the images to preview for the current task (in a worker)."""
        if self.project is None:
            self.image_choice.clear()
            self._choices_task = None
            return
        self._choices_task = self._task()
        self.workers.submit(_choices_job, self.project, self._choices_task,
                            key="augment_choices", on_result=self._fill_choices,
                            on_error=lambda exc: self.status.setText(f"No preview: {exc}"))

    def _fill_choices(self, found) -> None:
        choices, labelled = found
        wanted = self._wanted if self._wanted is not None else self.current_image_id()
        self._wanted = None
        box = self.image_choice
        box.blockSignals(True)
        box.clear()
        for image_id, name in choices:
            box.addItem(name, image_id)
        at = box.findData(wanted) if wanted is not None else -1
        box.setCurrentIndex(at if at >= 0 else 0 if choices else -1)
        box.blockSignals(False)
        if choices and not labelled:
            self.status.setText(f"No image has labels for {self._choices_task} yet: the "
                                "previews show none.")
        self.schedule_preview()

    def current_image_id(self) -> int | None:
        value = self.image_choice.currentData()
        return int(value) if value is not None else None

    def select_image(self, name: str) -> bool:
        """Preview the image called `name` (as listed); False when it is not listed."""
        at = self.image_choice.findText(name)
        if at >= 0:
            self.image_choice.setCurrentIndex(at)
        return at >= 0

    def schedule_preview(self) -> None:
        self.debounce.start()

    def request_preview(self) -> None:
        if self.project is None or self.config_source is None:
            return
        cfg = self.config_source()
        task = cfg.get("task", "classification")
        if task != self._choices_task:  # another task labels other images
            self.load_choices()
            return
        image_id = self.current_image_id()
        if image_id is None:
            return
        classes = self.project.classes()
        self.status.setText("Drawing...")
        size = cfg.get("image_size")
        self.workers.submit(
            _preview_job, cfg.get("augment"), self.project, image_id,
            self.seed, task, size if isinstance(size, int) and 8 <= size <= 1024 else None,
            [c.id for c in classes], [_rgb(c.color) for c in classes], [c.name for c in classes],
            with_token=True, key="augment_preview", on_result=self._show,
            on_error=lambda exc: self.status.setText(f"No preview: {exc}"))

    def _show(self, tiles: list[tuple]) -> None:
        """(display buffer of the tile, caption, sample width, height) per sample."""
        for label, (buffer, caption, w, h) in zip(self.tiles, tiles, strict=False):
            pixmap = QPixmap.fromImage(qimage_view(buffer))  # the pixmap copies the pixels
            label.setPixmap(pixmap)
            label.setToolTip(caption or f"{w} x {h}")
            if caption:
                label.setText("")
                label.setPixmap(_captioned(pixmap, caption))
        self.previews_done += 1
        self.status.setText(f"Seed {self.seed}: {len(tiles)} augmented samples "
                            f"(masks in class colours, grey = unlabelled).")
        self.previewShown.emit()


def _rgb(colour: str) -> tuple[int, int, int]:
    c = QColor(colour)
    return (c.red(), c.green(), c.blue()) if c.isValid() else (255, 0, 0)


def _captioned(pixmap: QPixmap, caption: str) -> QPixmap:
    from PySide6.QtGui import QPainter

    out = QPixmap(pixmap.width(), pixmap.height() + 16)
    out.fill(QColor("#222"))
    painter = QPainter(out)
    painter.drawPixmap(0, 0, pixmap)
    painter.setPen(QColor("white"))
    painter.drawText(0, pixmap.height(), pixmap.width(), 16, Qt.AlignmentFlag.AlignCenter, caption)
    painter.end()
    return out
