"""The labelling document: current image, selection, active class, visibility, undo.

The document owns no annotation data (the project store does); it turns user intentions
into undoable store edits (studio.gui.commands) and tells views what changed through
signals. Every image has its own QUndoStack, kept while moving between images, and the
QUndoGroup's active stack is the current image's, so Ctrl+Z undoes edits of this image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoGroup, QUndoStack

from studio.core import images as _images  # noqa: F401  (sets OpenCV's pixel limit first)
from studio.core.editing import PaintPlan, clip_footprint, crop_mask, plan_paint
from studio.core.errors import ActionError, StudioError, ValidationError
from studio.core.geometry import MaskGeom, clip_box, mask_to_polygons, rasterize
from studio.gui.commands import (
    AddAnnotationsCommand,
    AddOp,
    DeleteAnnotationsCommand,
    DeleteOp,
    MaskPatchCommand,
    MaskPatchOp,
    SetClassCommand,
    SetGeometryCommand,
    SetTagCommand,
    StoreCommand,
    UpdateOp,
)
from studio.gui.document_state import ObjectStateMixin

UNDO_LIMIT = 200
PASTE_OFFSET = 10.0

# In-process clipboard shared by every document: (kind, geometry, class_id) tuples.
_CLIPBOARD: list[tuple[str, object, int]] = []


class LabelDocument(ObjectStateMixin, QObject):
    """What is being labelled and how; all edits go through here."""

    imageChanged = Signal(int)
    annotationsChanged = Signal(int)
    selectionChanged = Signal(list)
    classesChanged = Signal()
    activeClassChanged = Signal(int)
    visibilityChanged = Signal()
    errorOccurred = Signal(str)  # an undo/redo that failed (e.g. the store went read-only)

    def __init__(self, project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.image_id: int | None = None
        self.undo_group = QUndoGroup(self)
        self._stacks: dict[int | None, QUndoStack] = {}
        classes = project.classes()
        self.active_class_id: int | None = classes[0].id if classes else None
        self.selected_ids: list[int] = []
        self.hidden_class_ids: set[int] = set()
        self.last_changed_ids: set[int] | None = None  # set while annotationsChanged runs
        self.image_missing = False  # the current image's file is gone: no edits until relinked
        # annotations as just read back by a worker write (saves views a decode), same time
        self.last_changed: dict[int, object] = {}
        # called on the worker with each annotation an edit wrote, before views learn of it
        # (a view prepares its drawing there, off the GUI thread)
        self.view_preparers: list = []
        self._edit_runner = None  # the WorkerPool big edits are written on (paint_mask_async)

    # --- image and undo stacks ------------------------------------------------------------
    def set_image(self, image_id: int | None) -> None:
        """Show another image; its own undo stack becomes the active one."""
        rec = self.project.image(image_id) if image_id is not None else None  # NotFoundError
        self.image_missing = rec is not None and not rec.abs_path.is_file()
        changed = image_id != self.image_id
        self.image_id = image_id
        self.undo_group.setActiveStack(self.undo_stack(image_id) if image_id is not None else None)
        if changed:
            self.select([])
            self.imageChanged.emit(-1 if image_id is None else int(image_id))

    def reload_image(self) -> None:
        """Show the current image again (after its file was relinked)."""
        if self.image_id is not None:
            self.image_missing = not self.project.image(self.image_id).abs_path.is_file()
            self.imageChanged.emit(int(self.image_id))

    def undo_stack(self, image_id: int | None = None) -> QUndoStack:
        """The undo stack of an image (the current one by default), created on first use."""
        key = self.image_id if image_id is None else image_id
        stack = self._stacks.get(key)
        if stack is None:
            stack = QUndoStack(self)
            stack.setUndoLimit(UNDO_LIMIT)
            self.undo_group.addStack(stack)
            self._stacks[key] = stack
        return stack

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the current image."""
        rec = self.project.image(self._require_image())
        return rec.width, rec.height

    def _require_image(self) -> int:
        if self.image_id is None:
            raise ActionError("No image is open; choose one in the image list first.")
        self._refuse_missing(self.image_id)
        return self.image_id

    # --- active class, selection, visibility -----------------------------------------------
    def set_active_class(self, class_id: int | None) -> None:
        if class_id is not None:
            self.project.class_record(class_id)
        if class_id != self.active_class_id:
            self.active_class_id = class_id
            self.activeClassChanged.emit(-1 if class_id is None else int(class_id))

    def _class_for_new(self, class_id: int | None) -> int:
        cid = class_id if class_id is not None else self.active_class_id
        if cid is None:
            raise ActionError("No class is chosen; add a class in the Classes panel first.")
        return int(cid)

    def select(self, ids: Iterable[int]) -> None:
        new = list(dict.fromkeys(int(i) for i in ids))
        if new != self.selected_ids:
            self.selected_ids = new
            self.selectionChanged.emit(list(new))

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        before = set(self.hidden_class_ids)
        if visible:
            self.hidden_class_ids.discard(class_id)
        else:
            self.hidden_class_ids.add(class_id)
        if before != self.hidden_class_ids:
            self.visibilityChanged.emit()

    def set_all_visible(self, visible: bool) -> None:
        before = set(self.hidden_class_ids)
        self.hidden_class_ids = set() if visible else {c.id for c in self.project.classes()}
        if before != self.hidden_class_ids:
            self.visibilityChanged.emit()

    def is_visible(self, class_id: int) -> bool:
        return class_id not in self.hidden_class_ids

    def notify_classes_changed(self) -> None:
        """Call after classes were added, renamed, recoloured, deleted or reordered."""
        ids = {c.id for c in self.project.classes()}
        self.hidden_class_ids &= ids
        if self.active_class_id not in ids:
            self.set_active_class(min(ids) if ids else None)
        self.classesChanged.emit()

    # --- running commands ------------------------------------------------------------------
    def _push(self, cmd: StoreCommand) -> StoreCommand:
        self._refuse_missing(cmd.image_id)
        self.flush_edits()  # an edit of the GUI thread sees the store after queued ones
        cmd.execute()  # errors propagate to the caller; nothing is pushed then
        self.undo_stack(cmd.image_id).push(cmd)
        return cmd

    def flush_edits(self) -> None:
        """Wait for edits (strokes, their undo and redo) still being written by a worker."""
        runner = self._edit_runner
        if runner is not None and runner.busy and not runner.is_shut_down:
            runner.wait()

    def write_in_worker(self, cmd: StoreCommand, forward: bool) -> dict:
        """Worker side of an edit: the store write, the touched annotations read back and
        handed to the view preparers. Returns the read-back annotations by id."""
        cmd.write(forward)
        read_back = self._read_back(cmd.touched_ids)
        for prepare in list(self.view_preparers):
            for ann in read_back.values():
                prepare(ann)
        return read_back

    def command_applied(self, cmd: StoreCommand, read_back: dict | None = None) -> None:
        """A command's store write is done: fix the selection and tell the views."""
        touched = cmd.touched_ids
        if cmd.image_id == self.image_id and touched & set(self.selected_ids):
            gone = set(touched) - set(self._existing_ids([i for i in self.selected_ids
                                                          if i in touched]))
            if gone & set(self.selected_ids):
                self.select([i for i in self.selected_ids if i not in gone])
        # Views may refresh only these ids; None (any other time) means "reload all".
        self.last_changed_ids = cmd.touched_ids
        self.last_changed = read_back or {}
        try:
            self.annotationsChanged.emit(int(cmd.image_id))
        finally:
            self.last_changed_ids = None
            self.last_changed = {}

    def _existing_ids(self, ids: Sequence[int]) -> list[int]:
        out = []
        for i in ids:
            try:
                self.project.annotation(i)
            except StudioError:
                continue
            out.append(i)
        return out

    # --- edits -----------------------------------------------------------------------------
    def add_annotation(self, kind: str, geometry, class_id: int | None = None,
                       source: str = "manual") -> int:
        image_id = self._require_image()
        item = dict(class_id=self._class_for_new(class_id), kind=kind, geometry=geometry,
                    source=source)
        cmd = self._push(AddAnnotationsCommand(self, image_id, [item], f"Add {kind}"))
        return cmd.added_ids[0]

    def delete_selection(self) -> None:
        """Delete the selected objects (one undo step)."""
        self.delete_annotations(list(self.selected_ids))

    def delete_annotations(self, ids: Sequence[int]) -> None:
        ids = [int(i) for i in ids]
        self._refuse_locked(ids)
        if ids:
            self._push(DeleteAnnotationsCommand(self, self._require_image(), ids,
                                                f"Delete {len(ids)} object(s)"))

    def set_geometry(self, ann_id: int, geometry) -> None:
        """Replace an annotation's geometry (move, resize, vertex edit): one undo step."""
        self._refuse_locked([ann_id])
        old = self.project.annotation(ann_id)
        self._push(SetGeometryCommand(self, old.image_id, ann_id, old.geometry, geometry))

    def set_geometries(self, geometries: dict[int, object], text: str = "Move") -> None:
        """Replace several geometries at once (moving a multi-selection): one undo step."""
        if not geometries:
            return
        self._refuse_locked(list(geometries))
        ops, image_id = [], None
        for ann_id, geom in geometries.items():
            old = self.project.annotation(ann_id)
            image_id = old.image_id
            ops.append(UpdateOp(ann_id, old_geometry=old.geometry, new_geometry=geom))
        self._push(StoreCommand(self, image_id, text, ops))

    def set_class(self, ids: Sequence[int], class_id: int) -> int:
        """Give the objects `ids` class `class_id` (one undo step); returns how many
        changed (those that had it already do not)."""
        self.project.class_record(class_id)
        self._refuse_locked(ids)
        changes, image_id = [], None
        for i in ids:
            ann = self.project.annotation(i)
            if ann.class_id != class_id:
                changes.append((ann.id, ann.class_id))
                image_id = ann.image_id
        if changes:
            self._push(SetClassCommand(self, image_id, changes, class_id))
        return len(changes)

    def tags(self) -> set[int]:
        """Class ids tagged on the current image."""
        if self.image_id is None:
            return set()
        return {a.class_id for a in self.project.annotations(self.image_id, kind="tag")}

    def set_tag(self, class_id: int, present: bool) -> None:
        """Switch an image-level tag on or off for the current image."""
        image_id = self._require_image()
        self.project.class_record(class_id)
        existing = [a.id for a in self.project.annotations(image_id, kind="tag")
                    if a.class_id == class_id]
        if bool(existing) == bool(present):
            return
        self._push(SetTagCommand(self, image_id, class_id, present, existing))

    def apply_mask_patch(self, ann_id: int, x: int, y: int, before: np.ndarray,
                         after: np.ndarray) -> None:
        """Replace a region of a mask object; the undo step holds only that region."""
        self._refuse_locked([ann_id])
        image_id = self.project.annotation(ann_id).image_id
        self._push(MaskPatchCommand(self, image_id, [MaskPatchOp(ann_id, x, y, before, after)]))

    def paint_mask(self, x: int, y: int, footprint: np.ndarray, *, erase: bool = False,
                   class_id: int | None = None, mode: str = "semantic",
                   preserve_others: bool = False, target_id: int | None = None,
                   text: str = "Paint") -> int | None:
        """Paint (or erase) the pixels `footprint` (bool, at x, y) as one undo step.

        The rules are studio.core.editing.plan_paint's. Returns the id of the mask painted
        into (None when erasing or nothing changed). Blocks: see paint_mask_async.
        """
        cmd, plan = self._paint_command(self._paint_args(x, y, footprint, erase, class_id, mode,
                                                         preserve_others, target_id, text))
        if cmd is None:
            return None
        self._push(cmd)
        return cmd.added_ids[0] if plan.new_mask is not None else plan.painted_id

    def paint_mask_async(self, workers, x: int, y: int, footprint: np.ndarray, *,
                         on_done=None, on_error=None, erase: bool = False,
                         class_id: int | None = None, mode: str = "semantic",
                         preserve_others: bool = False, target_id: int | None = None,
                         text: str = "Paint"):
        """paint_mask without blocking: reading the masks, planning and the store write run
        in `workers` (a WorkerPool); the undo step is pushed when the write is done, then
        on_done(id of the mask painted into, or None) runs. Returns the worker task.
        `footprint` is handed over: do not change it afterwards (it is not copied)."""
        args = self._paint_args(x, y, footprint, erase, class_id, mode, preserve_others,
                                target_id, text)
        self._edit_runner = workers

        def job():
            cmd, plan = self._paint_command(args)
            if cmd is None:
                return None
            return cmd, plan, self.write_in_worker(cmd, True)

        def done(out) -> None:
            result = None
            if out is not None:
                cmd, plan, read_back = out
                cmd.runner = workers  # its undo and redo are written there too
                cmd.written_to_stack(self.undo_stack(cmd.image_id), read_back)
                result = cmd.added_ids[0] if plan.new_mask is not None else plan.painted_id
            if on_done is not None:
                on_done(result)

        return workers.submit(job, on_result=done, on_error=on_error)

    def _paint_args(self, x, y, footprint, erase, class_id, mode, preserve_others, target_id,
                    text) -> dict:
        image_id = self._require_image()
        width, height = self.image_size()
        cid = None if (erase and mode == "instance") else self._class_for_new(class_id)
        if target_id is not None and mode == "instance" and not erase:
            self._refuse_locked([target_id])
        return dict(image_id=image_id, size=(width, height), x=x, y=y,
                    footprint=np.asarray(footprint, dtype=bool), erase=erase,
                    class_id=cid, mode=mode, preserve_others=preserve_others,
                    target_id=target_id, text=text)

    def _paint_command(self, a: dict) -> tuple[MaskPatchCommand | None, PaintPlan | None]:
        """The command of a paint (any thread: reads the store, writes nothing)."""
        clipped = clip_footprint(a["x"], a["y"], a["footprint"], *a["size"])
        if clipped is None:
            return None, None
        x0, y0, fp = clipped
        masks = self.project.annotations(a["image_id"], kind="mask")
        plan = plan_paint(masks, x0, y0, fp, erase=a["erase"], class_id=a["class_id"],
                          mode=a["mode"], preserve_others=a["preserve_others"],
                          target_id=a["target_id"])
        if plan.empty:
            return None, plan
        patches = [MaskPatchOp(p.annotation.id, p.x, p.y, p.before, p.after,
                               current=p.annotation) for p in plan.patches]
        adds = ([AddOp(a["image_id"], plan.new_class, "mask", plan.new_mask)]
                if plan.new_mask is not None else [])
        return MaskPatchCommand(self, a["image_id"], patches, adds, text=a["text"]), plan

    def _read_back(self, ids) -> dict:
        out = {}
        for i in ids:
            try:
                out[i] = self.project.annotation(i)
            except StudioError:
                continue  # deleted by the edit
        return out

    def replace_annotations(self, ids: Sequence[int], items: Sequence[dict],
                            text: str = "Convert") -> list[int]:
        """Delete `ids` and add `items` (dicts: kind, geometry, class_id) as one undo step."""
        image_id = self._require_image()
        ops = [DeleteOp(int(i)) for i in ids]
        ops += [AddOp(image_id, it["class_id"], it["kind"], it["geometry"],
                      it.get("source", "manual")) for it in items]
        cmd = self._push(StoreCommand(self, image_id, text, ops))
        return cmd.added_ids

    def convert_annotations(self, ids: Sequence[int], kind: str) -> list[int]:
        """Convert regions to "mask" or "polygon" (a mask may give several polygons)."""
        if kind not in ("mask", "polygon"):
            raise ValidationError(f"Cannot convert to {kind!r}; choose 'mask' or 'polygon'.")
        width, height = self.image_size()
        self._refuse_locked(ids)
        old, items = [], []
        for i in ids:
            ann = self.project.annotation(i)
            if ann.kind == kind or ann.kind == "tag":
                continue
            full = rasterize(ann.kind, ann.geometry, height, width)
            if kind == "mask":
                if full.any():
                    items.append(dict(kind="mask", geometry=MaskGeom.from_full(full),
                                      class_id=ann.class_id))
            else:
                for poly in mask_to_polygons(full):
                    items.append(dict(kind="polygon", geometry=poly, class_id=ann.class_id))
            old.append(ann.id)
        if not old:
            return []
        new_ids = self.replace_annotations(old, items, text=f"Convert to {kind}")
        self.select(new_ids)
        return new_ids

    # --- clipboard -------------------------------------------------------------------------
    def copy_selection(self) -> int:
        """Copy the selected objects (geometry and class); returns how many."""
        items = []
        for i in self.selected_ids:
            ann = self.project.annotation(i)
            if ann.kind != "tag":
                items.append((ann.kind, ann.geometry, ann.class_id))
        if items:
            _CLIPBOARD[:] = items
        return len(items)

    def can_paste(self) -> bool:
        return bool(_CLIPBOARD)

    def paste(self, offset: float = 0.0) -> list[int]:
        """Add the clipboard's objects to the current image (cut to its bounds), selected."""
        image_id = self._require_image()
        width, height = self.image_size()
        known = {c.id for c in self.project.classes()}
        items = []
        for kind, geom, cid in _CLIPBOARD:
            if cid not in known:
                continue
            moved = _shift_clip(kind, geom, offset, width, height)
            if moved is not None:
                items.append(dict(kind=kind, geometry=moved, class_id=cid))
        if not items:
            return []
        cmd = self._push(AddAnnotationsCommand(self, image_id, items, f"Paste {len(items)}"))
        self.select(cmd.added_ids)
        return cmd.added_ids

    def duplicate_selection(self) -> list[int]:
        """Copy and paste the selection, shifted a little so the copy is visible."""
        if not self.copy_selection():
            return []
        return self.paste(offset=PASTE_OFFSET)


def _shift_clip(kind: str, geom, d: float, width: int, height: int):
    """A geometry moved by (d, d) and cut to the image; None when nothing is left."""
    if kind == "box":
        x, y, w, h = clip_box((geom[0] + d, geom[1] + d, geom[2], geom[3]), width, height)
        return (x, y, w, h) if w > 0 and h > 0 else None
    if kind == "polygon":
        pts = np.asarray(geom, dtype=np.float64) + d
        pts[:, 0] = np.clip(pts[:, 0], 0, width)
        pts[:, 1] = np.clip(pts[:, 1], 0, height)
        return pts if np.ptp(pts[:, 0]) > 0 and np.ptp(pts[:, 1]) > 0 else None
    if kind == "mask":
        di = int(round(d))
        bitmap = crop_mask(MaskGeom(geom.x + di, geom.y + di, geom.bitmap), 0, 0, height, width)
        return MaskGeom.from_full(bitmap) if bitmap.any() else None
    return None
