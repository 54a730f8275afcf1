"""COCO import/export: geometry kinds, bad input, safety, real datasets, round trips."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.coco import decode_rle_checked, rle_counts_from_string
from studio.core.geometry import MaskGeom, polygon_to_mask
from studio.core.project import Project

from . import assert_same_annotations

REPO = Path(__file__).resolve().parents[3]


def write_coco(folder: Path, data: dict, name: str = "annotations.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def minimal(images, annotations, categories=None) -> dict:
    return {"images": images, "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "thing"}]}


@pytest.fixture
def mini(test_data) -> Path:
    return test_data / "coco" / "mini" / "annotations.json"


# --- import: geometry kinds -----------------------------------------------------------------
def test_import_mini_kinds_and_classes(project, mini):
    report = import_dataset(project, "coco", mini)
    assert report.images == 2 and not report.skipped
    assert dict(report.annotations_by_kind) == {"box": 1, "polygon": 1, "mask": 3}
    # categories keep their names; ids 3 and 7 are not contiguous; unused category not created
    assert [c.name for c in project.classes()] == ["cell", "nucleus"]
    cls = {c.name: c.id for c in project.classes()}
    a, b = project.images()
    assert a.name == "a.png" and b.name == "b.png"
    anns = project.annotations(a.id)
    assert [x.kind for x in anns] == ["box", "polygon", "mask"]
    assert anns[0].geometry == (2.0, 3.0, 10.0, 8.0) and anns[0].class_id == cls["cell"]
    assert anns[0].source == "import:coco"
    np.testing.assert_allclose(anns[1].geometry, [[5, 5], [20, 5], [20, 15], [5, 15]])
    # multi-part polygon -> one mask from the union of both squares
    expected = np.zeros((30, 40), bool)
    expected[2:6, 24:28] = True
    expected[20:26, 30:38] = True
    assert np.array_equal(anns[2].geometry.to_full(30, 40), expected)
    # compressed RLE (with its score) and list-counts crowd RLE -> masks
    rle_mask, crowd = project.annotations(b.id)
    want = np.zeros((24, 32), bool)
    want[4:10, 6:16] = True
    want[15:20, 20:30] = True
    assert np.array_equal(rle_mask.geometry.to_full(24, 32), want)
    assert rle_mask.score == pytest.approx(0.75)
    want2 = np.zeros((24, 32), bool)
    want2[0:3, 0:2] = True
    assert crowd.kind == "mask" and np.array_equal(crowd.geometry.to_full(24, 32), want2)


def test_all_classes_option_creates_every_category(project, mini):
    import_dataset(project, "coco", mini, all_classes=True)
    assert [c.name for c in project.classes()] == ["cell", "nucleus", "unused"]


def test_split_guessed_from_folder_or_given(tmp_path, project, make_image):
    img = make_image("x.png", 10, 12, seed=1, folder=tmp_path / "valid")
    src = write_coco(tmp_path / "valid", minimal([{"id": 1, "file_name": img.name}], []))
    import_dataset(project, "coco", src)
    assert project.images()[0].split == "val"
    img2 = make_image("y.png", 10, 12, seed=2, folder=tmp_path / "other")
    src2 = write_coco(tmp_path / "other", minimal([{"id": 1, "file_name": img2.name}], []))
    import_dataset(project, "coco", src2, split="test")
    assert project.images()[1].split == "test"


def test_rle_string_decoder_matches_pycocotools():
    rng = np.random.default_rng(3)
    m = rng.random((37, 23)) > 0.6
    enc = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    counts = rle_counts_from_string(enc["counts"].decode())
    assert sum(counts) == 37 * 23
    got = decode_rle_checked({"size": [37, 23], "counts": enc["counts"].decode()}, 37, 23)
    assert np.array_equal(got, m)


# --- import: bad input ------------------------------------------------------------------------
def test_malformed_json_is_fatal_and_nothing_lands(tmp_path, project, make_image):
    make_image("a.png", folder=tmp_path / "ds")
    bad = tmp_path / "ds" / "broken.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [')
    with pytest.raises(FormatError, match="broken.json"):
        import_dataset(project, "coco", bad)
    assert project.count_images() == 0 and project.classes() == []


@pytest.mark.parametrize("missing", ["images", "annotations", "categories"])
def test_missing_top_level_key_is_fatal(tmp_path, project, missing):
    data = minimal([], [])
    del data[missing]
    src = write_coco(tmp_path, data)
    with pytest.raises(FormatError, match=missing):
        import_dataset(project, "coco", src)


def test_annotation_without_image_id_is_fatal(tmp_path, project, make_image):
    make_image("a.png", folder=tmp_path / "ds")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "a.png"}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4]},
         {"id": 2, "category_id": 1, "bbox": [1, 1, 4, 4]}]))
    with pytest.raises(FormatError, match="image_id") as info:
        import_dataset(project, "coco", src)
    assert "annotations.json" in str(info.value)
    assert project.count_images() == 0 and project.counts()["annotations"]["total"] == 0


def test_unknown_category_short_polygon_and_outside_bbox(tmp_path, project, make_image):
    make_image("a.png", 20, 30, folder=tmp_path / "ds")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "a.png"}],
        [{"id": 1, "image_id": 1, "category_id": 99, "bbox": [0, 0, 4, 4]},
         {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1]]},
         {"id": 3, "image_id": 1, "category_id": 1, "bbox": [25, -5, 10, 10]},
         {"id": 4, "image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5]},
         {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]))
    report = import_dataset(project, "coco", src)
    reasons = dict(report.skipped)
    assert "unknown category id 99" in reasons["annotation 1"]
    assert any("2 points" in r for i, r in report.skipped if "annotation 2" in i)
    assert any("outside" in r for i, r in report.skipped if "annotation 4" in i)
    assert any("annotation 3" in w and "clipped" in w for w in report.warnings)
    boxes = sorted(a.geometry for a in project.annotations(project.images()[0].id))
    assert boxes == [(1.0, 2.0, 3.0, 4.0), (25.0, 0.0, 5.0, 5.0)]


def test_bad_rle_counts_are_skipped_not_decoded(tmp_path, project, make_image):
    make_image("a.png", 8, 8, folder=tmp_path / "ds")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "a.png"}],
        [{"id": 1, "image_id": 1, "category_id": 1,
          "segmentation": {"size": [8, 8], "counts": [0, 10_000_000]}},
         {"id": 2, "image_id": 1, "category_id": 1,
          "segmentation": {"size": [16, 16], "counts": [0, 256]}}]))
    report = import_dataset(project, "coco", src)
    assert len(report.skipped) == 2 and report.annotations == 0


def test_path_escaping_the_dataset_is_refused(tmp_path, project, make_image):
    outside = make_image("secret.png", seed=9, folder=tmp_path)
    make_image("ok.png", seed=1, folder=tmp_path / "ds")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "../secret.png"}, {"id": 2, "file_name": "ok.png"},
         {"id": 3, "file_name": str(outside)}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4]}]))
    report = import_dataset(project, "coco", src)
    assert [i.name for i in project.images()] == ["ok.png"]
    refused = [i for i, r in report.skipped if r.startswith("refused")]
    assert "../secret.png" in refused and str(outside) in refused
    assert project.counts()["annotations"]["total"] == 0


def test_corrupt_image_skipped_and_listed(tmp_path, project, make_image):
    make_image("good.png", folder=tmp_path / "ds")
    (tmp_path / "ds" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "bad.png"}, {"id": 2, "file_name": "good.png"},
         {"id": 3, "file_name": "missing.png"}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4]},
         {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 4, 4]}]))
    report = import_dataset(project, "coco", src)
    assert report.images == 1 and report.annotations == 1
    skipped = [i for i, _ in report.skipped]
    assert "bad.png" in skipped and "missing.png" in skipped


def test_duplicate_images_counted_and_not_doubled(tmp_path, project, make_image):
    img = make_image("a.png", folder=tmp_path / "ds")
    shutil.copy(img, tmp_path / "ds" / "a_copy.png")
    src = write_coco(tmp_path / "ds", minimal(
        [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "a_copy.png"}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4]},
         {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 4]}]))
    report = import_dataset(project, "coco", src)
    assert report.images == 1 and report.duplicate_images == 1
    again = import_dataset(project, "coco", src)
    assert again.images == 0 and again.duplicate_images == 2
    assert project.count_images() == 1 and project.counts()["annotations"]["total"] == 1


# --- export ------------------------------------------------------------------------------------
def _synthetic_project(folder: Path, make_image) -> Project:
    p = Project.create(folder)
    cell, nucleus, blurry = (p.add_class(n) for n in ("cell", "nucleus", "blurry"))
    a, _ = p.add_image(make_image("a.png", 30, 40, seed=1), split="train", status="done")
    b, _ = p.add_image(make_image("b.png", 24, 32, seed=2), split="val")
    p.add_annotation(a, cell, "box", (2.5, 3.0, 10.0, 8.25), score=0.5)
    p.add_annotation(a, nucleus, "polygon", [[5, 5], [20, 5], [12.5, 15.5]])
    ring = np.zeros((24, 32), bool)
    ring[2:12, 3:15] = True
    ring[5:8, 6:10] = False  # a hole: only a mask can hold it
    p.add_annotation(b, nucleus, "mask", MaskGeom.from_full(ring))
    p.add_annotation(b, blurry, "tag")
    return p


def test_export_loads_in_pycocotools_and_rle_matches(tmp_path, make_image):
    src = _synthetic_project(tmp_path / "src", make_image)
    report = export_dataset(src, "coco", tmp_path / "out")
    # the report counts what is in 'annotations'; the tag is a note, not a COCO object
    assert report.images == 2 and report.annotations == 3
    assert len(report.notes) == 1 and report.notes[0].startswith("1 image tags")
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    assert len(coco.getAnnIds()) == 3
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cell", "nucleus", "blurry"}
    for img in coco.loadImgs(coco.getImgIds()):
        assert (tmp_path / "out" / "images" / img["file_name"]).is_file()
    mask_ann = next(a for a in coco.dataset["annotations"] if isinstance(a["segmentation"], dict))
    assert isinstance(mask_ann["segmentation"]["counts"], str)
    ours = src.annotations(src.images()[1].id, kind="mask")[0].geometry.to_full(24, 32)
    rle = dict(mask_ann["segmentation"], counts=mask_ann["segmentation"]["counts"].encode())
    assert np.array_equal(coco_mask.decode(rle).astype(bool), ours)
    assert np.array_equal(coco.annToMask(mask_ann).astype(bool), ours)
    box_ann = next(a for a in coco.dataset["annotations"] if a["segmentation"] == [])
    assert box_ann["bbox"] == [2.5, 3.0, 10.0, 8.25] and box_ann["iscrowd"] == 0
    poly_ann = next(a for a in coco.dataset["annotations"] if isinstance(a["segmentation"], list)
                    and a["segmentation"])
    assert np.array_equal(coco.annToMask(poly_ann).astype(bool),
                          polygon_to_mask(np.array([[5, 5], [20, 5], [12.5, 15.5]]), 30, 40))
    src.close()


def test_export_reimport_round_trip(tmp_path, make_image):
    src = _synthetic_project(tmp_path / "src", make_image)
    export_dataset(src, "coco", tmp_path / "out")
    with Project.create(tmp_path / "dst") as dst:
        report = import_dataset(dst, "coco", tmp_path / "out" / "annotations.json")
        assert not report.skipped and report.annotations_by_kind["tag"] == 1
        assert_same_annotations(src, dst)
        assert [i.status for i in dst.images()] == ["done", "new"]
        assert dst.annotations(dst.images()[0].id, kind="box")[0].score == pytest.approx(0.5)
    src.close()


def test_export_of_one_split(tmp_path, make_image):
    src = _synthetic_project(tmp_path / "src", make_image)
    report = export_dataset(src, "coco", tmp_path / "out", split="val")
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert report.images == 1 and [i["file_name"] for i in data["images"]] == ["b.png"]
    assert data["images"][0]["studio_tags"] == ["blurry"]
    src.close()


# --- real datasets -------------------------------------------------------------------------------
def test_bccd_coco_three_splits_round_trip(shared_datasets, tmp_path):
    root = shared_datasets / "bccd_coco"
    expected = {"train": 0, "val": 0, "test": 0}
    n_objects = 0
    with Project.create(tmp_path / "bccd") as p:
        for folder, split in (("train", "train"), ("valid", "val"), ("test", "test")):
            src = root / folder / "_annotations.coco.json"
            data = json.loads(src.read_text())
            expected[split] = len(data["images"])
            n_objects += len(data["annotations"])
            report = import_dataset(p, "coco", src)
            assert not report.skipped and report.images == len(data["images"])
        counts = p.counts()
        assert counts["annotations"]["total"] == n_objects
        assert {k: counts["splits"][k] for k in expected} == expected
        first = json.loads((root / "test" / "_annotations.coco.json").read_text())
        img = first["images"][0]
        rec = next(r for r in p.images(split="test") if r.name == img["file_name"])
        want = sorted(tuple(float(v) for v in a["bbox"]) for a in first["annotations"]
                      if a["image_id"] == img["id"])
        assert sorted(a.geometry for a in p.annotations(rec.id)) == want
        report = export_dataset(p, "coco", tmp_path / "out")
        assert report.images == sum(expected.values())
        assert len(COCO(str(tmp_path / "out" / "annotations.json")).getAnnIds()) == n_objects
        with Project.create(tmp_path / "again") as q:
            import_dataset(q, "coco", tmp_path / "out" / "annotations.json")
            assert_same_annotations(p, q)


def test_labelme_coco_export_imports(shared_datasets, tmp_path):
    src = shared_datasets / "labelme_examples" / "instance_segmentation" / "data_dataset_coco" \
        / "annotations.json"
    if not src.is_file():
        pytest.skip("labelme COCO example not present")
    coco = COCO(str(src))
    with Project.create(tmp_path / "lm") as p:
        report = import_dataset(p, "coco", src)
        assert report.images == 3 and report.annotations == len(coco.getAnnIds())
        multi = [a for a in coco.dataset["annotations"] if len(a["segmentation"]) > 1]
        assert report.annotations_by_kind["mask"] == len(multi) > 0
        for ann in multi:  # our union mask equals pycocotools' own rasterisation
            info = coco.imgs[ann["image_id"]]
            rec = next(r for r in p.images() if r.name == Path(info["file_name"]).name)
            masks = [a.geometry.to_full(rec.height, rec.width) for a in p.annotations(rec.id, "mask")]
            assert any(np.array_equal(m, coco.annToMask(ann).astype(bool)) for m in masks)
        export_dataset(p, "coco", tmp_path / "out")
        with Project.create(tmp_path / "again") as q:
            import_dataset(q, "coco", tmp_path / "out" / "annotations.json")
            assert_same_annotations(p, q)


# --- crash safety ---------------------------------------------------------------------------------
KILL_SCRIPT = """
import sys, time
from pathlib import Path
from studio.core.project import Project
from studio.core.formats import import_dataset

project_dir, source, ready = sys.argv[1:4]
original = Project.add_image
added = [0]

def slow_add_image(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    added[0] += 1
    if added[0] == 3:
        Path(ready).write_text("3 images added inside the transaction")
    if added[0] >= 3:
        time.sleep(0.2)
    return result

Project.add_image = slow_add_image
p = Project.open(project_dir)
import_dataset(p, "coco", source)
Path(ready).write_text("finished")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_killed_import_leaves_nothing_half_imported(tmp_path, make_image):
    ds = tmp_path / "big"
    images = [{"id": i, "file_name": make_image(f"im{i}.png", 8, 8, seed=i, folder=ds).name}
              for i in range(40)]
    objects = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 3, 3]} for i in range(40)]
    source = write_coco(ds, minimal(images, objects))
    Project.create(tmp_path / "proj").close()
    ready = tmp_path / "ready.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "proj"),
                             str(source), str(ready)], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"the import did not start (exit code {proc.poll()})"
        assert ready.read_text() != "finished"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Project.open(tmp_path / "proj") as p:  # open runs SQLite's integrity check
        assert p.count_images() == 0
        assert p.classes() == []
        assert p.counts()["annotations"]["total"] == 0
        assert p._query("PRAGMA integrity_check")[0][0] == "ok"
        report = import_dataset(p, "coco", source)  # and it still takes a full import
        assert report.images == 40 and p.counts()["annotations"]["total"] == 40
