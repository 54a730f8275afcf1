"""Select and edit: click to select (Ctrl/Shift adds), drag to move, resize boxes by their
8 handles, drag polygon vertices, Alt+click or double-click an edge to insert a vertex,
Shift+click or right-click a vertex to delete it (a polygon keeps at least 3)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent

from studio.core.errors import StudioError
from studio.core.geometry import clip_box
from studio.gui.canvas.items import BoxItem, PolygonItem, nearest_edge
from studio.gui.canvas.tools.base import Tool

MOD_ADD = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


class SelectTool(Tool):
    name = "select"
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._mode: str | None = None  # "move", "handle" or "vertex"
        self._start = QPointF()
        self._items: list = []
        self._index = -1
        self._new_geom: dict[int, object] = {}
        self._inserted = False

    @property
    def busy(self) -> bool:
        return self._mode is not None

    def cancel(self) -> None:
        for item in self._items:
            item.set_preview(item.geometry)
        self._mode, self._items, self._new_geom, self._inserted = None, [], {}, False

    # --- hit tests -------------------------------------------------------------------------
    def _vertex_at(self, pos: QPointF):
        tol = self.screen_tol(7)
        for item in self.canvas.selected_items():
            if isinstance(item, PolygonItem):
                d = np.hypot(*(item.points - (pos.x(), pos.y())).T)
                i = int(np.argmin(d))
                if d[i] <= tol:
                    return item, i
        return None, -1

    def _handle_at(self, pos: QPointF):
        tol = self.screen_tol(7)
        for item in self.canvas.selected_items():
            if isinstance(item, BoxItem):
                for i, p in enumerate(item.handle_points()):
                    if abs(p.x() - pos.x()) <= tol and abs(p.y() - pos.y()) <= tol:
                        return item, i
        return None, -1

    def _edge_at(self, pos: QPointF):
        tol = self.screen_tol(6)
        for item in self.canvas.selected_items():
            if isinstance(item, PolygonItem):
                i, dist, closest = nearest_edge(item.points, (pos.x(), pos.y()))
                if dist <= tol:
                    return item, i, closest
        return None, -1, None

    # --- events ----------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        mods = event.modifiers()
        item, i = self._vertex_at(pos)
        if event.button() == Qt.MouseButton.RightButton:
            if item is not None:
                self._delete_vertex(item, i)
                return True
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        if item is not None:
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self._delete_vertex(item, i)
            else:
                self._begin("vertex", pos, [item], i)
            return True
        if mods & Qt.KeyboardModifier.AltModifier:
            poly, i, closest = self._edge_at(pos)
            if poly is not None:
                pts = np.insert(poly.points, i + 1, closest, axis=0)
                poly.set_preview(pts)
                self._begin("vertex", pos, [poly], i + 1)
                self._new_geom = {poly.ann_id: pts}
                self._inserted = True
                return True
        box, i = self._handle_at(pos)
        if box is not None:
            self._begin("handle", pos, [box], i)
            return True
        hit = self.canvas.item_at(pos, self.screen_tol(3))
        selected = list(self.doc.selected_ids)
        if hit is None:
            if not mods & MOD_ADD:
                self.doc.select([])
            return True
        if mods & MOD_ADD:
            if hit.ann_id in selected:
                selected.remove(hit.ann_id)
            else:
                selected.append(hit.ann_id)
            self.doc.select(selected)
            return True
        if hit.ann_id not in selected:
            self.doc.select([hit.ann_id])
        self._begin("move", pos, self.canvas.selected_items(), -1)
        return True

    def _begin(self, mode: str, pos: QPointF, items: list, index: int) -> None:
        self._mode, self._start, self._items, self._index = mode, QPointF(pos), items, index
        self._new_geom = {}
        self._inserted = False

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._mode is None:
            return False
        dx, dy = pos.x() - self._start.x(), pos.y() - self._start.y()
        if self._mode == "move":
            for item in self._items:
                geom = item.moved(dx, dy)
                item.set_preview(geom)
                self._new_geom[item.ann_id] = geom
        elif self._mode == "vertex":
            item = self._items[0]
            pts = np.array(item.points, dtype=np.float64)
            w, h = self.canvas.image_size
            pts[self._index] = (min(max(pos.x(), 0.0), w), min(max(pos.y(), 0.0), h))
            item.set_preview(pts)
            self._new_geom[item.ann_id] = pts
        elif self._mode == "handle":
            item = self._items[0]
            geom = self._resized(item.geometry, self._index, dx, dy)
            item.set_preview(geom)
            self._new_geom[item.ann_id] = geom
        return True

    def _resized(self, box, index: int, dx: float, dy: float):
        x, y, w, h = box
        col, row = [(i, j) for j in range(3) for i in range(3) if (i, j) != (1, 1)][index]
        x0, y0, x1, y1 = x, y, x + w, y + h
        if col == 0:
            x0 += dx
        elif col == 2:
            x1 += dx
        if row == 0:
            y0 += dy
        elif row == 2:
            y1 += dy
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        iw, ih = self.canvas.image_size
        return clip_box((x0, y0, x1 - x0, y1 - y0), iw, ih)

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._mode is None:
            return False
        new, items, inserted = self._new_geom, self._items, self._inserted
        self._mode, self._items, self._new_geom, self._inserted = None, [], {}, False
        moved = pos != self._start
        degenerate = any(it.kind == "box" and it.ann_id in new
                         and (new[it.ann_id][2] <= 0 or new[it.ann_id][3] <= 0) for it in items)
        if not new or not (moved or inserted) or degenerate:
            for item in items:
                item.set_preview(item.geometry)
            return True
        try:
            self.doc.set_geometries(new, text="Move" if len(new) > 1 else "Edit shape")
        except StudioError as exc:
            for item in items:
                item.set_preview(item.geometry)
            self.report(exc)
        return True

    def double_click(self, pos: QPointF, event: QMouseEvent) -> bool:
        poly, i, closest = self._edge_at(pos)
        if poly is None:
            return False
        pts = np.insert(np.asarray(poly.geometry, dtype=np.float64), i + 1, closest, axis=0)
        self.doc.set_geometry(poly.ann_id, pts)
        return True

    def _delete_vertex(self, item: PolygonItem, index: int) -> None:
        pts = np.asarray(item.geometry, dtype=np.float64)
        if len(pts) <= 3:
            self.canvas.message.emit("A polygon needs at least 3 points.")
            return
        self.doc.set_geometry(item.ann_id, np.delete(pts, index, axis=0))

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.doc.selected_ids:
            self.doc.delete_annotations(self.doc.selected_ids)
            return True
        return False
