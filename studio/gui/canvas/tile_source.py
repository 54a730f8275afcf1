"""Huge images on the canvas: an overview first, then the visible tiles, read in workers.

Tiles come from studio.core.tiles.TilePyramid (uint8 display data, cached on disk). Each
view change bumps a generation number; jobs of an older generation whose tile is no longer
wanted skip their work, so the newest view request supersedes the older ones. Jobs run on
the layer's WorkerPool; results come back to the GUI thread as its queued callbacks.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

from studio.core.errors import ImageError, StudioError
from studio.core.tiles import TilePyramid
from studio.gui.workers import CancelToken

OVERVIEW = ("overview",)
CACHE_TILES = 96  # decoded tiles kept in memory (about 75 MB of RGB 512 x 512 tiles)


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
        raise ImageError(f"Cannot show an image with {arr.shape[2]} channels.")
    return QImage(arr.data, w, h, arr.strides[0], fmt).copy()


def _read_tile(token: CancelToken, source: TiledSource, generation: int, key: tuple):
    """Worker: the pixels of one tile (or the overview), None when superseded."""
    stale = generation != source.generation and key not in source.wanted
    if source.closed or (stale and key != OVERVIEW):
        return None  # superseded by a newer view request
    token.check()
    if key == OVERVIEW:
        return source.pyramid.overview(source.layer.overview_side)
    return source.pyramid.tile(*key)


class TiledSource:
    """Overview and tile items of one huge image in the layer's scene."""

    def __init__(self, layer, path: Path, size: tuple[int, int], cache_dir: Path,
                 key: str | None = None) -> None:
        self.layer = layer
        self.pyramid = TilePyramid(path, cache_dir, key=key)
        self.size = size
        self.generation = 0
        self.closed = False
        self.wanted: set[tuple] = set()
        self.auto_window: tuple[float, float] | None = None  # tiles are display data already
        self._overview: np.ndarray | None = None
        self._overview_item: QGraphicsPixmapItem | None = None
        self._items: dict[tuple, QGraphicsPixmapItem] = {}
        self._arrays: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._pending: set[tuple] = set()
        self._level = -1

    @property
    def has_overview(self) -> bool:
        return self._overview_item is not None

    @property
    def idle(self) -> bool:
        """No tile is being read."""
        return not self._pending

    def shown_tiles(self) -> list[tuple]:
        """(level, tx, ty) of the full-detail tiles in the scene now."""
        return list(self._items)

    def _request(self, key: tuple) -> None:
        self._pending.add(key)
        self.layer.workers.submit(
            _read_tile, self, self.generation, key, with_token=True,
            on_result=lambda arr, k=key, g=self.generation: self.on_tile_loaded(g, k, arr),
            on_error=lambda exc, k=key: self._on_tile_failed(k, exc),
            on_finished=lambda k=key: self._pending.discard(k))

    def _on_tile_failed(self, key: tuple, exc: BaseException) -> None:
        self._pending.discard(key)
        msg = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        self.layer.tileFailed.emit(f"Could not show part of {self.pyramid.path.name}: {msg}")

    def show_overview(self) -> None:
        self._request(OVERVIEW)

    def close(self) -> None:
        self.closed = True
        self.generation += 1
        self.wanted.clear()
        for item in [*self._items.values(), self._overview_item]:
            if item is not None:
                self.layer.scene.removeItem(item)
        self._items.clear()
        self._overview_item = None

    # --- view changes ---------------------------------------------------------------------------
    def update_view(self, rect: QRectF, scale: float) -> None:
        p = self.pyramid
        level = p.best_level(max(scale, 1e-6))
        if level >= p.overview_level(self.layer.overview_side):
            keys: list[tuple] = []  # the overview is sharp enough
        else:
            x0, y0 = max(rect.left(), 0.0), max(rect.top(), 0.0)
            x1, y1 = min(rect.right(), p.width), min(rect.bottom(), p.height)
            keys = [] if x1 <= x0 or y1 <= y0 else [
                (level, tx, ty) for tx, ty in p.tiles_for_view(level, x0, y0, x1, y1)]
        self.generation += 1
        self.wanted = set(keys)
        self._level = level
        for key in [k for k in self._items if k not in self.wanted]:
            self.layer.scene.removeItem(self._items.pop(key))
        for key in keys:
            if key in self._items or key in self._pending:
                continue
            if key in self._arrays:
                self._show_tile(key, self._arrays[key])
            else:
                self._request(key)

    def on_tile_loaded(self, generation: int, key: tuple, arr: np.ndarray | None) -> None:
        self._pending.discard(key)
        if self.closed or arr is None:
            return
        if key == OVERVIEW:
            self._overview = arr
            self._show_overview()
            self.layer.contentShown.emit()
            return
        self._arrays[key] = arr
        self._arrays.move_to_end(key)
        while len(self._arrays) > CACHE_TILES:
            self._arrays.popitem(last=False)
        if key in self.wanted and key not in self._items:
            self._show_tile(key, arr)

    # --- drawing --------------------------------------------------------------------------------
    def _pixmap(self, arr: np.ndarray) -> QPixmap:
        return QPixmap.fromImage(array_to_qimage(self.layer.apply_window_u8(arr)))

    def _show_overview(self) -> None:
        if self._overview is None:
            return
        if self._overview_item is None:
            self._overview_item = QGraphicsPixmapItem()
            self._overview_item.setZValue(-20)
            self._overview_item.setTransformationMode(
                self._overview_item.transformationMode().SmoothTransformation)
            self.layer.scene.addItem(self._overview_item)
        self._overview_item.setPixmap(self._pixmap(self._overview))
        h, w = self._overview.shape[:2]
        self._overview_item.setTransform(
            QTransform.fromScale(self.pyramid.width / w, self.pyramid.height / h))

    def _show_tile(self, key: tuple, arr: np.ndarray) -> None:
        level, tx, ty = key
        x, y, _w, _h = self.pyramid.tile_rect(level, tx, ty)
        sx, sy = self.pyramid.level_scale(level)
        item = QGraphicsPixmapItem(self._pixmap(arr))
        item.setZValue(-10)
        item.setPos(x * sx, y * sy)
        item.setTransform(QTransform.fromScale(sx, sy))
        self.layer.scene.addItem(item)
        self._items[key] = item

    def refresh(self) -> None:
        """Re-draw with a new display window."""
        self._show_overview()
        for key, item in self._items.items():
            if key in self._arrays:
                item.setPixmap(self._pixmap(self._arrays[key]))

    # --- pixels for tools -----------------------------------------------------------------------
    def region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Full-resolution display pixels of (x, y, w, h), stitched from level-0 tiles."""
        p = self.pyramid
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(p.width, x + w), min(p.height, y + h)
        shape = (y1 - y0, x1 - x0) if p.channels == 1 else (y1 - y0, x1 - x0, 3)
        out = np.zeros(shape, np.uint8)
        for tx, ty in p.tiles_for_view(0, x0, y0, x1, y1):
            key = (0, tx, ty)
            tile = self._arrays.get(key)
            if tile is None:
                tile = p.tile(0, tx, ty)
            tx0, ty0, tw, th = p.tile_rect(0, tx, ty)
            ax0, ay0 = max(x0, tx0), max(y0, ty0)
            ax1, ay1 = min(x1, tx0 + tw), min(y1, ty0 + th)
            out[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = tile[ay0 - ty0:ay1 - ty0,
                                                             ax0 - tx0:ax1 - tx0]
        return self.layer.apply_window_u8(out)
