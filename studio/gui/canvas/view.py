"""The labelling canvas: shows the document's image and objects and runs the drawing tools.

The canvas owns no data. It draws what the store holds for `document.image_id`, hands
mouse and key events to the current tool (studio.gui.canvas.tools) and lets the tools
edit through the document. Scene coordinates are image pixel-edge coordinates.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QMouseEvent,
    QPainter,
    QPen,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsScene, QGraphicsView

from studio.core.errors import StudioError, ValidationError
from studio.core.tiles import pyramid_key
from studio.gui.canvas.items import ITEM_TYPES, AnnotationItem, MaskItem, PaintLayerItem
from studio.gui.canvas.keys import CanvasKeys, CanvasNote
from studio.gui.canvas.notice import CanvasNotice
from studio.gui.canvas.objects import CanvasObjects
from studio.gui.canvas.tiles import ImageLayer
from studio.gui.canvas.tools import TOOL_CLASSES
from studio.gui.workers import WorkerPool

MIN_SCALE, MAX_SCALE = 0.002, 64.0
WHEEL_STEP = 1.0015  # zoom factor per eighth of a degree of wheel rotation
BRUSH_MIN, BRUSH_MAX = 1, 500
WINDOW_DEBOUNCE_MS = 30  # brightness/contrast slider ticks closer than this are merged


class CanvasView(CanvasObjects, CanvasKeys, QGraphicsView):
    """Zoomable, pannable view of one image and its annotations, with drawing tools."""

    zoomChanged = Signal(float)  # percent
    toolChanged = Signal(str)
    brushSizeChanged = Signal(int)
    cursorMoved = Signal(int, int)  # image pixel under the mouse
    message = Signal(str)  # short hints for the status bar
    errorOccurred = Signal(str)
    noticeAction = Signal(str)  # a button of the notice: relink_file, relink_folder, ...

    TOOL_NAMES = tuple(TOOL_CLASSES)

    def __init__(self, document, parent=None, prefetcher=None) -> None:
        super().__init__(parent)
        self.document = document
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(48, 48, 48))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.image_size: tuple[int, int] = (0, 0)
        self.opacity = 0.45
        self.brush_size = 20
        self.paint_mode = "semantic"
        self.preserve_other_labels = False
        self.show_labels, self.label_ids = True, False  # class names (and ids) beside objects
        self._items: dict[int, AnnotationItem] = {}
        self._stack_bias: dict[int, float] = {}  # brought to the front (> 0) or back (< 0)
        self._paint_layer: PaintLayerItem | None = None
        self._panning = self._right_taken = False
        self._space = False
        self._last_view_pos = QPointF()
        self.image_layer = ImageLayer(self.scene(), self, prefetcher=prefetcher)
        self.image_layer.view_rect = self._visible_rect
        self.workers = WorkerPool(1, self, name="assists")  # fill, wand, GrabCut
        self.edit_workers = WorkerPool(1, self, name="edits")  # store writes of strokes
        self._pending_window: tuple[float, float] | None = None
        self._window_timer = QTimer(self, singleShot=True, interval=WINDOW_DEBOUNCE_MS)
        self._window_timer.timeout.connect(self._apply_brightness_contrast)
        self.image_layer.tileFailed.connect(self.errorOccurred)
        self.image_layer.contentShown.connect(self._schedule_tiles)
        self.notice = CanvasNotice(self)  # on the view: a viewport child would scroll away
        self.notice.actionRequested.connect(self.noticeAction)
        self.image_layer.contentShown.connect(lambda: self.notice.hide_notice("loading"))
        self._tile_timer = QTimer(self, singleShot=True, interval=15)
        self._tile_timer.timeout.connect(self._request_tiles)
        self.horizontalScrollBar().valueChanged.connect(self._schedule_tiles)
        self.verticalScrollBar().valueChanged.connect(self._schedule_tiles)
        self._cursor_items = [QGraphicsEllipseItem(), QGraphicsEllipseItem()]
        for item, color, style in zip(self._cursor_items, ("black", "white"),
                                      (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine), strict=True):
            pen = QPen(QColor(color), 1, style)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(2000)
            item.setVisible(False)
            self.scene().addItem(item)
        self._toast = CanvasNote(self.viewport())
        self._tools = {name: cls(self) for name, cls in TOOL_CLASSES.items()}
        self.tool = self._tools["select"]
        self.viewport().setCursor(self.tool.cursor)
        self._prepared: dict[tuple, object] = {}  # (id, updated_at) -> MaskItem.prepare(...)
        document.view_preparers.append(self._prepare_item)
        document.imageChanged.connect(self._on_image_changed)
        document.annotationsChanged.connect(self._on_annotations_changed)
        document.selectionChanged.connect(self._on_selection_changed)
        document.visibilityChanged.connect(self._on_visibility_changed)
        document.classesChanged.connect(self._on_classes_changed)
        document.activeClassChanged.connect(lambda _id: self._update_brush_cursor())
        self._on_image_changed(-1 if document.image_id is None else document.image_id)

    # --- public API --------------------------------------------------------------------------
    @property
    def tool_name(self) -> str:
        return self.tool.name

    def set_tool(self, name: str) -> None:
        if name not in self._tools:
            raise ValidationError(f"Unknown tool {name!r}; choose one of {', '.join(self._tools)}.")
        if name == self.tool.name:
            return
        self.tool.deactivate()
        self.tool = self._tools[name]
        self.tool.activate()
        self.viewport().setCursor(self.tool.cursor)
        self._update_brush_cursor()
        self.toolChanged.emit(name)

    def tool_named(self, name: str):
        return self._tools[name]

    def set_opacity(self, opacity: float) -> None:
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        for item in self._items.values():
            item.set_fill_opacity(self.opacity)

    def set_brush_size(self, size: int) -> None:
        size = int(min(max(size, BRUSH_MIN), BRUSH_MAX))
        if size != self.brush_size:
            self.brush_size = size
            self._update_brush_cursor()
            self.brushSizeChanged.emit(size)

    def set_paint_mode(self, mode: str) -> None:
        if mode not in ("semantic", "instance"):
            raise ValidationError(f"Unknown paint mode {mode!r}; use 'semantic' or 'instance'.")
        self.paint_mode = mode

    def set_preserve_other_labels(self, preserve: bool) -> None:
        self.preserve_other_labels = bool(preserve)

    def convert_selection(self, kind: str) -> list[int]:
        """Convert the selected objects to "mask" or "polygon" (one undo step)."""
        try:
            return self.document.convert_annotations(self.document.selected_ids, kind)
        except StudioError as exc:
            self.errorOccurred.emit(str(exc))
            return []

    def set_window(self, lo: float | None, hi: float | None) -> None:
        """Intensity window for display (16-bit and dark images); None, None = automatic."""
        self.image_layer.set_window(lo, hi)

    def set_brightness_contrast(self, brightness: float, contrast: float) -> None:
        """brightness in [-1, 1] shifts, contrast > 0 narrows (>1) or widens the window.

        Debounced: a slider's ticks within WINDOW_DEBOUNCE_MS make one re-mapping."""
        self._pending_window = (float(brightness), float(contrast))
        self._window_timer.start()

    def _apply_brightness_contrast(self) -> None:
        if self._pending_window is not None:
            self.image_layer.set_brightness_contrast(*self._pending_window)
            self._pending_window = None

    def _visible_rect(self) -> tuple[QRectF, float]:
        return self.mapToScene(self.viewport().rect()).boundingRect(), self.scale_factor()

    def toast(self, text: str) -> None:
        """Show a short note on the canvas itself (where the person is looking)."""
        self._toast.show_text(text)

    @property
    def toast_text(self) -> str:
        """The note shown on the canvas now ("" when none)."""
        return self._toast.text() if self._toast.isVisible() else ""

    @property
    def idle(self) -> bool:
        """No background job of the canvas (tiles, assists, edits) is running or queued."""
        return not (self.workers.busy or self.edit_workers.busy or self._window_timer.isActive()
                    or self._tile_timer.isActive()
                    or not self.image_layer.idle)

    def shutdown(self) -> None:
        """Stop every background job of the canvas (it closes, or its window does).
        Edits being written are finished first: a stroke is never lost."""
        if self._prepare_item in self.document.view_preparers:
            self.document.view_preparers.remove(self._prepare_item)
        self._window_timer.stop()
        self._toast.timer.stop()
        self.edit_workers.wait()
        self.edit_workers.shutdown()
        self.tool.cancel()
        self.workers.shutdown()
        self.image_layer.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # --- zoom ----------------------------------------------------------------------------------
    def scale_factor(self) -> float:
        return self.transform().m11()

    @property
    def zoom_percent(self) -> float:
        return self.scale_factor() * 100.0

    def set_zoom_percent(self, percent: float, anchor: QPointF | None = None) -> None:
        self._zoom_to(percent / 100.0, anchor)

    def fit(self) -> None:
        """Show the whole image (Ctrl+0)."""
        w, h = self.image_size
        if w and h:
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
            self._zoom_to(self.scale_factor(), None, force=True)

    def zoom_100(self) -> None:
        """One image pixel per screen pixel (Ctrl+1), keeping the view centre."""
        self._zoom_to(1.0, None)

    def _zoom_to(self, scale: float, anchor: QPointF | None, force: bool = False) -> None:
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_pos = self.mapToScene(anchor.toPoint())
        if force or abs(scale - self.scale_factor()) > 1e-12:
            self.setTransform(QTransform.fromScale(scale, scale))
            moved = self.mapFromScene(scene_pos) - anchor.toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
            self._update_brush_cursor()
            self._schedule_tiles()
            for item in self.selected_items():
                item.refresh_handles()
            self.zoomChanged.emit(self.zoom_percent)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._zoom_to(self.scale_factor() * WHEEL_STEP ** delta, event.position())
        event.accept()

    # --- helpers for tools ---------------------------------------------------------------------
    def active_color(self) -> QColor:
        cid = self.document.active_class_id
        for c in self.document.project.classes():
            if c.id == cid:
                return QColor(c.color)
        return QColor("#ff0000")

    def paint_layer(self) -> PaintLayerItem:
        if self._paint_layer is None:
            w, h = self.image_size
            self._paint_layer = PaintLayerItem(max(w, 1), max(h, 1))
            self.scene().addItem(self._paint_layer)
        return self._paint_layer

    def image_region(self, x: int, y: int, w: int, h: int):
        """Displayed (uint8) pixels of the image inside (x, y, w, h), full resolution."""
        return self.image_layer.region(x, y, w, h)

    # --- document events ---------------------------------------------------------------------
    def _on_image_changed(self, image_id: int) -> None:
        self.tool.deactivate()
        for item in self._items.values():
            self.scene().removeItem(item)
        self._items.clear()
        if self._paint_layer is not None:
            self.scene().removeItem(self._paint_layer)
            self._paint_layer = None
        self.notice.hide_notice()
        self._stack_bias.clear()
        if image_id < 0:
            self.image_size = (0, 0)
            self.image_layer.clear()
            if self.document.project.count_images() == 0:
                self.notice.show_empty_project()
            return
        rec = self.document.project.image(image_id)
        self.image_size = (rec.width, rec.height)
        m = max(rec.width, rec.height)
        self.setSceneRect(QRectF(-m, -m, rec.width + 2 * m, rec.height + 2 * m))
        if self.document.image_missing:
            self.image_layer.clear()
            self.notice.show_missing_file(rec.name, rec.abs_path)
        else:
            try:
                self.image_layer.load(rec.abs_path, rec.width, rec.height,
                                      cache_dir=self.document.project.cache_dir,
                                      key=pyramid_key(rec.sha256) if rec.sha256 else None)
            except StudioError as exc:
                self.errorOccurred.emit(str(exc))
            if not self.image_layer.has_content:  # a huge image: its overview is on its way
                self.notice.show_loading(rec.name, rec.width, rec.height)
        self._on_annotations_changed(image_id)
        self.fit()
        self._request_tiles()

    def _on_annotations_changed(self, image_id: int) -> None:
        if image_id != self.document.image_id:
            return
        project = self.document.project
        classes = project.classes()
        colors = {c.id: c.color for c in classes}
        names = {c.id: c.name for c in classes}
        changed = self.document.last_changed_ids
        if changed is None:  # reload everything
            anns = [a for a in project.annotations(image_id) if a.kind in ITEM_TYPES]
            gone = set(self._items) - {a.id for a in anns}
        else:  # an edit of ours: read back only what it touched
            anns, gone = [], set()
            read_back = self.document.last_changed
            for ann_id in changed:
                try:
                    a = read_back.get(ann_id) or project.annotation(ann_id)
                except StudioError:
                    gone.add(ann_id)
                    continue
                if a.image_id == image_id and a.kind in ITEM_TYPES:
                    anns.append(a)
                else:
                    gone.add(ann_id)
        for ann_id in gone & set(self._items):
            self.scene().removeItem(self._items.pop(ann_id))
        selected = set(self.document.selected_ids)
        for a in anns:
            item = self._items.get(a.id)
            color = colors.get(a.class_id, "#ff0000")
            if (item is not None and item.updated_at == a.updated_at
                    and item.class_id == a.class_id and item.color.name() == color):
                continue
            if item is not None:
                self.scene().removeItem(item)
            prepared = self._prepared.pop((a.id, a.updated_at), None)
            if prepared is not None:
                item = MaskItem(a, QColor(color), self.opacity, prepared=prepared)
            else:
                item = ITEM_TYPES[a.kind](a, QColor(color), self.opacity)
            item.setVisible(self.document.is_visible(a.class_id) and not item.hidden)
            self.scene().addItem(item)
            if a.id in selected:
                item.set_selected(True)
            self._items[a.id] = item
        for key in [k for k in self._prepared if changed is None or k[0] in changed]:
            self._prepared.pop(key, None)  # used or stale
        self.stack_and_label(names)

    def _prepare_item(self, ann) -> None:
        """On an edit's worker: the heavy part of drawing a mask it wrote."""
        if ann.kind == "mask" and ann.image_id == self.document.image_id:
            self._prepared[(ann.id, ann.updated_at)] = MaskItem.prepare(ann.geometry, True)

    def _on_classes_changed(self) -> None:
        if self.document.image_id is not None:
            self._on_annotations_changed(self.document.image_id)

    # --- tiles ---------------------------------------------------------------------------------
    def _schedule_tiles(self, *_args) -> None:
        if self.image_layer.tiled:
            self._tile_timer.start()

    def _request_tiles(self) -> None:
        self.image_layer.update_view(*self._visible_rect())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._schedule_tiles()

    # --- mouse -----------------------------------------------------------------------------
    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        inverse, _ok = self.viewportTransform().inverted()
        return inverse.map(event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pan = event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton)
        if pan:
            self._panning = True
            self._last_view_pos = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        self._right_taken = False  # a tool used the right button: no context menu then
        if self.document.image_id is not None and self._run_tool("press", event):
            self._right_taken = event.button() == Qt.MouseButton.RightButton
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._panning:
            d = event.position() - self._last_view_pos
            self._last_view_pos = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            event.accept()
            return
        pos = self._scene_pos(event)
        self._move_brush_cursor(pos)
        self.cursorMoved.emit(int(pos.x() // 1), int(pos.y() // 1))
        if self.document.image_id is not None and self._run_tool("move", event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning and event.button() in (Qt.MouseButton.MiddleButton,
                                                Qt.MouseButton.LeftButton):
            self._panning = False
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space
                                      else self.tool.cursor)
            event.accept()
            return
        if self.document.image_id is not None and self._run_tool("release", event):
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.document.image_id is not None and self._run_tool("double_click", event):
            event.accept()
            return
        # a double click's second press also reaches the tool as a press
        self.mousePressEvent(event)

    def _run_tool(self, handler: str, event: QMouseEvent) -> bool:
        if self.document.image_missing:  # nothing to label on: say why, draw nothing
            if handler == "press":
                self.message.emit("The image file is missing: relink it to label this image.")
            return True
        try:
            return bool(getattr(self.tool, handler)(self._scene_pos(event), event))
        except StudioError as exc:
            self.tool.cancel()
            self.errorOccurred.emit(str(exc))
            return True

    def leaveEvent(self, event) -> None:
        for item in self._cursor_items:
            item.setVisible(False)
        super().leaveEvent(event)

    # --- brush cursor --------------------------------------------------------------------------
    def _move_brush_cursor(self, pos: QPointF) -> None:
        show = self.tool.name in ("brush", "eraser") and self.document.image_id is not None
        r = self.brush_size / 2.0
        for item in self._cursor_items:
            item.setVisible(show)
            if show:
                item.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))

    def brush_cursor(self) -> QRectF | None:
        """The brush outline shown under the mouse (image coordinates), None when hidden."""
        item = self._cursor_items[0]
        return QRectF(item.rect()) if item.isVisible() else None

    def _update_brush_cursor(self) -> None:
        item = self._cursor_items[0]
        if item.isVisible() or self.tool.name in ("brush", "eraser"):
            center = item.rect().center() if item.isVisible() else \
                self.mapToScene(self.mapFromGlobal(self.cursor().pos()))
            self._move_brush_cursor(QPointF(center))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        w, h = self.image_size
        if w and h:  # a thin frame shows where the image ends
            pen = QPen(QColor(90, 90, 90), 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(0, 0, w, h))
