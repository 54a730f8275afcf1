"""Editing rules of the labelling tools, free of any GUI: mask patches and paint planning.

The canvas hands a painted footprint (a bool array at x, y) to `plan_paint`, which reads
the image's masks from the store and says which masks change where and which new mask is
added, under the semantic or instance rules. It runs in a worker (big masks take time to
decode); the GUI turns the plan into one undo step. `mark_edited` is the rule that the
first edit of an image starts it ("new" -> "in_progress").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.core.errors import ValidationError
from studio.core.geometry import MaskGeom
from studio.core.project_annotations import Annotation

PAINT_MODES = ("semantic", "instance")


def paste_patch(geom: MaskGeom | None, x: int, y: int, patch: np.ndarray) -> MaskGeom:
    """`geom` with the rectangle at (x, y) replaced by `patch` (bool); grows as needed.

    A patch inside the mask's box is written in place (no full-size copy): pass a geometry
    you own, such as one just read from the store. The result may not be tightly cropped
    (the store crops it when saving).
    """
    patch = np.asarray(patch, dtype=bool)
    ph, pw = patch.shape
    if geom is None or geom.bitmap.size == 0:
        return MaskGeom(int(x), int(y), patch.copy())
    if (x >= geom.x and y >= geom.y and x + pw <= geom.x + geom.width
            and y + ph <= geom.y + geom.height and geom.bitmap.flags.writeable):
        geom.bitmap[y - geom.y:y - geom.y + ph, x - geom.x:x - geom.x + pw] = patch
        return geom
    x0, y0 = min(geom.x, x), min(geom.y, y)
    x1, y1 = max(geom.x + geom.width, x + pw), max(geom.y + geom.height, y + ph)
    # keep the bitmap's memory order (masks decoded from RLE are column-major)
    order = "F" if geom.bitmap.flags.f_contiguous and not geom.bitmap.flags.c_contiguous else "C"
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool, order=order)
    out[geom.y - y0:geom.y - y0 + geom.height, geom.x - x0:geom.x - x0 + geom.width] = geom.bitmap
    out[y - y0:y - y0 + ph, x - x0:x - x0 + pw] = patch
    return MaskGeom(x0, y0, out)


def crop_mask(geom: MaskGeom | None, x: int, y: int, h: int, w: int) -> np.ndarray:
    """The pixels of `geom` inside the rectangle (x, y, w, h) as a bool array h x w."""
    out = np.zeros((h, w), dtype=bool)
    if geom is None or geom.bitmap.size == 0:
        return out
    ax0, ay0 = max(x, geom.x), max(y, geom.y)
    ax1, ay1 = min(x + w, geom.x + geom.width), min(y + h, geom.y + geom.height)
    if ax1 > ax0 and ay1 > ay0:
        out[ay0 - y:ay1 - y, ax0 - x:ax1 - x] = geom.bitmap[ay0 - geom.y:ay1 - geom.y,
                                                           ax0 - geom.x:ax1 - geom.x]
    return out


def clip_footprint(x: int, y: int, footprint: np.ndarray, width: int,
                   height: int) -> tuple[int, int, np.ndarray] | None:
    """The part of a footprint inside the image, as (x0, y0, bool array); None if empty."""
    fp = np.asarray(footprint, dtype=bool)
    x, y = int(x), int(y)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + fp.shape[1], width), min(y + fp.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return None
    fp = fp[y0 - y:y1 - y, x0 - x:x1 - x]
    return (x0, y0, fp) if fp.any() else None


@dataclass
class MaskPatch:
    """Replace (x, y, before.shape) of mask `annotation` by `after`."""

    annotation: Annotation
    x: int
    y: int
    before: np.ndarray
    after: np.ndarray


@dataclass
class PaintPlan:
    """What a paint or erase changes: patches of existing masks and at most one new mask."""

    patches: list[MaskPatch] = field(default_factory=list)
    new_mask: MaskGeom | None = None
    new_class: int | None = None
    painted_id: int | None = None  # existing mask painted into, if any

    @property
    def empty(self) -> bool:
        return not self.patches and self.new_mask is None


def plan_paint(masks: list[Annotation], x: int, y: int, fp: np.ndarray, *, erase: bool,
               class_id: int | None, mode: str, preserve_others: bool = False,
               target_id: int | None = None) -> PaintPlan:
    """The edits that painting (or erasing) footprint `fp` at (x, y) makes to `masks`.

    semantic: painting class C adds the pixels to C's mask (a new one if none) and, unless
    `preserve_others`, removes them from other classes' masks; erasing clears them from
    every mask (only C's with `preserve_others`).
    instance: painting adds to mask `target_id` (or makes a new object of class C);
    erasing clears `target_id` (or every mask when none is given).
    """
    if mode not in PAINT_MODES:
        raise ValidationError(f"Unknown paint mode {mode!r}; use 'semantic' or 'instance'.")
    h, w = fp.shape
    plan = PaintPlan()

    def patch(ann: Annotation, paint: bool) -> None:
        if getattr(ann, "locked", False):  # a locked mask keeps its pixels
            return
        before = crop_mask(ann.geometry, x, y, h, w)
        after = (before | fp) if paint else (before & ~fp)
        if not np.array_equal(before, after):
            plan.patches.append(MaskPatch(ann, x, y, before, after))

    def add() -> None:
        plan.new_mask, plan.new_class = MaskGeom(x, y, fp.copy()), class_id

    if mode == "semantic":
        own = [a for a in masks if a.class_id == class_id]
        if erase:
            for a in (own if preserve_others else masks):
                patch(a, False)
            return plan
        if own:
            patch(own[0], True)
            plan.painted_id = own[0].id
        else:
            add()
        if not preserve_others:
            for a in masks:
                if a.class_id != class_id:
                    patch(a, False)
        return plan
    target = next((a for a in masks if a.id == target_id), None) if target_id is not None else None
    if erase:
        for a in ([target] if target is not None else masks):
            patch(a, False)
    elif target is not None:
        patch(target, True)
        plan.painted_id = target.id
    else:
        add()
    return plan


def mark_edited(project, image_id: int) -> bool:
    """The first edit of a "new" image makes it "in_progress"; True when it changed."""
    if project.image(image_id).status != "new":
        return False
    project.set_status(image_id, "in_progress")
    return True
