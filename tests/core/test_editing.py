"""Editing rules below the GUI: mask patches, paint planning, the first-edit status rule."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.editing import (
    clip_footprint,
    crop_mask,
    mark_edited,
    paste_patch,
    plan_paint,
)
from studio.core.errors import StudioError
from studio.core.geometry import MaskGeom


def test_patch_helpers():
    g = MaskGeom(5, 5, np.ones((2, 2), bool))
    grown = paste_patch(g, 0, 0, np.eye(3, dtype=bool))
    assert grown.to_full(8, 8).sum() == 3 + 4 - 0  # (2,2) of the eye is inside the old mask
    assert crop_mask(grown, 4, 4, 4, 4)[1:3, 1:3].all()
    assert not paste_patch(None, 3, 3, np.zeros((2, 2), bool)).bitmap.any()
    inside = MaskGeom(0, 0, np.zeros((4, 4), bool))
    assert paste_patch(inside, 1, 1, np.ones((2, 2), bool)) is inside  # in place
    column_major = MaskGeom(2, 2, np.asfortranarray(np.ones((3, 2), bool)))
    assert paste_patch(column_major, 0, 0, np.ones((1, 1), bool)).bitmap.flags.f_contiguous


def test_clip_footprint_to_the_image():
    fp = np.ones((4, 4), bool)
    assert clip_footprint(-2, -2, fp, 10, 10)[2].shape == (2, 2)
    assert clip_footprint(20, 20, fp, 10, 10) is None
    assert clip_footprint(0, 0, np.zeros((3, 3), bool), 10, 10) is None


def _masks(project, image_id):
    return project.annotations(image_id, kind="mask")


def test_plan_paint_semantic_and_instance(project, make_image):
    image_id, _ = project.add_image(make_image("a.png", 20, 20))
    a, b = project.add_class("a"), project.add_class("b")
    first = np.zeros((20, 20), bool)
    first[:10, :10] = True
    a_id = project.add_annotation(image_id, a, "mask", MaskGeom.from_full(first))
    fp = np.ones((4, 4), bool)
    # semantic, class b over a's pixels: a new mask for b, a loses those pixels
    plan = plan_paint(_masks(project, image_id), 8, 8, fp, erase=False, class_id=b,
                      mode="semantic")
    assert plan.new_class == b and plan.new_mask.bitmap.sum() == 16
    (patch,) = plan.patches
    assert patch.annotation.id == a_id and patch.before.sum() == 4 and not patch.after.any()
    # preserve others: a keeps its pixels
    plan = plan_paint(_masks(project, image_id), 8, 8, fp, erase=False, class_id=b,
                      mode="semantic", preserve_others=True)
    assert not plan.patches
    # semantic paint of a's own class grows a's mask, nothing new
    plan = plan_paint(_masks(project, image_id), 8, 8, fp, erase=False, class_id=a,
                      mode="semantic")
    assert plan.new_mask is None and plan.painted_id == a_id
    # instance: without a target a new object, with one it grows
    plan = plan_paint(_masks(project, image_id), 15, 15, fp, erase=False, class_id=a,
                      mode="instance")
    assert plan.new_mask is not None and not plan.patches
    plan = plan_paint(_masks(project, image_id), 15, 15, fp, erase=False, class_id=a,
                      mode="instance", target_id=a_id)
    assert plan.painted_id == a_id and plan.patches[0].after.all()
    # erasing where nothing is painted changes nothing
    plan = plan_paint(_masks(project, image_id), 15, 15, fp, erase=True, class_id=None,
                      mode="instance")
    assert plan.empty
    with pytest.raises(StudioError, match="paint mode"):
        plan_paint([], 0, 0, fp, erase=False, class_id=a, mode="bogus")


def test_first_edit_marks_the_image_in_progress(project, make_image):
    image_id, _ = project.add_image(make_image("a.png", 8, 8))
    assert mark_edited(project, image_id)
    assert project.image(image_id).status == "in_progress"
    assert not mark_edited(project, image_id)  # only the first edit
    project.set_status(image_id, "done")
    assert not mark_edited(project, image_id)  # a finished image stays done
    assert project.image(image_id).status == "done"
