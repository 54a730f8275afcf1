"""The label-offset probe of the fingerprint and the flips the plan keeps because of it."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from testutil import write_png

from studio.core.geometry import MaskGeom
from studio.ml.fingerprint import OFFSET_REACH, fingerprint, label_offset, offset_limit
from studio.ml.plan import plan_from_fingerprint

FLIPS = ("hflip", "vflip", "rotation")


def flips_on(plan) -> list[str]:
    return [op for op in FLIPS if plan.config["augment"][op]["enabled"]]


def blocky(rng, size: int = 48, block: int = 6) -> np.ndarray:
    return np.kron(rng.random((size // block, size // block)) > 0.5, np.ones((block, block), bool))


@pytest.mark.parametrize("seed", range(6))
def test_one_labelled_image_beside_an_unlabelled_one_measures_its_true_offset(
        project, tmp_path, seed):
    """A 48-px project, one image labelled one row above its blocks, one image unlabelled:
    the probe measured up to thousands of pixels (a parabola through a slope), or nothing."""
    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(seed)
    project.add_image(write_png(tmp_path / "a_unlabelled.png",
                                rng.integers(0, 256, (48, 48), dtype=np.uint8)), split="train")
    blocks = blocky(rng)
    iid, _ = project.add_image(write_png(tmp_path / "b.png",
                                         np.where(blocks, 200, 40).astype(np.uint8)),
                               split="train")
    mask = np.roll(blocks, -1, axis=0)
    project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
    project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))
    offset = fingerprint(project, device="cpu")["label_offset"]
    assert offset["images"] == 1  # the unlabelled image is not measured
    assert offset["rows"] == pytest.approx(1.0, abs=0.15)
    assert abs(offset["cols"]) < 0.15


def test_probe_stays_within_its_reach_and_finds_whole_pixel_shifts():
    rng = np.random.default_rng(7)
    for shift in (-3, -2, -1, 0, 1, 2, 3, 5):
        for _ in range(4):
            blocks = blocky(rng, 60, 5)
            image = np.where(blocks, 190, 30).astype(np.uint8)
            labels = np.roll(blocks, -shift, axis=0).astype(np.uint8)
            rows, cols, strength = label_offset(image, labels, 1)
            assert abs(rows) <= OFFSET_REACH and abs(cols) <= OFFSET_REACH
            if abs(shift) > OFFSET_REACH:  # beyond the search: at least its reach
                assert rows == OFFSET_REACH * np.sign(shift)
                continue
            assert rows == pytest.approx(shift, abs=0.15), (shift, rows)
            assert abs(cols) < 0.15 and strength > 0.5
    flat = np.full((40, 40), 9, np.uint8)
    labels = np.zeros((40, 40), np.uint8)
    labels[10:20, 10:20] = 1
    assert label_offset(flat, labels, 1) is None  # the mask follows no intensity
    assert label_offset(flat[:7, :7], labels[:7, :7], 1) is None  # too small to shift


def test_offset_limit_is_a_whole_pixel_or_a_share_of_the_thinnest_objects():
    assert offset_limit({"a": None, "b": None}) == 1.0
    assert offset_limit({"a": 6.0, "b": 12.0}) == 1.0
    assert offset_limit({"a": 60.0, "b": 200.0}) == 3.0  # 5 % of 60 px


def _shifted_fingerprint(project, tmp_path, rows: float, diameter: float) -> dict:
    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(0)
    for i in range(3):
        blocks = blocky(rng)
        iid, _ = project.add_image(write_png(tmp_path / f"m{i}.png",
                                             np.where(blocks, 200, 40).astype(np.uint8)),
                                   split="train")
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(blocks))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~blocks))
    fp = copy.deepcopy(fingerprint(project, device="cpu"))
    fp["objects"]["median_diameter"] = {"background": diameter, "foreground": diameter}
    fp["label_offset"].update(rows=rows, cols=0.0, agreement_rows=1.0, agreement_cols=1.0,
                              limit_px=offset_limit(fp["objects"]["median_diameter"]))
    return fp


def test_a_sub_pixel_offset_keeps_every_flip_when_the_answer_is_yes(project, tmp_path):
    fp = _shifted_fingerprint(project, tmp_path, rows=0.6, diameter=23.0)
    plan = plan_from_fingerprint(fp, "yes")
    assert flips_on(plan) == list(FLIPS)
    assert plan.questions[0].note == ""  # nothing departs from the answer
    assert "0.6 px" not in " ".join(plan.reasons.values())


def test_an_offset_is_weighed_against_the_object_size(project, tmp_path):
    small = plan_from_fingerprint(_shifted_fingerprint(project, tmp_path, 1.5, 10.0), "yes")
    assert flips_on(small) == ["hflip"]  # 1.5 px on 10 px objects: the up-down flip is off
    assert "1.5 px above" in small.reasons["augment.vflip"]
    assert "1 px or more" in small.reasons["augment.hflip"]
    assert "in 3 images measured" in small.questions[0].note
    large = plan_from_fingerprint(_shifted_fingerprint(project, tmp_path, 1.5, 60.0), "yes")
    assert flips_on(large) == list(FLIPS)  # 1.5 px on 60 px objects: below 3 px


def test_isbi_membranes_keep_flips_and_rotation_when_the_answer_is_yes(
        project, tmp_path, shared_datasets):
    from studio.core.formats import import_dataset

    source = shared_datasets / "isbi2012_membrane" / "train"
    subset = tmp_path / "isbi"
    for folder in ("image", "label"):
        (subset / folder).mkdir(parents=True)
        for i in range(6):
            shutil.copy(source / folder / f"{i}.png", subset / folder / f"{i}.png")
    import_dataset(project, "masks", Path(subset), classes={0: "membrane", 255: "cell"})
    for image in project.images():
        project.set_split(image.id, "train")
    fp = fingerprint(project, "semantic", device="cpu")
    offset = fp["label_offset"]
    assert offset["images"] == 6
    # ISBI's labels sit a fraction of a pixel off the membranes: no reason to refuse flips
    assert abs(offset["rows"]) < 1.0 and abs(offset["cols"]) < 1.0
    plan = plan_from_fingerprint(fp, "yes")
    assert flips_on(plan) == list(FLIPS)
    assert plan.config["tta"] is True and plan.questions[0].note == ""
