"""Detections drawn over the Inspect view: predicted boxes with a class-and-score tag,
ground-truth boxes dashed, matched / false positive / missed in the difference overlay's
colours (or boxes in their class colours), the selected object emphasised; and, for
instance runs, an RGBA picture of the kept masks and the ground-truth outlines (drawn in
the worker, shown through the view's overlay)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene

from studio.ml.inspect import overlays as ov
from studio.ml.inspect.detections import DetectionResult, ObjectRow

STATUS_COLORS = {"matched": ov.TP_COLOR, "false positive": ov.FP_COLOR,
                 "missed": ov.FN_COLOR}
GT_MATCHED_COLOR = (235, 235, 235)
Z_BOXES = 5
MASK_ALPHA = 100


class _Tag(QGraphicsItem):
    """A small label (class and score) that keeps its screen size at any zoom."""

    _font: QFont | None = None
    _metrics: QFontMetricsF | None = None

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        if _Tag._font is None:  # one font for all tags, measured once
            _Tag._font = QFont()
            _Tag._font.setPointSizeF(8.0)
            _Tag._metrics = QFontMetricsF(_Tag._font)
        self.text, self.color, self._rect = "", QColor(), QRectF()

    def set_text(self, text: str, color: tuple[int, int, int], below: bool) -> None:
        """Show `text` on `color`, above the item's position or hanging below it."""
        fm = _Tag._metrics
        self.prepareGeometryChange()
        self.text, self.color = text, QColor(*color)
        top = 0.0 if below else -fm.height() - 2
        self._rect = QRectF(0, top, fm.horizontalAdvance(text) + 6, fm.height() + 2)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        return self._rect

    def paint(self, painter, _option, _widget=None) -> None:
        painter.fillRect(self._rect, self.color)
        dark = self.color.lightness() > 140
        painter.setPen(QColor(0, 0, 0) if dark else QColor(255, 255, 255))
        painter.setFont(_Tag._font)
        painter.drawText(self._rect.adjusted(3, 0, 0, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.text)


class DetectionLayer:
    """The boxes of one image's result as items of an Inspect canvas's scene. Items are
    kept and reused from one slider move to the next (making hundreds anew costs)."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: dict[tuple[str, int], QGraphicsRectItem] = {}
        self.selected: tuple[str, int] | None = None
        self._pool: list[tuple[QGraphicsRectItem, _Tag]] = []

    def clear(self) -> None:
        for item, _tag in self._pool[:len(self.items)]:
            item.hide()
        self.items = {}

    def show(self, result: DetectionResult | None, rows: list[ObjectRow], names: list[str],
             class_colors: list[tuple[int, int, int]], color_by: str = "match",
             predictions: bool = True, truth: bool = True) -> None:
        """Draw `rows` (kept detections and missed ground truth) and the matched ground
        truth of `result`; `color_by` "match" or "class"."""
        used = len(self.items)
        self.items = {}
        if result is not None:
            self._draw(result, rows, names, class_colors, color_by, predictions, truth)
        for item, _tag in self._pool[len(self.items):used]:
            item.hide()
        self.select(self.selected)

    def _draw(self, result, rows, names, class_colors, color_by, predictions, truth) -> None:
        gt = result.gt
        if truth:
            for j in np.flatnonzero(result.matching.gt_match >= 0):
                cls = int(gt.classes[j])
                color = class_colors[cls] if color_by == "class" else GT_MATCHED_COLOR
                self._add(("ground truth", int(j)), gt.boxes[j], color, Qt.PenStyle.DashLine,
                          1.5, None)
        for row in rows:
            is_gt = row.source == "ground truth"
            if (is_gt and not truth) or (not is_gt and not predictions):
                continue
            status = STATUS_COLORS[row.status]
            color = class_colors[row.class_index] if color_by == "class" else status
            name = names[row.class_index] if row.class_index < len(names) else "?"
            text = f"missed {name}" if is_gt else f"{name} {row.score:.2f}"
            self._add((row.source, row.index), row.box, color,
                      Qt.PenStyle.DashLine if is_gt else Qt.PenStyle.SolidLine,
                      2.5 if is_gt else 2.0, (text, status), 0.0 if is_gt else row.score)

    def _add(self, key, box, color, style, width: float, tag, score: float = 0.0) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        n = len(self.items)
        if n == len(self._pool):
            item = QGraphicsRectItem()
            self._pool.append((item, _Tag(item)))
            self.scene.addItem(item)
        item, label = self._pool[n]
        item.setRect(QRectF(x1, y1, max(x2 - x1, 0.5), max(y2 - y1, 0.5)))
        pen = QPen(QColor(*color), width, style)
        pen.setCosmetic(True)  # the same width on screen at any zoom
        item.setPen(pen)
        item.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        # predictions over ground truth, the better detections on top
        item.setZValue(Z_BOXES + (1.0 + min(max(score, 0.0), 1.0) if key[0] == "prediction"
                                  else 0.0))
        item.setData(0, width)
        label.setVisible(tag is not None)
        if tag is not None:  # predictions above their top edge, ground truth below its bottom
            below = key[0] == "ground truth"
            label.set_text(tag[0], tag[1], below)
            label.setPos(QPointF(x1, y2 if below else y1))
        item.show()
        self.items[key] = item

    def select(self, key: tuple[str, int] | None) -> QRectF | None:
        """Emphasise one object (thicker, on top, a translucent fill); its rectangle."""
        old = self.items.get(self.selected) if self.selected is not None else None
        if old is not None and key != self.selected:
            pen = old.pen()
            pen.setWidthF(float(old.data(0)))
            old.setPen(pen)
            old.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            old.setZValue(old.zValue() - 10)
        self.selected = key
        item = self.items.get(key) if key is not None else None
        if item is None:
            return None
        pen = item.pen()
        pen.setWidthF(float(item.data(0)) + 2.5)
        item.setPen(pen)
        fill = QColor(pen.color())
        fill.setAlpha(60)
        item.setBrush(QBrush(fill))
        if item.zValue() < Z_BOXES + 10:
            item.setZValue(item.zValue() + 10)
        return item.rect()

    def keys(self) -> list[tuple[str, int]]:
        return list(self.items)


def instance_overlay(result: DetectionResult, class_colors: list[tuple[int, int, int]],
                     color_by: str = "match", truth: bool = True) -> np.ndarray | None:
    """RGBA of an instance result: kept masks filled (class or match colour) with their
    outline, and the ground-truth outlines (missed ones in the false-negative colour).
    None for detection runs (no masks)."""
    raw, gt, m = result.raw, result.gt, result.matching
    if raw.masks is None:
        return None
    h, w = raw.height or gt.height, raw.width or gt.width
    if not h or not w:
        return None
    rgba = np.zeros((h, w, 4), np.uint8)
    for pos in range(len(m.kept) - 1, -1, -1):  # best last: on top
        i = int(m.kept[pos])
        geom = raw.masks[i]
        if geom.area == 0:
            continue
        color = class_colors[int(raw.classes[i])] if color_by == "class" else (
            ov.TP_COLOR if m.match[pos] >= 0 else ov.FP_COLOR)
        _paint(rgba, geom, color, fill=True)
    if truth and gt.masks is not None:
        for j, geom in enumerate(gt.masks):
            missed = m.gt_match[j] < 0
            _paint(rgba, geom, ov.FN_COLOR if missed else GT_MATCHED_COLOR, fill=False,
                   thickness=2 if missed else 1)
    return ov.shrink(rgba)


def _paint(rgba: np.ndarray, geom, color, fill: bool, thickness: int = 1) -> None:
    """Fill (translucent) and outline one cropped mask, touching only its box (a full-size
    mask per object would cost megabytes each on big images)."""
    h, w = rgba.shape[:2]
    x0, y0 = max(geom.x, 0), max(geom.y, 0)
    x1, y1 = min(geom.x + geom.width, w), min(geom.y + geom.height, h)
    if x1 <= x0 or y1 <= y0:
        return
    bitmap = geom.bitmap[y0 - geom.y:y1 - geom.y, x0 - geom.x:x1 - geom.x]
    if fill:
        rgba[y0:y1, x0:x1][bitmap] = (*color, MASK_ALPHA)
    contours, _ = cv2.findContours(np.ascontiguousarray(bitmap, np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    if contours:
        cv2.drawContours(rgba, contours, -1, (*color, 255), thickness)
