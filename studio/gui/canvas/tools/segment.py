"""Click-to-segment: a promptable model (EfficientSAM, SAM, SAM 2.1 through osam) turns
clicks and boxes into a mask.

Left click adds a positive point, Shift+click or right click a negative one, a drag gives
a box prompt (double-click inside an existing box uses that box); the preview follows
each prompt. Enter accepts it as a new object of the current class, as a mask or a
polygon (SEGMENT.config.output; polygons are the exact outline simplified by
Douglas-Peucker), one undo step; Shift+Enter adds the mask to the selected object. With
no prompt, Enter segments the selected boxes. Esc clears the prompt.

The image's embedding is made on the canvas's worker as soon as an image opens (see
segment_service); a click before it is ready shows "preparing..." and applies when ready.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem

from studio.core.errors import StudioError
from studio.core.geometry import mask_geom_to_polygons
from studio.gui.canvas.tools.base import Tool
from studio.gui.canvas.tools.segment_service import SegmentService
from studio.gui.segment_settings import SEGMENT

PREPARING = "Segment: preparing the image... (the prompt applies when it is ready)"
HINT = ("Segment: click = object, Shift/right click = background, drag = box; "
        "Enter accepts, Esc clears")
MARK_PX = 5  # radius of the point markers on screen


class SegmentTool(Tool):
    name = "segment"

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.service = SegmentService(canvas)
        self.service.ready_callbacks.append(self._embedding_ready)
        self.service.error_callbacks.append(self._failed)
        self.points: list[tuple[float, float, int]] = []
        self.box: tuple[float, float, float, float] | None = None
        self.preview = None  # MaskGeom of the current prompt
        self.preview_embedding = None  # the embedding it was decoded from
        self.waiting = False  # a prompt waits for the embedding
        self.decoding = False
        self._press: QPointF | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._rect_item: QGraphicsRectItem | None = None
        self._marks: list[QGraphicsEllipseItem] = []
        self._prompt_id = 0
        self._layer_color: tuple[int, int] | None = None
        self.on_missing_model = None  # callable(model name): the workspace offers a download
        # to the service (a QObject child of the canvas): disconnected when the canvas goes
        canvas.document.imageChanged.connect(self.service.on_image_changed)

    # --- life cycle ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self.points or self.box or self._press is not None or self.waiting)

    def activate(self) -> None:
        """Check on the worker that the model's files are there (the first check imports
        osam and onnxruntime, a second or so), then prepare the shown image."""
        self.service.check_model(self._model_checked)

    def _model_checked(self, ready: bool) -> None:
        if self.canvas.tool is not self and not self.busy:
            return  # left meanwhile
        if not ready:
            self.waiting = False
            name = self.service.model_name
            text = (f"Segment: the model {name} is not installed; choose it and download it "
                    "(or install it from a file) in Tools > Click-to-segment model...")
            self.canvas.message.emit(text)
            self.canvas.toast(text)
            if self.on_missing_model is not None:
                self.on_missing_model(name)
            return
        self.service.image_opened()
        self.canvas.message.emit(HINT)

    def cancel(self) -> None:
        self._clear_items()
        if self._rect_item is not None:
            self.canvas.scene().removeItem(self._rect_item)
            self._rect_item = None
        self.points, self.box, self.preview, self.preview_embedding = [], None, None, None
        self.waiting = False
        self._press = None
        self._prompt_id += 1  # a decode on its way is dropped
        if self.canvas.document.image_id is not None and self.canvas.image_size[0]:
            self.canvas.paint_layer().clear()

    def _clear_items(self) -> None:
        for item in self._marks:
            self.canvas.scene().removeItem(item)
        self._marks = []

    # --- mouse ---------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._press, self._press_button = QPointF(pos), event.button()
        return True

    def _show_box_item(self) -> None:
        """The dashed box prompt on the canvas (its rectangle set by the caller)."""
        self._rect_item = QGraphicsRectItem()
        pen = QPen(QColor("yellow"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._rect_item.setPen(pen)
        self._rect_item.setZValue(1001)
        self.canvas.scene().addItem(self._rect_item)

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._press is None or self._press_button != Qt.MouseButton.LeftButton:
            return False
        if self._rect_item is None:
            if (pos - self._press).manhattanLength() < self.screen_tol(4):
                return True
            self._show_box_item()
        self._rect_item.setRect(QRectF(self._press, pos).normalized())
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._press is None:
            return False
        start, button = self._press, self._press_button
        self._press = None
        if self._rect_item is not None:
            rect = self._rect_item.rect()
            if rect.width() >= 2 and rect.height() >= 2:
                self.box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            self._prompt_changed()
            return True
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        label = 0 if (shift or button == Qt.MouseButton.RightButton) else 1
        self.add_point(start.x(), start.y(), label)
        return True

    def double_click(self, pos: QPointF, event: QMouseEvent) -> bool:
        """Inside an existing box: that box is the prompt ("segment this box")."""
        x, y = pos.x(), pos.y()
        for ann in self.doc.project.annotations(self.doc.image_id, kind="box"):
            bx, by, bw, bh = ann.geometry
            if bx <= x <= bx + bw and by <= y <= by + bh:
                if self.points:
                    self.points.pop()  # the double click's first press added a point
                self.set_box((bx, by, bx + bw, by + bh))
                return True
        return False

    # --- prompts ---------------------------------------------------------------------------
    def add_point(self, x: float, y: float, label: int) -> None:
        self.points.append((float(x), float(y), int(label)))
        self._prompt_changed()

    def set_box(self, box) -> None:
        self.box = tuple(float(v) for v in box)
        self._prompt_changed()

    def _prompt_changed(self) -> None:
        self._draw_prompt()
        if not self.points and self.box is None:
            return
        if self.service.embedding() is None:
            self.waiting = True
            self.canvas.message.emit(PREPARING)
            self.canvas.toast(PREPARING)
            if self.service.current_key is None and self.service.armed:
                self.service.image_opened()
                if self.service.current_key is None:  # no model: activate() said why
                    self.waiting = False
            return
        self._decode()

    def _embedding_ready(self, _key: str) -> None:
        if self.waiting:
            self.waiting = False
            self._decode()

    def _decode(self) -> None:
        self._prompt_id += 1
        prompt_id = self._prompt_id
        pts = [(x, y) for x, y, _l in self.points]
        labels = [lab for _x, _y, lab in self.points]
        emb = self.service.embedding()
        self.decoding = True

        def done(geom) -> None:
            if prompt_id != self._prompt_id:
                return
            self.decoding = False
            self.preview, self.preview_embedding = geom, emb
            self._show_preview()

        self.service.decode(pts, labels, self.box, done, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.decoding = self.waiting = False
        self.report(exc)

    # --- drawing ---------------------------------------------------------------------------
    def _draw_prompt(self) -> None:
        self._clear_items()
        r = self.screen_tol(MARK_PX)
        for x, y, label in self.points:
            item = QGraphicsEllipseItem(QRectF(x - r, y - r, 2 * r, 2 * r))
            item.setBrush(QBrush(QColor(0, 220, 0) if label else QColor(230, 0, 0)))
            pen = QPen(QColor("white"), 1)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(1002)
            self.canvas.scene().addItem(item)
            self._marks.append(item)
        if self.box is not None:
            if self._rect_item is None:
                self._show_box_item()
            x0, y0, x1, y1 = self.box
            self._rect_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _show_preview(self) -> None:
        layer = self.canvas.paint_layer()
        layer.clear()
        geom = self.preview
        if geom is None:
            self.canvas.message.emit("Segment: nothing found for this prompt; click on the "
                                     "object or draw a box around it.")
            return
        c = QColor(self.canvas.active_color())
        c.setAlphaF(0.5)
        if self._layer_color != (id(layer), c.rgba()):  # a colour change repaints it all
            self._layer_color = (id(layer), c.rgba())
            layer.set_colors(c)
        layer.set_region(geom.x, geom.y, geom.bitmap.astype(np.uint8))
        self.canvas.message.emit(HINT)

    # --- accept ----------------------------------------------------------------------------
    def key_press(self, event: QKeyEvent) -> bool:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if self.points or self.box is not None:
                self.accept(add_to_selected=add)
            else:
                self.segment_selected_boxes()
            return True
        if key == Qt.Key.Key_Escape and self.busy:
            self.cancel()
            return True
        return False

    def accept(self, add_to_selected: bool = False) -> None:
        """The preview becomes an object of the current class (one undo step)."""
        if self.waiting or self.decoding:
            self.canvas.message.emit("Segment: the mask is still being computed.")
            return
        geom = self.preview
        if geom is None:
            self.canvas.message.emit("Segment: no mask to accept.")
            return
        self.cancel()
        self._store([geom], add_to_selected)

    def _store(self, geoms, add_to_selected: bool = False) -> None:
        doc = self.doc
        try:
            if SEGMENT.config.output == "polygon" and not add_to_selected:
                cls = doc.active_class_id
                items = [dict(kind="polygon", geometry=poly, class_id=cls)
                         for g in geoms for poly in mask_geom_to_polygons(g)]
                if items:
                    doc.select(doc.replace_annotations([], items, text="Segment"))
                return
            target = doc.selected_ids[0] if add_to_selected and doc.selected_ids else None
            for g in geoms:
                doc.paint_mask_async(self.canvas.edit_workers, g.x, g.y, g.bitmap,
                                     mode="instance", target_id=target, text="Segment",
                                     on_done=lambda i: i is not None and doc.select([i]),
                                     on_error=self.report)
        except StudioError as exc:
            self.report(exc)

    def segment_selected_boxes(self) -> None:
        """Each selected box becomes a mask (or polygon) of its own class: one undo step."""
        boxes = [a for a in (self.doc.project.annotation(i) for i in self.doc.selected_ids)
                 if a.kind == "box"]
        if not boxes:
            return
        emb = self.service.embedding()
        if emb is None:
            self.canvas.message.emit(PREPARING)
            return
        from studio.ml.segment.batch import box_mask
        from studio.ml.segment.engine import load_model

        c = SEGMENT.config

        def job():  # worker
            model = load_model(c.model, c.device)
            return [(b.class_id, box_mask(model, emb, b.geometry)) for b in boxes]

        def done(out) -> None:
            out = [(cid, g) for cid, g in out if g is not None]
            if not out:
                self.canvas.message.emit("Segment: nothing found in the selected boxes.")
                return
            items = ([dict(kind="polygon", geometry=p, class_id=cid) for cid, g in out
                      for p in mask_geom_to_polygons(g)] if c.output == "polygon" else
                     [dict(kind="mask", geometry=g, class_id=cid) for cid, g in out])
            try:
                self.doc.select(self.doc.replace_annotations([], items, text="Segment boxes"))
            except StudioError as exc:
                self.report(exc)

        self.canvas.workers.submit(job, key="segment-decode", on_result=done,
                                   on_error=self._failed)
