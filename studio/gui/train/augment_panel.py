"""Augmentation options from the engine's spec, presets, and a live 3 x 3 preview.

Every op of `parameter_kinds()` gets a checkable group (on/off) with its probability and
parameters. The preview draws augmented copies of one image (masks blended in their class
colours, or the class name for classification) in a worker: a change schedules a new
request after a short pause, the newest request wins and nothing waits on the GUI thread.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pixels import display_buffer, qimage_view
from studio.gui.train.form import ConfigForm, FieldGroup
from studio.gui.train.tips import AUGMENT_GENERAL, tip

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
        if task == "semantic":
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
        self.image_id = QSpinBox()
        self.image_id.setRange(0, 2**31 - 1)
        self.image_id.setToolTip("Id of the image previewed (the Label workspace's image "
                                 "when the Train workspace opens).")
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
        bar.addWidget(QLabel("Image id"))
        bar.addWidget(self.image_id)
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
        self.image_id.valueChanged.connect(lambda _v: self.schedule_preview())
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
        return taken

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
        self.project = project
        if project is not None and image_id is None:
            ids = project.image_ids()
            image_id = ids[0] if ids else None
        if image_id is not None:
            self.image_id.blockSignals(True)
            self.image_id.setValue(int(image_id))
            self.image_id.blockSignals(False)
        self.schedule_preview()

    def schedule_preview(self) -> None:
        self.debounce.start()

    def request_preview(self) -> None:
        if self.project is None or self.config_source is None:
            return
        cfg = self.config_source()
        task = cfg.get("task", "classification")
        classes = self.project.classes()
        self.status.setText("Drawing...")
        size = cfg.get("image_size")
        self.workers.submit(
            _preview_job, cfg.get("augment"), self.project, int(self.image_id.value()),
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
