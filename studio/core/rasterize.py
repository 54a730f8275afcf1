"""Semantic label maps derived from an image's regions (polygons and masks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.core.geometry import rasterize

REGION_KINDS = ("polygon", "mask")


def label_map(project, image_id: int, class_ids: Sequence[int], ignore_index: int = 255,
              fill: int | None = None, include_boxes: bool = False) -> np.ndarray:
    """A uint8 label map: pixel value = position of its class in `class_ids`.

    Unlabelled pixels get `ignore_index` (so partially labelled images train correctly),
    or `fill` when given (e.g. 0 for "background"). Regions are painted in annotation
    order, so a later edit wins where two regions overlap. Classes not in `class_ids`
    are left out.
    """
    if len(class_ids) > 255:
        raise ValueError("at most 255 classes fit a uint8 label map")
    img = project.image(image_id)
    out = np.full((img.height, img.width), ignore_index if fill is None else fill, dtype=np.uint8)
    index = {cid: i for i, cid in enumerate(class_ids)}
    kinds = REGION_KINDS + (("box",) if include_boxes else ())
    for ann in project.annotations(image_id):
        if ann.kind in kinds and ann.class_id in index:
            out[rasterize(ann.kind, ann.geometry, img.height, img.width)] = index[ann.class_id]
    return out
