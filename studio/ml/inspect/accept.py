"""Store edits that accept a model's output into an image's labels, without Qt: the
operations (`redo(project)` / `undo(project)`, as the GUI's undo commands hold them) and
the rules that pick what is accepted.
"""

from __future__ import annotations

import cv2
import numpy as np

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
