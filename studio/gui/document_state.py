"""What a document knows about single objects beyond their labels: hidden, locked,
attributes; and whether the current image's file is there at all.

A mixin of LabelDocument (kept apart so the document stays readable). Hiding and locking
change how objects are shown and handled, not the labels, so they are no undo steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from studio.core.errors import ActionError, ImageMissingError


class ObjectStateMixin:
    """Hide / lock / attributes of objects, and the guards edits go through."""

    def _refuse_missing(self, image_id: int) -> None:
        if image_id == self.image_id and self.image_missing:
            name = self.project.image(image_id).name
            raise ImageMissingError(f"The file of {name} is missing; relink it (Image > Relink "
                              "missing file) before labelling it.")

    # --- visibility, lock, attributes of single objects -----------------------------------
    def _state_changed(self, ids: Sequence[int]) -> None:
        self.last_changed_ids = {int(i) for i in ids}
        try:
            self.annotationsChanged.emit(int(self._require_image()))
        finally:
            self.last_changed_ids = None

    def set_hidden(self, ids: Sequence[int], hidden: bool) -> None:
        """Hide objects from the canvas (or show them again); hidden objects leave the
        selection. Not an undo step: it changes the view, not the labels."""
        ids = [int(i) for i in ids]
        if ids:
            self.project.set_annotation_state(ids, hidden=hidden)
            if hidden:
                self.select([i for i in self.selected_ids if i not in ids])
            self._state_changed(ids)

    def set_locked(self, ids: Sequence[int], locked: bool) -> None:
        """Lock objects against moves, edits and deletion (or unlock them)."""
        ids = [int(i) for i in ids]
        if ids:
            self.project.set_annotation_state(ids, locked=locked)
            self._state_changed(ids)

    def set_attribute(self, ids: Sequence[int], name: str, value) -> None:
        """Set one attribute (e.g. difficult) on objects; None removes it."""
        self._refuse_locked(ids)
        for i in ids:
            attributes = dict(self.project.annotation(i).attributes)
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
            self.project.set_annotation_attributes(i, attributes)
        self._state_changed(ids)

    def _refuse_locked(self, ids: Sequence[int]) -> None:
        for i in ids:
            if self.project.annotation(int(i)).locked:
                raise ActionError(f"Object {int(i)} is locked; unlock it (right-click > Unlock) "
                                  "to change it.")
