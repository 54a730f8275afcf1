"""YOLO import/export: yaml and classes.txt layouts, bad lines, safety, round trips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.yolo import label_path
from studio.core.geometry import MaskGeom, polygon_to_mask
from studio.core.project import Project

from . import assert_same_annotations


@pytest.fixture
def mini(test_data, tmp_path) -> Path:
    dest = tmp_path / "yolo"
    shutil.copytree(test_data / "yolo" / "mini", dest)
    return dest


def test_label_path_replaces_the_last_images_part(tmp_path):
    root = tmp_path.resolve()
    assert label_path(root / "images" / "train" / "a.jpg", root) == root / "labels/train/a.txt"
    assert label_path(root / "images/x/images/b.png", root) == root / "images/x/labels/b.txt"
    assert label_path(root / "flat" / "c.png", root) == root / "flat" / "c.txt"


def test_import_mini_boxes_polygons_and_bad_lines(mini, project):
    report = import_dataset(project, "yolo", mini)
    assert report.images == 2
    a, b = project.images()
    assert (a.split, b.split) == ("train", "val") and (a.width, a.height) == (50, 40)
    # names are a dict; only used classes are created, in index order
    assert [c.name for c in project.classes()] == ["cat", "dog", "bird"]
    anns = project.annotations(a.id)
    assert [x.kind for x in anns] == ["box", "polygon"]
    np.testing.assert_allclose(anns[0].geometry, (15.0, 16.0, 20.0, 8.0))
    np.testing.assert_allclose(anns[1].geometry, [[5, 4], [25, 4], [25, 20]])
    np.testing.assert_allclose(project.annotations(b.id)[0].geometry, (0.0, 0.0, 32.0, 32.0))
    skipped = dict(report.skipped)
    assert "fields" in skipped["a.txt:3"]
    assert "outside 0..1" in skipped["a.txt:4"]
    assert "class index 7" in skipped["a.txt:5"]
    assert "numbers" in skipped["a.txt:7"]
    assert len(report.skipped) == 4


def test_all_classes_and_yaml_file_as_source(mini, project):
    import_dataset(project, "yolo", mini / "data.yaml", all_classes=True)
    assert [c.name for c in project.classes()] == ["cat", "dog", "bird", "never used"]


def test_classes_txt_layout(tmp_path, project, make_image):
    root = tmp_path / "ds"
    (root).mkdir()
    (root / "classes.txt").write_text("cell\nnucleus\n")
    make_image("a.png", 20, 20, seed=1, folder=root / "images" / "train")
    make_image("b.png", 20, 20, seed=2, folder=root / "images")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "labels" / "b.txt").write_text("0 0.25 0.25 0.5 0.5\n")
    report = import_dataset(project, "yolo", root)
    assert report.annotations == 2 and not report.skipped
    splits = {i.name: i.split for i in project.images()}
    assert splits == {"a.png": "train", "b.png": "none"}
    assert [c.name for c in project.classes()] == ["cell", "nucleus"]


def test_list_file_split_and_refused_paths(tmp_path, project, make_image):
    make_image("secret.png", seed=7, folder=tmp_path)
    root = tmp_path / "ds"
    make_image("a.png", 16, 16, seed=1, folder=root / "images")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "train.txt").write_text("./images/a.png\n../secret.png\n")
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"train": "train.txt", "val": "../", "names": ["thing"]}))
    report = import_dataset(project, "yolo", root)
    assert [i.name for i in project.images()] == ["a.png"]
    refused = {i for i, r in report.skipped if r.startswith("refused")}
    assert refused == {"train.txt: ../secret.png", "../"}


@pytest.mark.parametrize("text, match", [
    ("names: [a, b\ntrain: images", "not valid YAML"),
    ("train: images/train\n", "names"),
    ("names: 5\ntrain: images/train\n", "names"),
    ("names: [a]\n", "no train"),
])
def test_bad_yaml_is_fatal(tmp_path, project, make_image, text, match):
    make_image("a.png", folder=tmp_path / "ds" / "images" / "train")
    (tmp_path / "ds" / "data.yaml").write_text(text)
    with pytest.raises(FormatError, match=match):
        import_dataset(project, "yolo", tmp_path / "ds")
    assert project.count_images() == 0


def test_not_a_yolo_folder(tmp_path, project):
    (tmp_path / "x").mkdir()
    with pytest.raises(FormatError, match="classes.txt"):
        import_dataset(project, "yolo", tmp_path / "x")


def test_corrupt_image_skipped(mini, project):
    (mini / "images" / "train" / "broken.png").write_bytes(b"garbage")
    report = import_dataset(project, "yolo", mini)
    assert report.images == 2
    assert any(i == "images/train/broken.png" and "unreadable" in r for i, r in report.skipped)


# --- export ------------------------------------------------------------------------------------
def _synthetic(folder: Path, make_image) -> Project:
    p = Project.create(folder)
    car, road, sky = (p.add_class(n) for n in ("car", "road", "sky"))
    a, _ = p.add_image(make_image("a.png", 40, 60, seed=1), split="train")
    b, _ = p.add_image(make_image("b.png", 30, 30, seed=2), split="val")
    p.add_image(make_image("c.png", 20, 20, seed=3))
    p.add_annotation(a, car, "box", (3.25, 4.0, 20.5, 10.0))
    p.add_annotation(a, road, "polygon", [[0, 20], [60, 20], [60, 40], [0, 40]])
    m = np.zeros((30, 30), bool)
    m[5:20, 4:25] = True
    p.add_annotation(b, sky, "mask", MaskGeom.from_full(m))
    p.add_annotation(b, car, "tag")
    return p


def test_export_layout_and_round_trip(tmp_path, make_image):
    src = _synthetic(tmp_path / "src", make_image)
    out = tmp_path / "out"
    report = export_dataset(src, "yolo", out)
    assert report.images == 3 and report.annotations == 3
    assert any("tags" in r for _, r in report.skipped)
    config = yaml.safe_load((out / "data.yaml").read_text())
    assert config["names"] == {0: "car", 1: "road", 2: "sky"} and config["nc"] == 3
    assert config["train"] == "images/train" and config["val"] == "images/val"
    assert "test" not in config
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["a.png", "c.png"]
    lines = (out / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines[0] == "0 0.225000 0.225000 0.341667 0.250000"  # cx = 13.5 / 60
    assert lines[1].split()[0] == "1" and len(lines[1].split()) == 9
    assert (out / "labels" / "train" / "c.txt").read_text() == ""
    with Project.create(tmp_path / "dst") as dst:
        import_dataset(dst, "yolo", out)
        # no split -> train; masks come back as polygons from their outlines; tags are lost
        src.set_split(src.images()[2].id, "train")
        src.delete_annotation(src.annotations(src.images()[1].id, kind="tag")[0].id)
        assert_same_annotations(src, dst, kind_map={"mask": "polygon"})
        b_dst = next(r for r in dst.images() if r.name == "b.png")
        poly = dst.annotations(b_dst.id)[0].geometry
        m = src.annotations(src.images()[1].id)[0].geometry.to_full(30, 30)
        assert np.array_equal(polygon_to_mask(poly, 30, 30), m)
    src.close()


def test_same_stem_in_one_split_gets_distinct_labels(tmp_path, make_image):
    with Project.create(tmp_path / "p") as p:
        c = p.add_class("x")
        a, _ = p.add_image(make_image("im.png", 10, 10, seed=1, folder=tmp_path / "one"))
        b, _ = p.add_image(make_image("im.jpg", 10, 10, seed=2, folder=tmp_path / "two"))
        p.add_annotation(a, c, "box", (0, 0, 5, 5))
        p.add_annotation(b, c, "box", (5, 5, 5, 5))
        export_dataset(p, "yolo", tmp_path / "out")
        labels = sorted((tmp_path / "out" / "labels" / "train").iterdir())
        assert len(labels) == 2
        with Project.create(tmp_path / "q") as q:
            import_dataset(q, "yolo", tmp_path / "out")
            assert_same_annotations(p, q, check_splits=False)


# --- real datasets -------------------------------------------------------------------------------
def test_coco8_import_and_round_trip(shared_datasets, tmp_path):
    root = shared_datasets / "coco8_yolo"
    n_lines = sum(len(f.read_text().split("\n")) - 1 for f in root.glob("labels/*/*.txt"))
    with Project.create(tmp_path / "c8") as p:
        report = import_dataset(p, "yolo", root)
        assert report.images == 8 and not report.skipped
        assert report.annotations == n_lines
        assert p.count_images(split="train") == 4 and p.count_images(split="val") == 4
        names = yaml.safe_load((root / "coco8.yaml").read_text())["names"]
        first = (root / "labels" / "train" / "000000000009.txt").read_text().split()
        rec = next(r for r in p.images() if r.name == "000000000009.jpg")
        ann = p.annotations(rec.id)[0]
        assert p.class_record(ann.class_id).name == names[int(first[0])]
        cx, cy, w, h = (float(v) for v in first[1:5])
        np.testing.assert_allclose(ann.geometry, ((cx - w / 2) * rec.width, (cy - h / 2) *
                                                  rec.height, w * rec.width, h * rec.height),
                                   atol=0.5)
        export_dataset(p, "yolo", tmp_path / "out")
        with Project.create(tmp_path / "again") as q:
            import_dataset(q, "yolo", tmp_path / "out")
            assert_same_annotations(p, q)


def test_export_of_a_round_mask_is_simplified_without_repeated_points(tmp_path, make_image):
    import cv2

    with Project.create(tmp_path / "p") as p:
        c = p.add_class("cell")
        a, _ = p.add_image(make_image("a.png", 200, 200, seed=1), split="train")
        m = np.zeros((200, 200), np.uint8)
        cv2.circle(m, (100, 90), 70, 1, -1)
        p.add_annotation(a, c, "mask", MaskGeom.from_full(m.astype(bool)))
        export_dataset(p, "yolo", tmp_path / "out")
    (line,) = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    pts = np.array(line.split()[1:], float).reshape(-1, 2) * 200
    assert 8 <= len(pts) <= 80, len(pts)  # a staircase would have hundreds of corners
    assert not np.any(np.all(np.isclose(pts, np.roll(pts, 1, axis=0)), axis=1))
    back = polygon_to_mask(pts, 200, 200)
    assert (back ^ m.astype(bool)).sum() / m.sum() < 0.03
