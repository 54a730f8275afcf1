"""Helpers shared by the format tests: compare two projects' annotations image by image."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from studio.core.geometry import rasterize


def annotations_by_image(project) -> dict[str, dict]:
    """{image sha256: {(class name, kind): [geometry, ...]}} plus each image's size."""
    names = {c.id: c.name for c in project.classes()}
    out = {}
    for rec in project.images():
        groups = defaultdict(list)
        for ann in project.annotations(rec.id):
            groups[(names[ann.class_id], ann.kind)].append(ann.geometry)
        out[rec.sha256] = {"size": (rec.height, rec.width), "groups": dict(groups),
                           "split": rec.split}
    return out


def _region_key(mask: np.ndarray) -> tuple:
    ys, xs = np.nonzero(mask)
    return (int(mask.sum()), int(ys.min()) if ys.size else -1, int(xs.min()) if xs.size else -1)


def assert_same_annotations(a, b, kind_map: dict | None = None, box_tol: float = 0.5,
                            min_iou: float = 1.0, check_splits: bool = True) -> None:
    """Same images (by content), classes, counts; boxes within `box_tol` px, regions
    pixel-equal (or IoU >= `min_iou`). `kind_map` says what a kind becomes in `b`."""
    kind_map = kind_map or {}
    ann_a, ann_b = annotations_by_image(a), annotations_by_image(b)
    assert set(ann_a) == set(ann_b), "the projects hold different images"
    for sha, img in ann_a.items():
        other = ann_b[sha]
        h, w = img["size"]
        if check_splits:
            assert img["split"] == other["split"], f"split of image {sha[:8]} differs"
        expected = defaultdict(list)
        for (name, kind), geoms in img["groups"].items():
            expected[(name, kind_map.get(kind, kind))] += [(kind, g) for g in geoms]
        assert {k: len(v) for k, v in expected.items()} == {
            k: len(v) for k, v in other["groups"].items()}, f"counts differ on image {sha[:8]}"
        for (name, kind), items in expected.items():
            got = other["groups"][(name, kind)]
            if kind == "tag":
                continue
            if kind == "box":
                want_boxes = sorted(tuple(g) for _, g in items)
                got_boxes = sorted(tuple(g) for g in got)
                np.testing.assert_allclose(got_boxes, want_boxes, atol=box_tol)
                continue
            want = sorted((rasterize(k, g, h, w) for k, g in items), key=_region_key)
            have = sorted((rasterize(kind, g, h, w) for g in got), key=_region_key)
            for m1, m2 in zip(want, have, strict=True):
                if min_iou >= 1.0:
                    assert np.array_equal(m1, m2), f"{name} region differs on image {sha[:8]}"
                else:
                    iou = (m1 & m2).sum() / max((m1 | m2).sum(), 1)
                    assert iou >= min_iou, f"{name} region IoU {iou:.3f} on image {sha[:8]}"
