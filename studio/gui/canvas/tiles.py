"""The image layer of the canvas: one pixmap for normal images, tiles for huge ones.

Images up to FULL_PIXELS are decoded once and shown as one pixmap. Bigger images go
through the tile pyramid (studio.core.tiles): a small overview is shown at once, then only
the tiles visible at the current zoom are read in a worker thread (QThreadPool); their
pixels come back through a queued signal, and a newer view request supersedes older ones.
A display window (lo, hi) maps 16-bit and dark images to 8 bits (studio.core.images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene

from studio.core.errors import StudioError
from studio.core.images import display_range, to_uint8
from studio.core.tiles import TILED_PIXELS
from studio.gui import prefetch

FULL_PIXELS = TILED_PIXELS
OVERVIEW_SIDE = 2048  # longest side of the overview shown first for huge images


def array_to_qimage(arr: np.ndarray) -> QImage:
    """A QImage copy of a uint8 HxW, HxWx3 (RGB) or HxWx4 (RGBA) array."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    elif arr.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
    elif arr.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
    else:
        raise StudioError(f"Cannot show an image with {arr.shape[2]} channels.")
    return QImage(arr.data, w, h, arr.strides[0], fmt).copy()


class ImageLayer(QObject):
    """Puts an image into a scene, at scene coordinates = image pixel-edge coordinates."""

    contentShown = Signal()  # the first pixels of the current image are in the scene
    tileFailed = Signal(str)  # a tile could not be read (message for the user)
    _tileLoaded = Signal(int, object, object)  # generation, key, uint8 array (queued)
    _jobDone = Signal(object)  # a worker job finished: drop our reference (queued)

    def __init__(self, scene: QGraphicsScene, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.tiled = False
        self.size = (0, 0)
        self.full_pixels = FULL_PIXELS  # bigger images go through the tile pyramid
        self.overview_side = OVERVIEW_SIDE
        self._path: Path | None = None
        self._raw: np.ndarray | None = None
        self._display: np.ndarray | None = None
        self._auto_window: tuple[float, float] | None = None
        self._window: tuple[float, float] | None = None
        self._full_item: QGraphicsPixmapItem | None = None
        self._tiles = None  # TiledSource for huge images
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._jobs: set[QRunnable] = set()
        self._tileLoaded.connect(self._on_tile_loaded)
        self._jobDone.connect(self._jobs.discard)

    # --- loading ----------------------------------------------------------------------------
    def clear(self) -> None:
        if self._full_item is not None:
            self.scene.removeItem(self._full_item)
            self._full_item = None
        if self._tiles is not None:
            self._tiles.close()
            self._tiles = None
        self._raw = self._display = None
        self._auto_window = self._window = None
        self.tiled = False
        self.size = (0, 0)

    def load(self, path: Path, width: int, height: int, cache_dir: Path | None = None,
             key: str | None = None) -> None:
        """Show the image file at `path` (its size as recorded in the project).

        Huge images need `cache_dir` for their tile pyramid (`key` names its cache).
        """
        self.clear()
        self._path = Path(path)
        self.size = (int(width), int(height))
        if width * height <= self.full_pixels or cache_dir is None:
            self._raw = prefetch.load(self._path)  # decoded ahead by the window, usually
            self.size = (self._raw.shape[1], self._raw.shape[0])
            if self._raw.dtype != np.uint8:
                self._auto_window = display_range(self._raw)
            self._show_full()
            self.contentShown.emit()
        else:
            from studio.gui.canvas.tile_source import TiledSource

            self.tiled = True
            self._tiles = TiledSource(self, self._path, self.size, Path(cache_dir), key)
            self._tiles.show_overview()  # contentShown follows when it arrives

    @property
    def has_content(self) -> bool:
        """True once pixels of the current image are in the scene."""
        if self._tiles is not None:
            return self._tiles.has_overview or bool(self._tiles._items)
        return self._full_item is not None

    def apply_window_u8(self, arr: np.ndarray) -> np.ndarray:
        """Tiles are uint8 display data: a window on them is a 256-entry lookup."""
        if self._window is None:
            return arr
        lo, hi = self._window
        levels = np.arange(256, dtype=np.float64)
        lut = np.clip(np.round((levels - lo) * 255.0 / max(hi - lo, 1e-6)), 0, 255)
        return lut.astype(np.uint8)[arr]

    def _current_window(self) -> tuple[float, float] | None:
        return self._window or self._auto_window

    def _show_full(self) -> None:
        win = self._current_window()
        self._display = to_uint8(self._raw, *win) if win else to_uint8(self._raw)
        ready = prefetch.get_qimage(self._path) if self._display is self._raw else None
        pixmap = QPixmap.fromImage(ready if ready is not None else array_to_qimage(self._display))
        if self._full_item is None:
            self._full_item = QGraphicsPixmapItem()
            self._full_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
            self._full_item.setZValue(-10)
            self.scene.addItem(self._full_item)
        self._full_item.setPixmap(pixmap)

    # --- display window -----------------------------------------------------------------------
    def set_window(self, lo: float | None, hi: float | None) -> None:
        self._window = None if lo is None or hi is None else (float(lo), float(hi))
        self._refresh()

    def set_brightness_contrast(self, brightness: float, contrast: float) -> None:
        lo, hi = self._auto_window or (0.0, 255.0)
        width = (hi - lo) / max(float(contrast), 1e-3)
        center = (lo + hi) / 2.0 - float(brightness) * (hi - lo) / 2.0
        self.set_window(center - width / 2.0, center + width / 2.0)

    @property
    def window(self) -> tuple[float, float] | None:
        return self._current_window()

    def _refresh(self) -> None:
        if self._raw is not None:
            self._show_full()
        elif self._tiles is not None:
            self._tiles.refresh()

    # --- pixels for tools ------------------------------------------------------------------------
    def region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Displayed uint8 pixels of (x, y, w, h) at full resolution."""
        if self._display is not None:
            return self._display[y:y + h, x:x + w]
        if self._tiles is not None:
            return self._tiles.region(x, y, w, h)
        raise StudioError("No image is shown.")

    # --- tiles --------------------------------------------------------------------------------------
    def update_view(self, rect: QRectF, scale: float) -> None:
        """The visible scene rectangle changed: fetch the tiles it needs."""
        if self._tiles is not None:
            self._tiles.update_view(rect, scale)

    def start(self, job: QRunnable) -> None:
        self._jobs.add(job)
        self._pool.start(job)

    def _on_tile_loaded(self, generation: int, key, arr) -> None:
        if self._tiles is not None:
            self._tiles.on_tile_loaded(generation, key, arr)

    def wait_idle(self, msecs: int = 10000) -> bool:
        """Wait for tile jobs in flight (tests and benchmarks)."""
        return self._pool.waitForDone(msecs)
