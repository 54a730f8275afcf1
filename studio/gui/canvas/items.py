"""Scene items drawing annotations (box, polygon, mask), handles and the paint layer.

Scene coordinates are image pixel-edge coordinates: pixel (c, r) covers [c, c+1) x [r, r+1).
Items are passive views of the store: tools change their preview geometry while dragging
and the document writes the result; the canvas then rebuilds changed items.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem

from studio.core.geometry import MaskGeom
from studio.gui.canvas.labels import ObjectLabel

HANDLE_PX = 8  # handle size on screen, whatever the zoom
HANDLE_SPACING_PX = 12  # vertices closer than this on screen share one handle
BOX_FILL_FACTOR = 0.3  # boxes are outlines with a light fill, so the image shows through
OUTLINE_PX = 2


def padded_index_image(bitmap: np.ndarray) -> tuple[np.ndarray, QImage]:
    """uint8 pixels of a bool bitmap (rows padded to 4 bytes) and an Indexed8 QImage over them.

    When no padding or reordering is needed the bitmap's own memory is used."""
    h, w = bitmap.shape
    stride = (w + 3) & ~3
    src = bitmap.view(np.uint8) if bitmap.dtype == bool else bitmap
    if h and w and src.flags.f_contiguous and not src.flags.c_contiguous:
        src = cv2.transpose(np.ascontiguousarray(src.T))  # column-major (RLE decode): fast
    if h and w and stride == w and src.flags.c_contiguous:
        buf = src  # shares the bitmap's memory: nobody writes to a drawn geometry
    else:
        buf = np.zeros((max(h, 1), max(stride, 4)), dtype=np.uint8)
        if h and w:
            buf[:h, :w] = src
    img = QImage(buf.data, max(w, 1), max(h, 1), buf.shape[1], QImage.Format.Format_Indexed8)
    return buf, img


class HandleItem(QGraphicsRectItem):
    """A small square of constant screen size marking a vertex or a box handle."""

    def __init__(self, parent: QGraphicsItem, pos: QPointF) -> None:
        half = HANDLE_PX / 2
        super().__init__(-half, -half, HANDLE_PX, HANDLE_PX, parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPen(QPen(QColor("black"), 1))
        self.setBrush(QBrush(QColor("white")))
        self.setPos(pos)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)


class AnnotationItem(QGraphicsItem):
    """Base of the drawn objects; knows its annotation id, class and colour."""

    kind = ""

    def __init__(self, ann, color: QColor, opacity: float) -> None:
        super().__init__()
        self.ann_id: int = ann.id
        self.class_id: int = ann.class_id
        self.updated_at: float = ann.updated_at
        self.hidden: bool = bool(getattr(ann, "hidden", False))
        self.locked: bool = bool(getattr(ann, "locked", False))
        self.geometry = ann.geometry
        self.color = QColor(color)
        self.fill_opacity = opacity
        self.selected = False
        self._handles: list[HandleItem] = []
        self.label: ObjectLabel | None = None
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)

    # geometry helpers for tools
    def area(self) -> float:
        r = self.boundingRect()
        return r.width() * r.height()

    def contains_point(self, p: QPointF, tol: float) -> bool:
        raise NotImplementedError

    def handle_points(self) -> list[QPointF]:
        return []

    def set_preview(self, geometry) -> None:
        """Show another geometry without touching the store (during a drag)."""
        raise NotImplementedError

    def moved(self, dx: float, dy: float):
        """The geometry translated by (dx, dy), in the store's form."""
        raise NotImplementedError

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self._sync_handles()
        self.update()

    def set_fill_opacity(self, opacity: float) -> None:
        self.fill_opacity = opacity
        self.update()

    def set_label(self, text: str | None) -> None:
        """Show `text` beside the object (at its top-left corner); None hides it."""
        if not text:
            if self.label is not None:
                self.label.setVisible(False)
            return
        if self.label is None:
            self.label = ObjectLabel(self, text, self.color, QPointF())
        elif self.label.text != text:
            self.label.set_text(text)
        self._place_label()
        self.label.setVisible(True)

    def _place_label(self) -> None:
        if self.label is not None:  # the top-left corner of the outline
            self.label.setPos(self.boundingRect().topLeft() + QPointF(1, 1))

    def view_scale(self) -> float:
        """Screen pixels per image pixel in the (first) view showing this item."""
        scene = self.scene()
        views = scene.views() if scene is not None else []
        return views[0].transform().m11() if views else 1.0

    def visible_handle_points(self) -> list[QPointF]:
        """Handle positions thinned to one per HANDLE_SPACING_PX on screen, so a dense
        outline shows a row of handles, not a black band."""
        pts = self.handle_points()
        min_dist = HANDLE_SPACING_PX / max(self.view_scale(), 1e-6)
        if len(pts) <= 8:
            return pts
        kept = [pts[0]]
        for p in pts[1:]:
            last = kept[-1]
            if abs(p.x() - last.x()) + abs(p.y() - last.y()) >= min_dist:
                kept.append(p)
        return kept

    def refresh_handles(self) -> None:
        """Re-thin the handles after a zoom."""
        if self.selected:
            self._sync_handles()

    def _sync_handles(self) -> None:
        self._place_label()
        pts = self.visible_handle_points() if self.selected else []
        while len(self._handles) > len(pts):
            h = self._handles.pop()
            h.setParentItem(None)
            if h.scene() is not None:
                h.scene().removeItem(h)
        for i, p in enumerate(pts):
            if i < len(self._handles):
                self._handles[i].setPos(p)
            else:
                self._handles.append(HandleItem(self, p))

    def _pens(self) -> tuple[QPen, QBrush]:
        pen = QPen(QColor("white") if self.selected else self.color, OUTLINE_PX)
        pen.setCosmetic(True)
        if self.selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        fill = QColor(self.color)
        alpha = min(1.0, self.fill_opacity * (1.5 if self.selected else 1.0))
        fill.setAlphaF(alpha)
        return pen, QBrush(fill)


class BoxItem(AnnotationItem):
    kind = "box"

    def __init__(self, ann, color: QColor, opacity: float) -> None:
        super().__init__(ann, color, opacity)
        self._rect = QRectF(*ann.geometry)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        pen, brush = self._pens()
        fill = brush.color()
        fill.setAlphaF(fill.alphaF() * BOX_FILL_FACTOR)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRect(self._rect)

    def contains_point(self, p: QPointF, tol: float) -> bool:
        return self._rect.adjusted(-tol, -tol, tol, tol).contains(p)

    def handle_points(self) -> list[QPointF]:
        r = self._rect
        xs, ys = (r.left(), r.center().x(), r.right()), (r.top(), r.center().y(), r.bottom())
        return [QPointF(xs[i], ys[j]) for j in range(3) for i in range(3) if (i, j) != (1, 1)]

    def set_preview(self, geometry) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(*geometry)
        self._sync_handles()
        self.update()

    def moved(self, dx: float, dy: float):
        x, y, w, h = self.geometry
        return (x + dx, y + dy, w, h)


class PolygonItem(AnnotationItem):
    kind = "polygon"

    def __init__(self, ann, color: QColor, opacity: float) -> None:
        super().__init__(ann, color, opacity)
        self._points = np.asarray(ann.geometry, dtype=np.float64)
        self._poly = _qpolygon(self._points)

    @property
    def points(self) -> np.ndarray:
        return self._points

    def boundingRect(self) -> QRectF:
        return self._poly.boundingRect().adjusted(-1, -1, 1, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        pen, brush = self._pens()
        painter.setPen(pen)
        painter.setBrush(brush)
        painter.drawPolygon(self._poly)

    def contains_point(self, p: QPointF, tol: float) -> bool:
        if self._poly.containsPoint(p, Qt.FillRule.OddEvenFill):
            return True
        return nearest_edge(self._points, (p.x(), p.y()))[1] <= tol

    def handle_points(self) -> list[QPointF]:
        return [QPointF(float(x), float(y)) for x, y in self._points]

    def set_preview(self, geometry) -> None:
        self.prepareGeometryChange()
        self._points = np.asarray(geometry, dtype=np.float64)
        self._poly = _qpolygon(self._points)
        self._sync_handles()
        self.update()

    def moved(self, dx: float, dy: float):
        return np.asarray(self.geometry, dtype=np.float64) + (dx, dy)


class MaskItem(AnnotationItem):
    """A mask drawn as an Indexed8 image (1 byte per pixel) with its contour outlined."""

    kind = "mask"
    MAX_CONTOUR_PIXELS = 4096 * 4096  # bigger masks are drawn without their outline
    REDUCE_PIXELS = 1 << 20  # zoomed out, bigger masks are drawn from a reduced copy

    def __init__(self, ann, color: QColor, opacity: float, prepared=None) -> None:
        super().__init__(ann, color, opacity)
        geom: MaskGeom = ann.geometry
        buf, contours, reduced = prepared if prepared is not None else self.prepare(geom)
        self._buf = buf
        self._w, self._h = geom.width, geom.height
        self._image = _index_view(buf, self._w, self._h)
        self._reduced: dict[int, tuple[np.ndarray, QImage]] = {  # step -> reduced copy
            step: (small, _index_view(small, size[0], size[1]))
            for step, (small, size) in reduced.items()}
        self._outline = QPainterPath()
        for pts in contours:
            self._outline.addPolygon(_qpolygon(pts))
            self._outline.closeSubpath()
        self.setPos(geom.x, geom.y)
        self._update_colors()

    @classmethod
    def prepare(cls, geom: MaskGeom, reduce: bool = False):
        """The heavy part of drawing a mask, safe on any thread (an edit's worker does it
        for the masks it wrote): padded 8-bit pixels, the outline's polygons (simplified
        to half a pixel) and, with `reduce`, the reduced copies for zoomed-out views."""
        buf, _image = padded_index_image(geom.bitmap)
        contours: list[np.ndarray] = []
        if 0 < geom.bitmap.size <= cls.MAX_CONTOUR_PIXELS:
            found, _ = cv2.findContours(buf[:geom.height, :geom.width], cv2.RETR_LIST,
                                        cv2.CHAIN_APPROX_SIMPLE)
            contours = [cv2.approxPolyDP(c, 0.5, True).reshape(-1, 2).astype(np.float64) + 0.5
                        for c in found]
        reduced = {}
        if reduce and geom.bitmap.size > cls.REDUCE_PIXELS:
            for step in (2, 4, 8, 16, 32, 64):
                reduced[step] = _reduce(buf, geom.width, geom.height, step)
        return buf, contours, reduced

    def _update_colors(self) -> None:
        fill = QColor(self.color)
        fill.setAlphaF(min(1.0, self.fill_opacity * (1.5 if self.selected else 1.0)))
        self._image.setColorTable([0, fill.rgba()])
        for _buf, image in self._reduced.values():
            image.setColorTable([0, fill.rgba()])

    def set_fill_opacity(self, opacity: float) -> None:
        self.fill_opacity = opacity
        self._update_colors()
        self.update()

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self._update_colors()
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-1, -1, self._w + 2, self._h + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if not self._w or not self._h:
            return
        exposed = option.exposedRect.intersected(QRectF(0, 0, self._w, self._h))
        if exposed.isEmpty():
            return
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        step = 1
        if lod < 0.5 and self._w * self._h > self.REDUCE_PIXELS:
            step = 1 << min(6, int(np.floor(np.log2(1.0 / max(lod, 1e-6)))))
        if step > 1:  # zoomed out: Qt would convert every source pixel of the big mask
            image = self._reduced_image(step)
            src = QRectF(exposed.left() / step, exposed.top() / step,
                         exposed.width() / step, exposed.height() / step)
            painter.drawImage(exposed, image, src)
        else:
            src = exposed.toAlignedRect()
            painter.drawImage(QRectF(src), self._image, QRectF(src))
        pen, _ = self._pens()
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if not self._outline.isEmpty():
            painter.drawPath(self._outline)
        if self.selected:
            painter.drawRect(QRectF(0, 0, self._w, self._h))

    def _reduced_image(self, step: int) -> QImage:
        """The mask reduced `step` times (prepared by the edit's worker, else made here on
        first use)."""
        if step not in self._reduced:
            small, size = _reduce(self._buf, self._w, self._h, step)
            self._reduced[step] = (small, _index_view(small, *size))
        image = self._reduced[step][1]
        image.setColorTable(self._image.colorTable())
        return image

    def contains_point(self, p: QPointF, tol: float) -> bool:
        c, r = int(np.floor(p.x() - self.pos().x())), int(np.floor(p.y() - self.pos().y()))
        return 0 <= r < self._h and 0 <= c < self._w and bool(self._buf[r, c])

    def set_preview(self, geometry: MaskGeom) -> None:
        self.setPos(geometry.x, geometry.y)

    def moved(self, dx: float, dy: float):
        g: MaskGeom = self.geometry
        return MaskGeom(g.x + int(round(dx)), g.y + int(round(dy)), g.bitmap)


ITEM_TYPES = {"box": BoxItem, "polygon": PolygonItem, "mask": MaskItem}


class PaintLayerItem(QGraphicsItem):
    """A full-image uint8 layer for live strokes and previews, drawn as Indexed8.

    Index 1 shows in the paint colour, 2 and 3 in the extra colours (GrabCut marks).
    The buffer is allocated zeroed (untouched pages cost no memory) and only the
    rectangle touched by each segment is repainted.
    """

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self._w, self._h = width, height
        self.buf, self._image = padded_index_image(np.zeros((height, width), dtype=np.uint8))
        self.set_colors(QColor(255, 0, 0, 128))
        self.dirty: QRectF | None = None  # bounding box of everything drawn since clear()
        self.setZValue(1000)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_colors(self, color: QColor, *extra: QColor) -> None:
        table = [0, QColor(color).rgba()] + [QColor(c).rgba() for c in extra]
        table += [QColor(255, 255, 255, 160).rgba()] * (4 - len(table))
        self._image.setColorTable(table)
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, self._h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect())
        if self.dirty is None or exposed.isEmpty():
            return
        src = exposed.intersected(self.dirty).toAlignedRect()
        if not src.isEmpty():
            painter.drawImage(QRectF(src), self._image, QRectF(src))

    def _grow(self, rect: QRectF) -> None:
        rect = rect.intersected(self.boundingRect())
        self.dirty = rect if self.dirty is None else self.dirty.united(rect)
        self.update(rect)

    def segment(self, p0: tuple[float, float], p1: tuple[float, float], diameter: float,
                value: int = 1) -> QRectF:
        """Draw a thick line with round ends from p0 to p1 (image coords); returns its rect."""
        r = max(diameter / 2.0, 0.5)
        a = (int(np.floor(p0[0])), int(np.floor(p0[1])))
        b = (int(np.floor(p1[0])), int(np.floor(p1[1])))
        ir = max(int(round(r - 0.5)), 0)
        cv2.circle(self.buf, a, ir, value, -1)
        if a != b:
            cv2.line(self.buf, a, b, value, thickness=2 * ir + 1)
            cv2.circle(self.buf, b, ir, value, -1)
        x0, x1 = min(a[0], b[0]) - ir - 1, max(a[0], b[0]) + ir + 2
        y0, y1 = min(a[1], b[1]) - ir - 1, max(a[1], b[1]) + ir + 2
        rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        self._grow(rect)
        return rect

    def set_region(self, x: int, y: int, values: np.ndarray) -> None:
        """Write a uint8 array at (x, y) (a preview such as a flood fill)."""
        h, w = values.shape
        self.buf[y:y + h, x:x + w] = values
        self._grow(QRectF(x, y, w, h))

    def region(self, value: int | None = None) -> tuple[int, int, np.ndarray] | None:
        """(x, y, bool footprint) of what was drawn (only `value` when given), or None."""
        if self.dirty is None:
            return None
        r = self.dirty.toAlignedRect().intersected(self.boundingRect().toAlignedRect())
        if r.isEmpty():
            return None
        crop = self.buf[r.top():r.bottom() + 1, r.left():r.right() + 1]
        fp = crop > 0 if value is None else crop == value
        return r.left(), r.top(), fp

    def clear(self) -> None:
        if self.dirty is not None:
            r = self.dirty.toAlignedRect().intersected(self.boundingRect().toAlignedRect())
            self.buf[r.top():r.bottom() + 1, r.left():r.right() + 1] = 0
            self.update(self.dirty)
        self.dirty = None


def _index_view(buf: np.ndarray, w: int, h: int) -> QImage:
    """An Indexed8 QImage over padded pixels (no copy)."""
    return QImage(buf.data, max(w, 1), max(h, 1), buf.shape[1], QImage.Format.Format_Indexed8)


def _reduce(buf: np.ndarray, w: int, h: int, step: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Padded pixels of a mask reduced `step` times, and the reduced (width, height)."""
    size = (max(1, w // step), max(1, h // step))
    small = cv2.resize(buf[:h, :w], size, interpolation=cv2.INTER_AREA) > 0
    return padded_index_image(small)[0], size


def _qpolygon(points: np.ndarray) -> QPolygonF:
    return QPolygonF(list(map(QPointF, *np.asarray(points, dtype=np.float64).T.tolist())))


def nearest_edge(points: np.ndarray, p: tuple[float, float]) -> tuple[int, float, np.ndarray]:
    """(index i of the edge points[i]->points[i+1], distance, closest point on it)."""
    a = np.asarray(points, dtype=np.float64)
    b = np.roll(a, -1, axis=0)
    d = b - a
    q = np.asarray(p, dtype=np.float64)
    len2 = np.maximum((d ** 2).sum(axis=1), 1e-12)
    t = np.clip(((q - a) * d).sum(axis=1) / len2, 0.0, 1.0)
    closest = a + t[:, None] * d
    dist = np.hypot(*(closest - q).T)
    i = int(np.argmin(dist))
    return i, float(dist[i]), closest[i]
