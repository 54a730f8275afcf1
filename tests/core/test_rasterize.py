"""Semantic label maps from regions: order, ignore index, fill, class subsets."""

from __future__ import annotations

import numpy as np

from studio.core.geometry import MaskGeom
from studio.core.rasterize import label_map


def test_label_map_paints_regions_in_order(project, make_image):
    img, _ = project.add_image(make_image(height=20, width=30))
    a, b, c = project.add_class("a"), project.add_class("b"), project.add_class("c")
    project.add_annotation(img, a, "polygon", [[0, 0], [10, 0], [10, 10], [0, 10]])
    m = np.zeros((20, 30), bool)
    m[5:15, 5:15] = True
    project.add_annotation(img, b, "mask", MaskGeom.from_full(m))
    project.add_annotation(img, c, "box", (20, 0, 5, 5))  # boxes are no regions by default
    project.add_annotation(img, a, "tag")
    lm = label_map(project, img, [a, b])
    assert lm.dtype == np.uint8 and lm.shape == (20, 30)
    assert lm[0, 0] == 0 and lm[7, 7] == 1  # later annotation wins the overlap
    assert lm[19, 29] == 255 and lm[2, 22] == 255
    assert (lm == 0).sum() == 100 - 25
    lm2 = label_map(project, img, [b, a], fill=7, include_boxes=False)
    assert lm2[19, 29] == 7 and lm2[0, 0] == 1 and lm2[7, 7] == 0
    lm3 = label_map(project, img, [c], include_boxes=True)
    assert (lm3 == 0).sum() == 25
