"""Undoable store edits of the Inspect workspace, pushed on the document's undo stack of
the image they change (so Ctrl+Z in the Label workspace undoes them too):

- accept a post-processed mask (the whole image, or one connected component) into the
  image's annotations, as ``model:<run>`` masks, marking the image for review;
- accept a detection or instance run's kept detections (or one of them) as
  ``model:<run>`` boxes or masks with their scores, marking the image for review;
- accept or reject the model-sourced annotations a pre-labelling job stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.core.editing import crop_mask
from studio.core.errors import ActionError, DataError, NotFoundError
from studio.core.geometry import MaskGeom
from studio.core.rasterize import REGION_KINDS
from studio.gui.commands import AddOp, DeleteOp, MaskPatchOp, StoreCommand
from studio.ml.inspect.accept import SetStatusOp, model_annotation_ids
from studio.ml.postprocess.batch import model_source
from studio.ml.tasks import IGNORE_INDEX as UNLABELLED


def _push(doc, image_id: int, text: str, ops: Sequence) -> StoreCommand:
    cmd = StoreCommand(doc, image_id, text, ops)
    doc.flush_edits()  # brush strokes still being written land first
    cmd.execute()  # a failing store raises here and nothing is pushed
    doc.undo_stack(image_id).push(cmd)
    return cmd


def accept_mask(doc, image_id: int, labels: np.ndarray, class_ids: Sequence[int], run_id: int,
                region: np.ndarray | None = None, background: int | None = 0) -> StoreCommand:
    """Write `labels` (value = position in `class_ids`, 255 = unlabelled) into the image's
    annotations as one undoable command.

    Whole image (`region` None): the image's region annotations of these classes are
    replaced by one ``model:<run>`` mask per class present (the background class too, so
    the label map is complete). A region (bool mask, e.g. one connected component): its
    pixels become a ``model:<run>`` mask of their class and are cut out of the image's
    other mask annotations. Either way the image is marked for review.
    """
    project = doc.project
    labels = np.asarray(labels, np.uint8)
    rec = project.image(image_id)
    if labels.shape != (rec.height, rec.width):
        raise DataError(f"The mask ({labels.shape[1]}x{labels.shape[0]}) does not match the "
                          f"image ({rec.width}x{rec.height}); reopen the image and try again.")
    source = model_source(run_id)
    wanted = set(int(c) for c in class_ids)
    if region is None:
        old = [a.id for a in project.annotations(image_id)
               if a.kind in REGION_KINDS and a.class_id in wanted]
        ops: list = [DeleteOp(i) for i in old]
        for v in np.unique(labels):
            if v == UNLABELLED or v >= len(class_ids):
                continue
            ops.append(AddOp(image_id, int(class_ids[v]), "mask",
                             MaskGeom.from_full(labels == v), source))
        if len(ops) == len(old):
            raise ActionError("The post-processed mask is empty; nothing to accept.")
        text = f"Accept run {run_id} mask"
    else:
        region = np.asarray(region, bool)
        values = np.unique(labels[region])
        values = values[values != UNLABELLED]
        if region.shape != labels.shape or len(values) != 1:
            raise ActionError("Select one connected component of the prediction to accept.")
        ops = []
        ys, xs = np.nonzero(region)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        cut = region[y0:y1, x0:x1]
        for ann in project.annotations(image_id):
            if ann.kind != "mask":
                continue
            before = crop_mask(ann.geometry, x0, y0, y1 - y0, x1 - x0)
            if (before & cut).any():
                ops.append(MaskPatchOp(ann.id, x0, y0, before, before & ~cut, current=ann))
        ops.append(AddOp(image_id, int(class_ids[int(values[0])]), "mask",
                         MaskGeom.from_full(region), source))
        text = f"Accept run {run_id} region"
    ops.append(SetStatusOp(image_id, "review"))
    return _push(doc, image_id, text, ops)


def accept_objects(doc, image_id: int, objects: Sequence[tuple[int, str, object, float]],
                   class_ids: Sequence[int], run_id: int,
                   replace_kinds: Sequence[str] | None = None) -> StoreCommand:
    """Write detections into the image's annotations as one undoable command.

    `objects`: (class index, kind "box" (x, y, w, h) or "mask" (MaskGeom), geometry,
    score). With `replace_kinds` (accepting all kept detections) the image's objects of
    these kinds and of the run's classes are replaced, as accepting a semantic mask
    replaces its regions; without, the objects are added (one selected detection). Either
    way they are ``model:<run>`` objects with their scores and the image is marked for
    review.
    """
    project = doc.project
    source = model_source(run_id)
    ops: list = []
    if replace_kinds is not None:
        wanted, kinds = set(int(c) for c in class_ids), set(replace_kinds)
        ops += [DeleteOp(a.id) for a in project.annotations(image_id)
                if a.kind in kinds and a.class_id in wanted]
    added = 0
    for class_index, kind, geometry, score in objects:
        if kind == "mask" and geometry.area == 0:
            continue
        ops.append(AddOp(image_id, int(class_ids[int(class_index)]), kind, geometry, source,
                         float(score)))
        added += 1
    if not added:
        raise ActionError("No detection is kept at these thresholds; lower the score "
                          "threshold or select a detection to accept.")
    ops.append(SetStatusOp(image_id, "review"))
    what = "detections" if replace_kinds is not None else "detection"
    return _push(doc, image_id, f"Accept run {run_id} {what}", ops)


def accept_prelabels(doc, image_id: int, run_id: int) -> StoreCommand:
    """Keep the run's pre-labels of the image: it is marked done (undoable)."""
    if not model_annotation_ids(doc.project, image_id, run_id):
        raise NotFoundError(f"Image {image_id} has no pre-labels from run {run_id}.")
    return _push(doc, image_id, f"Accept run {run_id} pre-labels", [SetStatusOp(image_id, "done")])


def reject_prelabels(doc, image_id: int, run_id: int) -> StoreCommand:
    """Delete the run's pre-labels of the image and mark it new again (undoable)."""
    ids = model_annotation_ids(doc.project, image_id, run_id)
    if not ids:
        raise NotFoundError(f"Image {image_id} has no pre-labels from run {run_id}.")
    ops = [DeleteOp(i) for i in ids] + [SetStatusOp(image_id, "new")]
    return _push(doc, image_id, f"Reject run {run_id} pre-labels", ops)
