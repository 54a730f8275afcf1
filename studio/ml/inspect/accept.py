"""Store edits that accept a model's output into an image's labels, without Qt: the
operations (`redo(project)` / `undo(project)`, as the GUI's undo commands hold them) and
the rules that pick what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from studio.core.editing import crop_mask
from studio.core.errors import ActionError, DataError
from studio.core.geometry import MaskGeom
from studio.core.rasterize import REGION_KINDS
from studio.ml.postprocess.batch import model_source
from studio.ml.tasks import IGNORE_INDEX as UNLABELLED


class SetStatusOp:
    """Set an image's status; undo restores the one it had."""

    ann_id = None

    def __init__(self, image_id: int, status: str) -> None:
        self.image_id, self.status = int(image_id), status
        self._old: str | None = None

    def redo(self, project) -> None:
        self._old = project.image(self.image_id).status
        project.set_status(self.image_id, self.status)

    def undo(self, project) -> None:
        if self._old is not None:
            project.set_status(self.image_id, self._old)


def component_at(labels: np.ndarray, x: int, y: int, background: int | None = 0
                 ) -> np.ndarray | None:
    """The connected component (8-connected, one class) under pixel (x, y), or None on
    background / unlabelled pixels."""
    h, w = labels.shape
    if not (0 <= x < w and 0 <= y < h):
        return None
    value = int(labels[y, x])
    if value == UNLABELLED or value == background:
        return None
    _n, comp = cv2.connectedComponents((labels == value).astype(np.uint8), connectivity=8)
    return comp == comp[y, x]


def model_annotation_ids(project, image_id: int, run_id: int) -> list[int]:
    source = model_source(run_id)
    return [a.id for a in project.annotations(image_id) if a.source == source]


def is_human(annotation) -> bool:
    """Drawn or imported by a person (source ``manual`` or ``import:<format>``), not a
    model's output."""
    return not str(annotation.source).startswith("model:")


@dataclass
class AcceptPlan:
    """What accepting a model's output changes in one image's annotations, planned from
    the store without changing it. The GUI turns it into one undo command; `human` says
    how many annotations drawn or imported by a person it deletes or cuts (ask first)."""

    image_id: int
    text: str
    deletes: list[int] = field(default_factory=list)
    # (annotation as read, x0, y0, before, after): a mask's rectangle cut
    patches: list[tuple] = field(default_factory=list)
    # (class id, kind, geometry, source, score)
    adds: list[tuple[int, str, object, str, float | None]] = field(default_factory=list)
    status: str = "review"
    human: int = 0


def plan_accept_mask(project, image_id: int, labels: np.ndarray, class_ids: Sequence[int],
                     run_id: int, region: np.ndarray | None = None) -> AcceptPlan:
    """Plan writing `labels` (value = position in `class_ids`, 255 = unlabelled) into the
    image's annotations.

    Whole image (`region` None): the image's region annotations of these classes are
    replaced by one ``model:<run>`` mask per class present (every class, so the label map
    is complete). A region (bool mask, e.g. one connected component): its pixels become a
    ``model:<run>`` mask of their class and are cut out of the image's other mask
    annotations. Either way the image is marked for review.
    """
    labels = np.asarray(labels, np.uint8)
    rec = project.image(image_id)
    if labels.shape != (rec.height, rec.width):
        raise DataError(f"The mask ({labels.shape[1]}x{labels.shape[0]}) does not match the "
                        f"image ({rec.width}x{rec.height}); reopen the image and try again.")
    source = model_source(run_id)
    plan = AcceptPlan(int(image_id), "")
    if region is None:
        wanted = set(int(c) for c in class_ids)
        old = [a for a in project.annotations(image_id)
               if a.kind in REGION_KINDS and a.class_id in wanted]
        plan.deletes = [a.id for a in old]
        plan.human = sum(is_human(a) for a in old)
        for v in np.unique(labels):
            if v == UNLABELLED or v >= len(class_ids):
                continue
            plan.adds.append((int(class_ids[v]), "mask", MaskGeom.from_full(labels == v),
                              source, None))
        if not plan.adds:
            raise ActionError("The post-processed mask is empty; nothing to accept.")
        plan.text = f"Accept run {run_id} mask"
        return plan
    region = np.asarray(region, bool)
    values = np.unique(labels[region]) if region.shape == labels.shape else np.zeros(0)
    values = values[values != UNLABELLED]
    if region.shape != labels.shape or len(values) != 1:
        raise ActionError("Select one connected component of the prediction to accept.")
    ys, xs = np.nonzero(region)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    cut = region[y0:y1, x0:x1]
    for ann in project.annotations(image_id):
        if ann.kind != "mask":
            continue
        before = crop_mask(ann.geometry, x0, y0, y1 - y0, x1 - x0)
        if (before & cut).any():
            plan.patches.append((ann, int(x0), int(y0), before, before & ~cut))
            plan.human += is_human(ann)
    plan.adds.append((int(class_ids[int(values[0])]), "mask", MaskGeom.from_full(region),
                      source, None))
    plan.text = f"Accept run {run_id} region"
    return plan


def plan_accept_objects(project, image_id: int,
                        objects: Sequence[tuple[int, str, object, float]],
                        class_ids: Sequence[int], run_id: int,
                        replace_kinds: Sequence[str] | None = None) -> AcceptPlan:
    """Plan writing detections into the image's annotations.

    `objects`: (class index, kind "box" (x, y, w, h) or "mask" (MaskGeom), geometry,
    score). With `replace_kinds` (accepting all kept detections) the image's objects of
    these kinds and of the run's classes are replaced; without, the objects are added
    (one selected detection). Either way they are ``model:<run>`` objects with their
    scores and the image is marked for review.
    """
    source = model_source(run_id)
    plan = AcceptPlan(int(image_id), "")
    if replace_kinds is not None:
        wanted, kinds = set(int(c) for c in class_ids), set(replace_kinds)
        old = [a for a in project.annotations(image_id)
               if a.kind in kinds and a.class_id in wanted]
        plan.deletes = [a.id for a in old]
        plan.human = sum(is_human(a) for a in old)
    for class_index, kind, geometry, score in objects:
        if kind == "mask" and geometry.area == 0:
            continue
        plan.adds.append((int(class_ids[int(class_index)]), kind, geometry, source,
                          float(score)))
    if not plan.adds:
        raise ActionError("No detection is kept at these thresholds; lower the score "
                          "threshold or select a detection to accept.")
    what = "detections" if replace_kinds is not None else "detection"
    plan.text = f"Accept run {run_id} {what}"
    return plan
