"""The Inspect view: the image (through the labelling canvas's tiled `ImageLayer`) under
one or two overlays, shown alone, split by a draggable divider, or side by side in two
synchronised views. Brush and eraser strokes on the prediction are reported as signals;
the workspace applies them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QWidget,
)

from studio.core.errors import ValidationError
from studio.core.tiles import pyramid_key
from studio.gui.canvas.tile_source import array_to_qimage
from studio.gui.canvas.tiles import ImageLayer

MODES = ("overlay", "split", "side")
MIN_SCALE, MAX_SCALE = 0.002, 64.0


class _Divider(QGraphicsRectItem):
    """A vertical bar the user drags left and right; moves only along x."""

    def __init__(self, on_move) -> None:
        super().__init__()
        self._on_move = on_move
        self._height = 1.0
        self.setBrush(QBrush(QColor(255, 255, 255, 200)))
        self.setPen(QPen(QColor(0, 0, 0, 160), 0))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, False)
        self.setCursor(Qt.CursorShape.SplitHCursor)
        self.setZValue(20)
        self.width_limit = 1.0

    def set_height(self, height: float, width: float) -> None:
        self._height, self.width_limit = height, width
        self.set_scale(1.0)

    def set_scale(self, scale: float) -> None:
        """Keep the bar about 6 screen pixels wide at any zoom."""
        bar = 6.0 / max(scale, 1e-6)
        self.setRect(QRectF(-bar / 2, 0, bar, self._height))

    def itemChange(self, change, value):  # noqa: N802 (Qt name)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            x = min(max(value.x(), 0.0), self.width_limit)
            return QPointF(x, 0.0)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self._on_move(self.pos().x())
        return super().itemChange(change, value)


class InspectCanvas(QGraphicsView):
    """One view of the image with a left and a right overlay (the right one only in split
    mode, clipped at the divider)."""

    brushed = Signal(float, float, bool)  # image x, y of a brush dab, erase
    strokeFinished = Signal()
    viewMoved = Signal()  # zoom or scroll changed (to keep a twin view in step)
    dividerMoved = Signal(float)
    clicked = Signal(float, float)  # image x, y of a click without a drag

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(48, 48, 48))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_layer = ImageLayer(self.scene(), self)
        self.image_size = (0, 0)
        self.brush_mode = False
        self._stroke = False
        self._erase = False
        self._press = None
        self._clips: list[QGraphicsRectItem] = []
        self._overlays: list[QGraphicsPixmapItem] = []
        for z in (1, 2):
            clip = QGraphicsRectItem()
            clip.setPen(QPen(Qt.PenStyle.NoPen))
            clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
            clip.setZValue(z)
            item = QGraphicsPixmapItem(clip)
            item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
            self.scene().addItem(clip)
            self._clips.append(clip)
            self._overlays.append(item)
        self.divider = _Divider(self._on_divider)
        self.scene().addItem(self.divider)
        self.split = False
        self.auto_fit = True  # fit the image to the view until the user zooms
        self._tile_timer = QTimer(self, singleShot=True, interval=15)
        self._tile_timer.timeout.connect(self._request_tiles)
        self.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.set_split(False)

    # --- content ----------------------------------------------------------------------------
    def load_image(self, path: Path, width: int, height: int, cache_dir: Path | None = None,
                   sha256: str | None = None) -> None:
        """Show the image file (huge ones through the tile pyramid in `cache_dir`)."""
        self.image_size = (int(width), int(height))
        m = max(width, height)
        self.setSceneRect(QRectF(-m, -m, width + 2 * m, height + 2 * m))
        self.image_layer.load(path, width, height, cache_dir=cache_dir,
                              key=pyramid_key(sha256) if sha256 else None)
        self.divider.set_height(height, width)
        if self.divider.pos().x() <= 0 or self.divider.pos().x() > width:
            self.divider.setPos(width / 2, 0)
        self._update_clips()
        self.auto_fit = True
        self.fit()

    def clear(self) -> None:
        self.image_layer.clear()
        self.image_size = (0, 0)
        for item in self._overlays:
            item.setPixmap(QPixmap())

    def set_overlay(self, rgba: np.ndarray | None, which: int = 0) -> None:
        """Show an RGBA overlay (scaled to the image when it is smaller), or hide it."""
        item = self._overlays[which]
        if rgba is None:
            item.setPixmap(QPixmap())
            return
        item.setPixmap(QPixmap.fromImage(array_to_qimage(rgba)))
        w = self.image_size[0] or rgba.shape[1]
        item.setTransform(QTransform.fromScale(w / rgba.shape[1], w / rgba.shape[1]))

    def patch_overlay(self, rgba: np.ndarray, x0: int, y0: int, which: int = 0) -> None:
        """Replace a rectangle of a full-resolution overlay (a brush dab), not all of it."""
        item = self._overlays[which]
        pixmap = item.pixmap()
        if pixmap.isNull():
            return
        painter = QPainter(pixmap)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(x0, y0, array_to_qimage(rgba))
        painter.end()
        item.setPixmap(pixmap)

    def overlay_pixmap(self, which: int = 0) -> QPixmap:
        return self._overlays[which].pixmap()

    def overlay_opacity(self, which: int = 0) -> float:
        return self._overlays[which].opacity()

    def clip_rect(self, which: int = 0) -> QRectF:
        """The part of the image where overlay `which` shows (split at the divider)."""
        return self._clips[which].rect()

    def set_opacity(self, opacity: float) -> None:
        for item in self._overlays:
            item.setOpacity(float(opacity))

    def set_split(self, split: bool) -> None:
        self.split = split
        self.divider.setVisible(split)
        self._clips[1].setVisible(split)
        self._update_clips()

    def _on_divider(self, x: float) -> None:
        self._update_clips()
        self.dividerMoved.emit(x)

    def _update_clips(self) -> None:
        w, h = self.image_size
        x = self.divider.pos().x() if self.split else w
        self._clips[0].setRect(QRectF(0, 0, x, h))
        self._clips[1].setRect(QRectF(x, 0, max(w - x, 0), h))

    # --- zoom and pan -----------------------------------------------------------------------
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        w, h = self.image_size
        if w and h:
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
            self._on_scrolled()

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt name)
        factor = 1.0015 ** event.angleDelta().y()
        scale = min(max(self.scale_factor() * factor, MIN_SCALE), MAX_SCALE)
        self.scale(scale / self.scale_factor(), scale / self.scale_factor())
        self.auto_fit = False
        self._on_scrolled()

    def follow(self, other: InspectCanvas) -> None:
        """Take the zoom and position of `other` (side-by-side views move together)."""
        if other.transform() != self.transform():
            self.setTransform(other.transform())
        self.horizontalScrollBar().setValue(other.horizontalScrollBar().value())
        self.verticalScrollBar().setValue(other.verticalScrollBar().value())

    def _on_scrolled(self, *_args) -> None:
        self.divider.set_scale(self.scale_factor())
        if self.image_layer.tiled:
            self._tile_timer.start()
        self.viewMoved.emit()

    def _request_tiles(self) -> None:
        rect = self.mapToScene(self.viewport().rect()).boundingRect()
        self.image_layer.update_view(rect, self.scale_factor())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self.auto_fit:
            self.fit()
        self._on_scrolled()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if self.auto_fit:
            self.fit()

    # --- brush ------------------------------------------------------------------------------
    def set_brush_mode(self, on: bool) -> None:
        self.brush_mode = on
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on
                         else QGraphicsView.DragMode.ScrollHandDrag)
        self.divider.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not on)

    def _dab(self, event, erase: bool) -> None:
        p = self.mapToScene(event.position().toPoint())
        self.brushed.emit(p.x(), p.y(), erase)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        buttons = (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)
        if self.brush_mode and event.button() in buttons:
            self._stroke = True
            self._erase = event.button() == Qt.MouseButton.RightButton
            self._dab(event, self._erase)
            return
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._stroke:
            self._dab(event, self._erase)
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._stroke:
            self._stroke = False
            self.strokeFinished.emit()
            return
        press, self._press = self._press, None
        super().mouseReleaseEvent(event)
        if press is not None and (event.position() - press).manhattanLength() < 4:
            p = self.mapToScene(event.position().toPoint())
            self.clicked.emit(p.x(), p.y())


class CompareView(QWidget):
    """Two overlays compared: "overlay" (the first alone), "split" (divider) or "side"
    (two views that zoom and pan together)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.left = InspectCanvas(self)
        self.right = InspectCanvas(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.left)
        layout.addWidget(self.right)
        self.mode = "overlay"
        self._syncing = False
        self.left.viewMoved.connect(lambda: self._sync(self.left, self.right))
        self.right.viewMoved.connect(lambda: self._sync(self.right, self.left))
        self.right.hide()
        self._image: tuple | None = None

    def canvases(self) -> list[InspectCanvas]:
        return [self.left, self.right]

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValidationError(f"Unknown view mode {mode!r}; use one of {', '.join(MODES)}.")
        self.mode = mode
        self.left.set_split(mode == "split")
        self.right.setVisible(mode == "side")
        if mode == "side" and self._image is not None and self.right.image_size == (0, 0):
            self._load_right()

    def load_image(self, path: Path, width: int, height: int, cache_dir: Path | None = None,
                   sha256: str | None = None) -> None:
        self._image = (path, width, height, cache_dir, sha256)
        self.left.load_image(path, width, height, cache_dir, sha256)
        if self.mode == "side":
            self._load_right()
        else:
            self.right.clear()

    def _load_right(self) -> None:
        self.right.load_image(*self._image)
        self.right.follow(self.left)

    def set_overlays(self, first: np.ndarray | None, second: np.ndarray | None) -> None:
        """`first` left of the divider / in the left view, `second` right of it / in the
        right view (unused in "overlay" mode)."""
        self.left.set_overlay(first, 0)
        self.left.set_overlay(second if self.mode == "split" else None, 1)
        self.right.set_overlay(second if self.mode == "side" else None, 0)

    def patch_overlays(self, first: np.ndarray | None, second: np.ndarray | None, x0: int,
                       y0: int) -> None:
        """`set_overlays` for a rectangle at (x0, y0); None leaves that overlay as it is."""
        for canvas, which, rgba in ((self.left, 0, first),
                                    (self.left, 1, second if self.mode == "split" else None),
                                    (self.right, 0, second if self.mode == "side" else None)):
            if rgba is not None:
                canvas.patch_overlay(rgba, x0, y0, which)

    def set_opacity(self, opacity: float) -> None:
        for c in self.canvases():
            c.set_opacity(opacity)

    def set_brush_mode(self, on: bool) -> None:
        for c in self.canvases():
            c.set_brush_mode(on)

    def _sync(self, source: InspectCanvas, target: InspectCanvas) -> None:
        if self._syncing or self.mode != "side":
            return
        self._syncing = True
        try:
            target.follow(source)
        finally:
            self._syncing = False
