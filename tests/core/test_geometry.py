"""Geometry conversions against pycocotools and by round trip."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from studio.core.geometry import (
    MaskGeom,
    box_to_mask,
    clip_box,
    mask_to_polygons,
    polygon_area,
    polygon_to_mask,
    rle_decode,
    rle_encode,
)


def test_rle_roundtrip_and_pycocotools_agree():
    rng = np.random.default_rng(0)
    m = rng.random((37, 53)) > 0.6
    rle = rle_encode(m)
    assert isinstance(rle["counts"], str)
    assert np.array_equal(rle_decode(rle), m)
    ref = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(ref.astype(bool), m)


def test_uncompressed_rle_decodes():
    # column-major runs: 3 zeros, 2 ones, rest zeros, for a 2x3 image
    m = rle_decode({"size": [2, 3], "counts": [3, 2, 1]})
    expected = np.zeros((2, 3), bool)
    expected.T.flat[3:5] = True
    assert np.array_equal(m, expected)


def test_maskgeom_crop_and_paste():
    full = np.zeros((20, 30), bool)
    full[3:7, 10:12] = True
    g = MaskGeom.from_full(full)
    assert (g.x, g.y, g.width, g.height) == (10, 3, 2, 4)
    assert np.array_equal(g.to_full(20, 30), full)
    assert MaskGeom.from_full(np.zeros((4, 4), bool)).area == 0
    padded = MaskGeom(9, 2, np.pad(g.bitmap, 1))
    assert padded.equals(g)


def test_polygon_rasterisation_matches_area():
    square = np.array([[2, 3], [12, 3], [12, 8], [2, 8]], float)
    m = polygon_to_mask(square, 20, 20)
    assert m.sum() == polygon_area(square) == 50
    assert m[3:8, 2:12].all()
    assert np.array_equal(box_to_mask((2, 3, 10, 5), 20, 20), m)


def test_mask_to_polygon_to_mask_is_close():
    import cv2

    m = np.zeros((64, 64), np.uint8)
    cv2.circle(m, (30, 30), 15, 1, -1)
    cv2.rectangle(m, (40, 5), (60, 12), 1, -1)
    polys = mask_to_polygons(m.astype(bool))
    assert len(polys) == 2
    back = np.zeros((64, 64), bool)
    for p in polys:
        back |= polygon_to_mask(p, 64, 64)
    inter = (back & m.astype(bool)).sum()
    union = (back | m.astype(bool)).sum()
    assert inter / union > 0.97
    # the axis-aligned rectangle comes back pixel for pixel, the circle within its rim
    assert np.array_equal(back[:20, 38:], m[:20, 38:].astype(bool))
    assert back[30, 30] and not back[30, 47] and not back[0, 0]


def test_clip_box():
    assert clip_box((-5, -5, 20, 20), 10, 8) == (0, 0, 10, 8)
    assert clip_box((50, 50, 5, 5), 10, 8) == (10, 8, 0, 0)
