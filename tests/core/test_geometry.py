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
    polygon_bbox,
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


def _assert_close_to_boundary(mask: np.ndarray, polys, max_px: float) -> None:
    """Every pixel where the polygons' raster and the mask differ is within max_px of the
    mask's boundary."""
    import cv2

    back = np.zeros(mask.shape, bool)
    for p in polys:
        back |= polygon_to_mask(p, *mask.shape)
    diff = back ^ mask
    m8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 5)
    assert float(np.max(np.where(diff, np.maximum(inside, outside), 0))) <= max_px + 0.5


def test_polygon_to_mask_and_back_keeps_few_vertices_without_repeats():
    from studio.core.geometry import mask_to_polygons

    pentagon = np.array([[10, 5], [60, 12], [70, 55], [30, 70], [5, 40]], float)
    mask = polygon_to_mask(pentagon, 80, 80)
    polys = mask_to_polygons(mask)
    assert len(polys) == 1
    p = polys[0]
    assert 5 <= len(p) <= 16, len(p)  # not a staircase of hundreds of corners
    assert not np.any(np.all(p == np.roll(p, 1, axis=0), axis=1))  # no repeated point
    _assert_close_to_boundary(mask, polys, 1.0)
    exact = mask_to_polygons(mask, tolerance=0)[0]  # the staircase itself, exactly
    assert np.array_equal(polygon_to_mask(exact, 80, 80), mask)
    assert not np.any(np.all(exact == np.roll(exact, 1, axis=0), axis=1))


def test_mask_to_polygons_one_pixel_and_offsets():
    from studio.core.geometry import MaskGeom, mask_geom_to_polygons, mask_to_polygons

    m = np.zeros((10, 10), bool)
    m[4, 7] = True
    (p,) = mask_to_polygons(m)
    assert sorted(map(tuple, p)) == [(7, 4), (7, 5), (8, 4), (8, 5)]
    geom = MaskGeom(100, 50, np.ones((3, 4), bool))
    (q,) = mask_geom_to_polygons(geom)
    assert polygon_bbox(q) == (100.0, 50.0, 4.0, 3.0)
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_simplify_and_drop_repeated_points():
    from studio.core.geometry import drop_repeated_points, simplify_polygon

    pts = np.array([[0, 0], [0, 0], [5, 0], [10, 0], [10, 10], [10, 10], [0, 10], [0, 0]], float)
    assert drop_repeated_points(pts).tolist() == [[0, 0], [5, 0], [10, 0], [10, 10], [0, 10]]
    assert len(simplify_polygon(pts, 0.5)) == 4
