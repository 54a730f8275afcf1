"""Huge images on the canvas: an overview first, then the visible tiles, read in workers.

Tiles come from studio.core.tiles.TilePyramid (uint8 display data, cached on disk). Each
view change bumps a generation number; jobs of an older generation whose tile is no longer
wanted skip their work, so the newest view request supersedes the older ones. Results
come back to the GUI thread through a queued signal of the ImageLayer.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QRunnable
from PySide6.QtGui import QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

from studio.core.errors import StudioError
from studio.core.tiles import TilePyramid

OVERVIEW = ("overview",)
CACHE_TILES = 96  # decoded tiles kept in memory (about 75 MB of RGB 512 x 512 tiles)


class _Job(QRunnable):
    def __init__(self, source: TiledSource, generation: int, key: tuple) -> None:
        super().__init__()
        self.source, self.generation, self.key = source, generation, key
        # Python owns the job (auto-delete from a pool thread upsets the Python wrapper);
        # the source keeps it until it reports back.
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            self._run()
        finally:
            try:
                self.source.layer._jobDone.emit(self)
            except RuntimeError:  # the canvas was closed meanwhile: nobody is listening
                pass

    def _run(self) -> None:
        src = self.source
        stale = self.generation != src.generation and self.key not in src.wanted
        if src.closed or (stale and self.key != OVERVIEW):
            src.pending_done(self.key)
            return  # superseded by a newer view request
        try:
            if self.key == OVERVIEW:
                arr = src.pyramid.overview(src.layer.overview_side)
            else:
                arr = src.pyramid.tile(*self.key)
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
            src.pending_done(self.key)
            msg = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
            src.layer.tileFailed.emit(f"Could not show part of {src.pyramid.path.name}: {msg}")
            return
        if not src.closed:
            src.layer._tileLoaded.emit(self.generation, self.key, arr)


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

    def pending_done(self, key: tuple) -> None:
        """A job ended without a result (called from a worker thread)."""
        self._pending.discard(key)

    @property
    def has_overview(self) -> bool:
        return self._overview_item is not None

    def show_overview(self) -> None:
        self._pending.add(OVERVIEW)
        self.layer.start(_Job(self, self.generation, OVERVIEW))

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
                self._pending.add(key)
                self.layer.start(_Job(self, self.generation, key))

    def on_tile_loaded(self, generation: int, key: tuple, arr: np.ndarray) -> None:
        self._pending.discard(key)
        if self.closed:
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
        from studio.gui.canvas.tiles import array_to_qimage

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
