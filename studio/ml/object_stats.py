"""Facts about the objects of a detection or instance dataset, for the planner.

`object_stats` counts the objects of each image (the most in one image sets how many
detections a model may return and evaluation counts) and, on a sample of images, their
size (equivalent diameter, px) and the share of objects that touch or overlap another
one (crowded, touching objects are where a per-pixel method with a seeded split beats a
box-first detector; see `studio.ml.tasks.instance.split`).
"""

from __future__ import annotations

import numpy as np

from studio.core.geometry import rasterize
from studio.ml.tasks import task_kinds

SHAPE_IMAGES = 48  # images rasterised for sizes and touching


def touching_flags(label: np.ndarray) -> np.ndarray:
    """For a label map of objects 1..n (0 background), a bool per object (index k-1):
    does it touch another object (8-neighbourhood)?"""
    n = int(label.max())
    flags = np.zeros(n + 1, dtype=bool)
    h, w = label.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = label[0:h - dy, max(0, -dx):w - max(0, dx)]
        b = label[dy:h, max(0, dx):w - max(0, -dx) if dx < 0 else w]
        b = b[:, :a.shape[1]]
        meet = (a != b) & (a > 0) & (b > 0)
        flags[a[meet]] = True
        flags[b[meet]] = True
    return flags[1:]


def _image_shapes(project, record, kinds, wanted) -> tuple[list[float], int, int]:
    """(equivalent diameters, objects touching another, objects) of one image."""
    pending = record.status == "review"  # a model's objects waiting for review are no label
    anns = [a for a in project.annotations(record.id)
            if a.kind in kinds and a.class_id in wanted
            and not (pending and a.source.startswith("model:"))]
    label = np.zeros((record.height, record.width), np.int32)
    overlapping: set[int] = set()
    diameters = []
    for k, ann in enumerate(anns, 1):
        mask = rasterize(ann.kind, ann.geometry, record.height, record.width)
        area = int(mask.sum())
        if area == 0:
            continue
        under = label[mask]
        if under.any():
            overlapping.add(k)
            overlapping.update(int(v) for v in np.unique(under[under > 0]))
        label[mask] = k
        diameters.append(float(2.0 * np.sqrt(area / np.pi)))
    flags = touching_flags(label) if label.any() else np.zeros(0, bool)
    touching = {i + 1 for i in np.flatnonzero(flags)} | overlapping
    return diameters, len(touching), len(diameters)


def object_stats(project, task: str, class_ids, splits) -> dict:
    """{"images", "per_image_max", "per_image_median", "median_diameter",
    "touching_fraction", "shape_images"} of the ground-truth objects of `task` (classes
    `class_ids`) on the labelled images of `splits`: counts over every such image (no
    geometry decoded), sizes and touching over up to SHAPE_IMAGES spread evenly."""
    kinds = task_kinds(task)
    wanted = set(class_ids)
    counts: dict[int, int] = {}
    for split in splits:
        for kind in kinds:
            for image_id, class_id in project.image_classes(kind=kind, split=split,
                                                            ground_truth=True):
                if class_id in wanted:
                    counts[image_id] = counts.get(image_id, 0) + 1
    ids = sorted(counts)
    step = max(1, len(ids) // SHAPE_IMAGES)
    diameters: list[float] = []
    touching = total = 0
    shape_ids = ids[::step][:SHAPE_IMAGES]
    for image_id in shape_ids:
        d, t, n = _image_shapes(project, project.image(image_id), kinds, wanted)
        diameters += d
        touching += t
        total += n
    values = list(counts.values())
    return {"images": len(ids),
            "per_image_max": max(values, default=0),
            "per_image_median": float(np.median(values)) if values else 0.0,
            "median_diameter": float(np.median(diameters)) if diameters else 0.0,
            "touching_fraction": touching / total if total else 0.0,
            "shape_images": len(shape_ids)}
