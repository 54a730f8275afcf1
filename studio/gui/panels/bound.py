"""Panels that show the current image's data and reload when the document says so."""

from __future__ import annotations

from collections.abc import Callable

from studio.gui.document import LabelDocument


class DocumentBoundPanel:
    """Mixin: `set_document` wires the document's signals to `reload` (and extra handlers).

    Subclasses define `reload()` and may list more (signal name, handler) pairs in
    `_extra_bindings()`.
    """

    doc: LabelDocument | None = None

    def reload(self, *_args) -> None:  # pragma: no cover - every panel defines it
        raise NotImplementedError

    def _extra_bindings(self) -> list[tuple[str, Callable]]:
        return []

    def _bindings(self) -> list[tuple[str, Callable]]:
        return [("imageChanged", self.reload),
                ("annotationsChanged", self._on_annotations_changed),
                ("classesChanged", self.reload), *self._extra_bindings()]

    def set_document(self, doc: LabelDocument | None) -> None:
        if self.doc is not None:
            for name, handler in self._bindings():
                getattr(self.doc, name).disconnect(handler)
        self.doc = doc
        if doc is not None:
            for name, handler in self._bindings():
                getattr(doc, name).connect(handler)
        self.reload()

    def _on_annotations_changed(self, image_id: int) -> None:
        if self.doc is not None and image_id == self.doc.image_id:
            self.reload()
