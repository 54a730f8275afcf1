"""The import dialog's look at a folder of images and label images: which folder holds
the images, which the labels, the first pair side by side, and whether the values are
instance ids or classes (with a button to take the other format).

The folders are read and the preview drawn in a worker (`preview_layout`); the widget
only wraps the finished pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.core.formats.instances import LabelLayout, describe_label_layout
from studio.core.formats.labelimages import read_label_image
from studio.core.images import decode_file
from studio.gui.pixels import DisplayBuffer, display_buffer, qimage_view

PREVIEW_PX = 160


def _thumbnail(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = PREVIEW_PX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_NEAREST)


def _image_rgb(path: Path) -> np.ndarray:
    arr = decode_file(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        return np.zeros((8, 8, 3), np.uint8)
    if arr.dtype != np.uint8:  # 16-bit microscopy: stretched to 8 bits for the eye
        arr = cv2.normalize(arr.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2RGB)


def _label_rgb(path: Path) -> np.ndarray:
    """Each label value in a colour of its own (0 black)."""
    label = read_label_image(path).astype(np.int64)
    rng = np.random.default_rng(7)
    colours = rng.integers(60, 256, (int(label.max()) + 1, 3), dtype=np.uint8)
    colours[0] = 0
    return colours[label]


def preview_layout(source: Path, images_dir: Path | None
                   ) -> tuple[LabelLayout | None, DisplayBuffer | None, DisplayBuffer | None]:
    """(layout, image pixels, label pixels) of the first pair (worker side)."""
    layout = describe_label_layout(source, images_dir)
    if layout is None or layout.first is None:
        return layout, None, None
    image, label = layout.first
    return (layout, display_buffer(_thumbnail(_image_rgb(image))),
            display_buffer(_thumbnail(_label_rgb(label))))


def layout_text(layout: LabelLayout | None) -> str:
    if layout is None:
        return ("No images and label images that pair by name were found there: give the "
                "label folder as the source and the image folder as Images.")
    kind = ("instance ids (objects numbered 1..N in each image)" if layout.instance_ids
            else "class values")
    return (f"Images: {layout.image_dir.name}/   Labels: {layout.label_dir.name}/   "
            f"({layout.pairs} pairs; {layout.why}). The values look like {kind}.")


class LayoutPreview(QWidget):
    """A "Look at the folders" button, the layout found and the first pair."""

    format_chosen = Signal(str)  # "instances" or "masks", when the person takes the hint

    def __init__(self, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.look = QPushButton("Look at the folders")
        self.look.setToolTip("Find the image and label folders, show the first pair and "
                             "say whether the labels are instance ids or classes")
        self.look.setEnabled(workers is not None)
        self.info = QLabel(wordWrap=True)
        self.image, self.label = QLabel(), QLabel()
        self.switch = QPushButton()
        self.switch.hide()
        self.switch.clicked.connect(lambda: self.format_chosen.emit(self._suggested))
        for button in (self.look, self.switch):  # Return in the dialog still means OK
            button.setAutoDefault(False)
        self._suggested = ""
        self._buffers: tuple = ()  # the pixmaps' memory
        pair = QHBoxLayout()
        pair.addWidget(self.image)
        pair.addWidget(self.label)
        pair.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.look)
        row.addWidget(self.switch)
        row.addStretch(1)
        box.addLayout(row)
        box.addWidget(self.info)
        box.addLayout(pair)

    def request(self, source: Path, images_dir: Path | None, current_format: str) -> None:
        self._current = current_format
        self.look.setEnabled(False)
        self.workers.submit(preview_layout, source, images_dir, key="import-preview",
                            on_result=self._show, on_error=self._show_error,
                            on_finished=lambda: self.look.setEnabled(True))

    def _show(self, found) -> None:
        layout, image, label = found
        self.info.setText(layout_text(layout))
        self._buffers = (image, label)
        for widget, buffer in ((self.image, image), (self.label, label)):
            widget.setPixmap(QPixmap.fromImage(qimage_view(buffer)) if buffer else QPixmap())
        self._suggested = ""
        if layout is not None:
            wanted = "instances" if layout.instance_ids else "masks"
            if wanted != self._current:
                self._suggested = wanted
                self.switch.setText("Import as instances" if wanted == "instances"
                                    else "Import as classes (masks)")
        self.switch.setVisible(bool(self._suggested))

    def _show_error(self, exc: BaseException) -> None:
        self.info.setText(str(exc))
        self.switch.hide()
