"""The image layer of the canvas: one pixmap for normal images, tiles for huge ones.

Images up to FULL_PIXELS are decoded once and shown as one pixmap. Bigger images go
through the tile pyramid (studio.core.tiles, see tile_source): a small overview is shown
at once, then only the tiles visible at the current zoom are read on the layer's
WorkerPool, and a newer view request supersedes older ones.

A display window (lo, hi) maps 16-bit and dark images to 8 bits (studio.core.images).
Changing it (the brightness/contrast sliders) maps at once only what is visible, at
screen resolution, and re-maps the whole image in the worker (newest request wins); the
preview is replaced when the full mapping lands. `region()` may be called from worker
threads (the canvas assists read their pixels there).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene

from studio.core.errors import ActionError
from studio.core.images import display_range, load_image, to_uint8
from studio.core.tiles import TILED_PIXELS
from studio.gui.canvas.tile_source import TiledSource, array_to_qimage
from studio.gui.pixels import DisplayBuffer, display_buffer, qimage_view
from studio.gui.workers import CancelToken, WorkerPool

FULL_PIXELS = TILED_PIXELS
OVERVIEW_SIDE = 2048  # longest side of the overview shown first for huge images
PREVIEW_PIXELS = 1 << 20  # at most this many pixels are re-mapped on the GUI thread


def map_window(raw: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """uint8 display pixels of `raw` under a display window (None: the full range).

    8-bit images go through OpenCV's lookup, which lets other threads run meanwhile (a
    NumPy lookup over a whole big image would hold the interpreter, and the GUI, for
    its full duration)."""
    if window and raw.dtype == np.uint8 and (raw.ndim == 2 or raw.shape[2] in (1, 3)):
        lo, hi = window
        levels = np.arange(256, dtype=np.float64)
        lut = np.clip(np.round((levels - lo) * 255.0 / max(hi - lo, 1e-12)), 0, 255)
        return cv2.LUT(raw, lut.astype(np.uint8))
    return to_uint8(raw, *window) if window else to_uint8(raw)


def _map_full(token: CancelToken, raw: np.ndarray, window) -> tuple[np.ndarray, object]:
    """Worker: the whole image mapped, and its display pixels."""
    display = map_window(raw, window)
    token.check()
    return display, display_buffer(display)


class ImageLayer(QObject):
    """Puts an image into a scene, at scene coordinates = image pixel-edge coordinates."""

    contentShown = Signal()  # the first pixels of the current image are in the scene
    tileFailed = Signal(str)  # a tile could not be read (message for the user)
    windowApplied = Signal()  # the whole image shows the current display window

    def __init__(self, scene: QGraphicsScene, parent: QObject | None = None,
                 prefetcher=None) -> None:
        super().__init__(parent)
        self.prefetcher = prefetcher  # decoded images ready ahead (the window's), or None
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
        self._full_pixels: DisplayBuffer | None = None  # memory the full pixmap may share
        self._preview_item: QGraphicsPixmapItem | None = None
        self._tiles: TiledSource | None = None  # huge images
        self.view_rect = lambda: None  # set by the view: visible (QRectF, scale) or None
        self.workers = WorkerPool(2, self, name="canvas")

    # --- loading ----------------------------------------------------------------------------
    def clear(self) -> None:
        for item in (self._full_item, self._preview_item):
            if item is not None:
                self.scene.removeItem(item)
        self._full_item = self._preview_item = None
        self._full_pixels = None
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
            # decoded ahead by the window, usually
            self._raw = (self.prefetcher.load(self._path) if self.prefetcher is not None
                         else load_image(self._path))
            self.size = (self._raw.shape[1], self._raw.shape[0])
            if self._raw.dtype != np.uint8:
                self._auto_window = display_range(self._raw)
            self._show_full()
            self.contentShown.emit()
        else:
            self.tiled = True
            self._tiles = TiledSource(self, self._path, self.size, Path(cache_dir), key)
            self._tiles.show_overview()  # contentShown follows when it arrives

    @property
    def has_content(self) -> bool:
        """True once pixels of the current image are in the scene."""
        if self._tiles is not None:
            return self._tiles.has_overview or bool(self._tiles.shown_tiles())
        return self._full_item is not None

    def shown_tile_levels(self) -> set[int]:
        """Pyramid levels of the detail tiles in the scene (empty: overview or one pixmap)."""
        return {key[0] for key in self._tiles.shown_tiles()} if self._tiles is not None else set()

    @property
    def idle(self) -> bool:
        """Nothing is being read or mapped for the current image."""
        return not self.workers.busy

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
        self._display = map_window(self._raw, self._current_window())
        ready = (self.prefetcher.get_display(self._path)
                 if self._display is self._raw and self.prefetcher is not None else None)
        if ready is not None:
            self._set_full_pixmap(QPixmap.fromImage(qimage_view(ready)), ready)
        else:
            self._set_full_pixmap(QPixmap.fromImage(array_to_qimage(self._display)))

    def _set_full_pixmap(self, pixmap: QPixmap, pixels: DisplayBuffer | None = None) -> None:
        self._full_pixels = pixels
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
            self._show_preview()
            raw, window = self._raw, self._current_window()
            self.workers.submit(_map_full, raw, window, with_token=True, key="window",
                                on_result=lambda out: self._on_mapped(raw, out))
        elif self._tiles is not None:
            self._tiles.refresh()
            self.windowApplied.emit()

    def _show_preview(self) -> None:
        """Map only the visible part, at about screen resolution, on the GUI thread."""
        visible = self.view_rect()
        h, w = self._raw.shape[:2]
        if visible is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            rect = visible[0]
            x0, y0 = max(0, int(rect.left())), max(0, int(rect.top()))
            x1, y1 = min(w, int(np.ceil(rect.right()))), min(h, int(np.ceil(rect.bottom())))
        if x1 <= x0 or y1 <= y0:
            return
        step = max(1, int(np.ceil(np.sqrt((x1 - x0) * (y1 - y0) / PREVIEW_PIXELS))))
        part = map_window(self._raw[y0:y1:step, x0:x1:step], self._current_window())
        if self._preview_item is None:
            self._preview_item = QGraphicsPixmapItem()
            self._preview_item.setZValue(-9)
            self.scene.addItem(self._preview_item)
        self._preview_item.setPixmap(QPixmap.fromImage(array_to_qimage(part)))
        self._preview_item.setPos(x0, y0)
        self._preview_item.setTransform(QTransform.fromScale(step, step))

    def _on_mapped(self, raw: np.ndarray, out) -> None:
        if raw is not self._raw:
            return  # another image is shown by now
        self._display, pixels = out
        image = qimage_view(pixels) if pixels is not None else array_to_qimage(self._display)
        self._set_full_pixmap(QPixmap.fromImage(image), pixels)
        if self._preview_item is not None:
            self.scene.removeItem(self._preview_item)
            self._preview_item = None
        self.windowApplied.emit()

    # --- pixels for tools ------------------------------------------------------------------------
    def region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Displayed uint8 pixels of (x, y, w, h) at full resolution."""
        if self._display is not None:
            return self._display[y:y + h, x:x + w]
        if self._tiles is not None:
            return self._tiles.region(x, y, w, h)
        raise ActionError("No image is shown.")

    # --- tiles --------------------------------------------------------------------------------------
    def update_view(self, rect: QRectF, scale: float) -> None:
        """The visible scene rectangle changed: fetch the tiles it needs."""
        if self._tiles is not None:
            self._tiles.update_view(rect, scale)

    def wait_idle(self, msecs: int = 10000) -> bool:
        """Wait for tile and mapping jobs in flight and deliver them (benchmarks)."""
        return self.workers.wait(msecs)

    def shutdown(self) -> None:
        """Stop every job (the canvas closes)."""
        if self._tiles is not None:
            self._tiles.close()
        self.workers.shutdown()
