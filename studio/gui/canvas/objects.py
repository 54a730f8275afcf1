"""The objects on the canvas as a person handles them: finding the one under the mouse,
selection and visibility, front/back order, class names beside them, the right-click menu.

CanvasObjects is a mixin of CanvasView (kept apart so the view stays readable); it uses
the view's document, items and options.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF

from studio.gui.canvas import context_menu
from studio.gui.canvas.items import AnnotationItem


class CanvasObjects:
    """Object lookup, selection, visibility, stacking, labels and the context menu."""

    def set_labels(self, show: bool, ids: bool | None = None) -> None:
        """Show the class names beside the objects (with their ids when `ids`)."""
        self.show_labels = show
        self.label_ids = self.label_ids if ids is None else ids
        self.stack_and_label()

    def stack_and_label(self, names: dict[int, str] | None = None) -> None:
        """Stack the objects (bigger ones below smaller ones, so small objects stay visible
        and clickable; then what was brought forward or sent back) and label them. Needs
        no annotation from the store: only the class names."""
        if names is None:
            names = {c.id: c.name for c in self.document.project.classes()}
        order = sorted(self._items.values(), key=lambda it: -it.area())
        for rank, item in enumerate(order):
            item.setZValue(10 + rank / max(len(order), 1) + self._stack_bias.get(item.ann_id, 0))
            self.label_item(item, names)

    def label_item(self, item: AnnotationItem, names: dict[int, str]) -> None:
        """Show (or hide) the class name beside an object, as the view's options say."""
        text = names.get(item.class_id, "?") + (f" #{item.ann_id}" if self.label_ids else "")
        text += " (locked)" if item.locked else ""
        item.set_label(text if self.show_labels else None)

    def items_by_id(self) -> dict[int, AnnotationItem]:
        return dict(self._items)

    def selected_items(self) -> list[AnnotationItem]:
        return [self._items[i] for i in self.document.selected_ids if i in self._items]

    def selected_mask_id(self) -> int | None:
        for item in self.selected_items():
            if item.kind == "mask":
                return item.ann_id
        return None

    def item_at(self, pos: QPointF, tol: float = 0.0) -> AnnotationItem | None:
        """The top visible object under `pos` (smaller objects lie above bigger ones)."""
        hits = [it for it in self._items.values() if it.isVisible() and it.contains_point(pos, tol)]
        return max(hits, key=lambda it: it.zValue(), default=None)

    def restack(self, ids, front: bool) -> None:
        """Bring objects to the front (or send them to the back) of this view."""
        for ann_id in ids:
            self._stack_bias[ann_id] = (1 if front else -1) * (2 + len(self._stack_bias) * 1e-3)
        self.stack_and_label()

    def _on_selection_changed(self, ids: list) -> None:
        selected = set(ids)
        for ann_id, item in self._items.items():
            if item.selected != (ann_id in selected):
                item.set_selected(ann_id in selected)

    def _on_visibility_changed(self) -> None:
        for item in self._items.values():
            item.setVisible(self.document.is_visible(item.class_id) and not item.hidden)

    def contextMenuEvent(self, event) -> None:
        if self._right_taken or self.tool.busy or self.document.image_missing:
            return
        context_menu.show_object_menu(self, self.mapToScene(event.pos()), event.globalPos())
