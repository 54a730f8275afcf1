"""Instance mask folders (DSB layout, label images): import, bad input, round trips."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from testutil import write_png

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.instances import _label_objects
from studio.core.geometry import MaskGeom
from studio.core.project import Project

from . import assert_same_annotations


def _dsb_sample(root: Path, name: str, shape=(16, 20), boxes=((1, 1, 5, 4), (8, 6, 6, 6)),
                seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    write_png(root / name / "images" / f"{name}.png",
              rng.integers(0, 256, (*shape, 4), dtype=np.uint8))  # RGBA, as some DSB images
    masks = []
    for k, (x, y, w, h) in enumerate(boxes):
        m = np.zeros(shape, np.uint8)
        m[y:y + h, x:x + w] = 255
        write_png(root / name / "masks" / f"m{k}.png", m)
        masks.append(m > 0)
    return masks


def _full_masks(project, image_id):
    rec = project.image(image_id)
    return [a.geometry.to_full(rec.height, rec.width) for a in project.annotations(image_id)]


def test_dsb_layout(project, tmp_path):
    expected = {n: _dsb_sample(tmp_path / "dsb", n, seed=i) for i, n in enumerate(["s1", "s2"])}
    report = import_dataset(project, "instances", tmp_path / "dsb")
    assert report.images == 2 and report.annotations_by_kind == {"mask": 4}
    assert [c.name for c in project.classes()] == ["nucleus"]
    for img in project.images():
        got = _full_masks(project, img.id)
        assert len(got) == 2
        for g, want in zip(got, expected[img.abs_path.stem], strict=True):
            assert np.array_equal(g, want)


def test_one_sample_folder_and_class_name(project, tmp_path):
    _dsb_sample(tmp_path, "one")
    report = import_dataset(project, "instances", tmp_path / "one", class_name="cell")
    assert report.annotations_by_class == {"cell": 2}


def test_bad_masks_are_skipped(project, tmp_path):
    _dsb_sample(tmp_path / "dsb", "s1")
    write_png(tmp_path / "dsb" / "s1" / "masks" / "empty.png", np.zeros((16, 20), np.uint8))
    write_png(tmp_path / "dsb" / "s1" / "masks" / "small.png", np.ones((4, 4), np.uint8))
    (tmp_path / "dsb" / "s1" / "masks" / "junk.png").write_bytes(b"not a png")
    report = import_dataset(project, "instances", tmp_path / "dsb")
    reasons = dict(report.skipped)
    assert reasons["s1/masks/empty.png"] == "empty mask"
    assert "mask is 4x4 but the image is 20x16" in reasons["s1/masks/small.png"]
    assert "junk.png" in reasons["s1/masks/junk.png"]
    assert report.annotations == 2


def test_no_samples(project, tmp_path):
    (tmp_path / "nothing" / "x").mkdir(parents=True)
    with pytest.raises(FormatError, match="No images found in"):
        import_dataset(project, "instances", tmp_path / "nothing")


def test_label_objects_one_per_value():
    label = np.zeros((6, 8), np.uint16)
    label[1:3, 1:4] = 7
    label[4:6, 5:8] = 300
    objs = _label_objects(label)
    assert [o.equals(MaskGeom.from_full(label == v)) for o, v in zip(objs, (7, 300),
                                                                      strict=True)] == [True] * 2


def test_label_image_folder(project, tmp_path):
    label = np.zeros((12, 14), np.uint16)
    label[1:4, 1:5] = 1
    label[6:11, 6:13] = 1000
    write_png(tmp_path / "ds" / "images" / "a.png", np.full((12, 14), 50, np.uint8))
    (tmp_path / "ds" / "labels").mkdir()
    assert cv2.imwrite(str(tmp_path / "ds" / "labels" / "a.tif"), label)
    report = import_dataset(project, "instances", tmp_path / "ds")
    assert report.annotations == 2
    img = project.images()[0]
    got = _full_masks(project, img.id)
    assert np.array_equal(got[0], label == 1) and np.array_equal(got[1], label == 1000)


def test_round_trip(project, tmp_path):
    _dsb_sample(tmp_path / "dsb", "s1")
    _dsb_sample(tmp_path / "dsb", "s2", boxes=((0, 0, 3, 3),), seed=1)
    import_dataset(project, "instances", tmp_path / "dsb")
    cls = project.class_by_name("nucleus").id
    project.add_annotation(project.image_ids()[0], cls, "polygon",
                           [[10, 10], [18, 10], [18, 15]])  # exported as its pixels
    report = export_dataset(project, "instances", tmp_path / "out")
    assert report.images == 2 and report.annotations == 4
    assert sorted(p.name for p in (tmp_path / "out" / "s1" / "masks").iterdir()) == [
        "s1_0.png", "s1_1.png", "s1_2.png"]
    with Project.create(tmp_path / "again") as again:
        import_dataset(again, "instances", tmp_path / "out")
        assert_same_annotations(project, again, kind_map={"polygon": "mask"})


def test_stardist_label_image_pair(shared_datasets, tmp_path):
    folder = shared_datasets / "stardist_example"
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "instances", folder / "mask2d.tif",
                                images_dir=folder / "img2d.tif")
        label = cv2.imread(str(folder / "mask2d.tif"), cv2.IMREAD_UNCHANGED)
        assert report.images == 1
        assert report.annotations == len(np.unique(label)) - 1 == 125
        image_id = project.image_ids()[0]
        union = np.any(_full_masks(project, image_id), axis=0)
        assert np.array_equal(union, label > 0)


@pytest.mark.slow
def test_dsb2018_nuclei(shared_datasets, tmp_path):
    """All 65 images and 4,152 nuclei; a round trip on a few samples keeps the test quick."""
    source = shared_datasets / "dsb2018_nuclei" / "stage1_test"
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "instances", source)
        assert (report.images, report.annotations) == (65, 4152)
        assert report.skipped == []
    subset = tmp_path / "subset"
    for sample in sorted(source.iterdir())[:4]:
        shutil.copytree(sample, subset / sample.name)
    with Project.create(tmp_path / "q") as project, Project.create(tmp_path / "r") as again:
        import_dataset(project, "instances", subset)
        export_dataset(project, "instances", tmp_path / "out")
        import_dataset(again, "instances", tmp_path / "out")
        assert_same_annotations(project, again)
