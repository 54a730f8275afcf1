"""Undo commands: small, reversible edits of the project store.

Each command is made of *operations* (add, delete, update, mask patch) that call the store.
A command runs all of its operations inside ONE store transaction, so it lands together or
not at all, and is ONE undo step. The document executes a command once itself (so errors
reach the caller) and then pushes it; the first `redo()` Qt makes on push is skipped.
A command may also be written by a worker (`write()`, store only) and pushed on the GUI
thread when the write is done (`written()`), so a big edit never blocks the window.
The editing rules themselves (patches, paint planning) live in studio.core.editing.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
from PySide6.QtGui import QUndoCommand

from studio.core.editing import paste_patch
from studio.core.errors import ActionError, StudioError
from studio.core.project_annotations import Annotation


# --- operations ----------------------------------------------------------------------------
class AddOp:
    """Insert an annotation; undo deletes it, redo puts it back with the same id."""

    def __init__(self, image_id: int, class_id: int, kind: str, geometry, source: str = "manual",
                 score: float | None = None) -> None:
        self.item = dict(image_id=image_id, class_id=class_id, kind=kind, geometry=geometry,
                         source=source, score=score)
        self.ann_id: int | None = None
        self._snapshot: Annotation | None = None

    def redo(self, project) -> None:
        if self._snapshot is None:
            self.ann_id = project.add_annotation(**self.item)
            self.item = None  # the store holds it now; keep no second copy
        else:
            project.restore_annotation(self._snapshot)
            self._snapshot = None

    def undo(self, project) -> None:
        self._snapshot = project.annotation(self.ann_id)
        project.delete_annotation(self.ann_id)


class DeleteOp:
    """Delete an annotation; undo restores it (same id, same timestamps)."""

    def __init__(self, ann_id: int) -> None:
        self.ann_id = ann_id
        self._snapshot: Annotation | None = None

    def redo(self, project) -> None:
        self._snapshot = project.annotation(self.ann_id)
        project.delete_annotation(self.ann_id)

    def undo(self, project) -> None:
        project.restore_annotation(self._snapshot)
        self._snapshot = None


class UpdateOp:
    """Change an annotation's geometry and/or class."""

    def __init__(self, ann_id: int, old_geometry=None, new_geometry=None,
                 old_class: int | None = None, new_class: int | None = None) -> None:
        self.ann_id = ann_id
        self.old_geometry, self.new_geometry = old_geometry, new_geometry
        self.old_class, self.new_class = old_class, new_class

    def redo(self, project) -> None:
        project.update_annotation(self.ann_id, class_id=self.new_class, geometry=self.new_geometry)

    def undo(self, project) -> None:
        project.update_annotation(self.ann_id, class_id=self.old_class, geometry=self.old_geometry)


class MaskPatchOp:
    """Replace the rectangle (x, y, w, h) of a mask annotation: only that region is held.

    A mask that ends up empty is deleted (its annotation is kept so undo can restore it).
    """

    def __init__(self, ann_id: int, x: int, y: int, before: np.ndarray, after: np.ndarray,
                 current: Annotation | None = None) -> None:
        before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
        if before.shape != after.shape or before.ndim != 2:
            raise ValueError("A mask patch needs before/after arrays of the same 2-D shape.")
        self.ann_id, self.x, self.y = ann_id, int(x), int(y)
        self.before, self.after = before.copy(), after.copy()
        self._deleted: Annotation | None = None
        # The annotation as just read by the caller (saves decoding it again); first run only.
        self._current = current

    def _apply(self, project, patch: np.ndarray) -> None:
        ann, self._current = self._current, None
        if ann is None:
            ann = project.annotation(self.ann_id)
        if ann.kind != "mask":
            raise ValueError(f"Annotation {self.ann_id} is a {ann.kind}, not a mask.")
        geom = paste_patch(ann.geometry, self.x, self.y, patch)
        if not geom.bitmap.any():
            self._deleted = ann
            project.delete_annotation(self.ann_id)
        else:
            project.update_annotation(self.ann_id, geometry=geom)

    def redo(self, project) -> None:
        self._apply(project, self.after)

    def undo(self, project) -> None:
        if self._deleted is not None:
            project.restore_annotation(self._deleted)
            self._deleted = None
        self._apply(project, self.before)


# --- commands ------------------------------------------------------------------------------
class StoreCommand(QUndoCommand):
    """One undo step: a list of operations on one image, run in one store transaction."""

    def __init__(self, document, image_id: int, text: str, ops: Sequence) -> None:
        super().__init__(text)
        # A weak link: the document's undo stacks own their commands (in C++), and a
        # cycle document <-> command left to the garbage collector can free them twice.
        self._document = weakref.ref(document)
        self.image_id = image_id
        self.ops = list(ops)
        self._executed = False
        self.runner = None  # a WorkerPool: undo and redo are written there, not here

    @property
    def document(self):
        document = self._document()
        if document is None:
            raise ActionError("The labelling document of this edit is closed.")
        return document

    def execute(self) -> None:
        """First run, called by the document before pushing; errors propagate."""
        self._run(forward=True)
        self._executed = True

    def write(self, forward: bool = True) -> None:
        """The store part only: safe on a worker thread (no signal is emitted)."""
        self._write(forward)

    def written_to_stack(self, stack, read_back: dict | None = None) -> None:
        """After `write()`, on the GUI thread: views learn of it and it becomes an undo step
        (`read_back`: the touched annotations as read after the write, if at hand)."""
        self._executed = True
        self.document.command_applied(self, read_back)
        stack.push(self)

    def _write(self, forward: bool) -> None:
        project = self.document.project
        with project.transaction():
            for op in (self.ops if forward else reversed(self.ops)):
                op.redo(project) if forward else op.undo(project)

    def _run(self, forward: bool) -> None:
        self._write(forward)
        self.document.command_applied(self)

    def redo(self) -> None:
        if self._executed:
            self._executed = False  # the push's own redo: already done in execute()
            return
        self._guarded(True)

    def undo(self) -> None:
        self._guarded(False)

    def _guarded(self, forward: bool) -> None:
        # Qt calls these from C++: an exception would be lost, so report it as a signal.
        if self.runner is not None and not self.runner.is_shut_down:
            document = self.document  # big edits: written on the worker, in order
            self.runner.submit(document.write_in_worker, self, forward,
                               on_result=lambda read_back: document.command_applied(
                                   self, read_back),
                               on_error=lambda exc: self._failed(forward, exc))
            return
        try:
            self._run(forward)
        except StudioError as exc:
            self._failed(forward, exc)

    def _failed(self, forward: bool, exc: BaseException) -> None:
        self.setObsolete(True)
        self.document.errorOccurred.emit(f"Could not {'redo' if forward else 'undo'} "
                                         f"'{self.text()}': {exc}")

    @property
    def touched_ids(self) -> set[int]:
        """Annotation ids this command adds, changes or deletes."""
        return {op.ann_id for op in self.ops if op.ann_id is not None}

    @property
    def added_ids(self) -> list[int]:
        return [op.ann_id for op in self.ops if isinstance(op, AddOp) and op.ann_id is not None]


class AddAnnotationsCommand(StoreCommand):
    def __init__(self, document, image_id: int, items: Sequence[dict], text: str = "Add") -> None:
        ops = [AddOp(image_id, it["class_id"], it["kind"], it.get("geometry"),
                     it.get("source", "manual"), it.get("score")) for it in items]
        super().__init__(document, image_id, text, ops)


class DeleteAnnotationsCommand(StoreCommand):
    def __init__(self, document, image_id: int, ids: Sequence[int], text: str = "Delete") -> None:
        super().__init__(document, image_id, text, [DeleteOp(i) for i in ids])


class SetGeometryCommand(StoreCommand):
    def __init__(self, document, image_id: int, ann_id: int, old_geometry, new_geometry,
                 text: str = "Edit shape") -> None:
        super().__init__(document, image_id, text,
                         [UpdateOp(ann_id, old_geometry=old_geometry, new_geometry=new_geometry)])


class SetClassCommand(StoreCommand):
    def __init__(self, document, image_id: int, changes: Sequence[tuple[int, int]], class_id: int,
                 text: str = "Change class") -> None:
        ops = [UpdateOp(i, old_class=old, new_class=class_id) for i, old in changes]
        super().__init__(document, image_id, text, ops)


class MaskPatchCommand(StoreCommand):
    def __init__(self, document, image_id: int, patches: Sequence[MaskPatchOp], adds=(),
                 text: str = "Paint") -> None:
        super().__init__(document, image_id, text, [*patches, *adds])


class SetTagCommand(StoreCommand):
    def __init__(self, document, image_id: int, class_id: int, present: bool,
                 existing: Sequence[int]) -> None:
        if present:
            ops = [AddOp(image_id, class_id, "tag", None)]
        else:
            ops = [DeleteOp(i) for i in existing]
        super().__init__(document, image_id, "Set tag" if present else "Remove tag", ops)
