"""Bad data: never a native crash, never a silent wrong import.

Each test feeds one kind of hostile or misleading dataset to an importer (or a stored
geometry to an exporter) and checks that the result is a clipped, reported import or one
line of error, not a crash and not a quiet partial import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from testutil import write_png

from studio.core.errors import DataError, FormatError
from studio.core.formats import import_dataset
from studio.core.formats.labelimages import read_label_image
from studio.core.geometry import MaskGeom, polygon_to_mask


def _image(path: Path, h: int = 20, w: int = 30, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_png(path, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


# --- geometry far outside the image ---------------------------------------------------------
def _run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a child process, so a native crash fails the test instead of pytest."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300,
                          text=True)


def test_huge_polygon_coordinates_do_not_reach_pycocotools():
    # pycocotools crashes the process on coordinates near 4e8; clipped first, it cannot
    result = _run_isolated(
        "import numpy as np\nfrom studio.core.geometry import polygon_to_mask\n"
        "m = polygon_to_mask(np.array([[0, 0], [3e9, 0], [0, 3e9]]), 8, 10)\n"
        "assert m.all()\nprint('ok')\n")  # the triangle covers the whole 10 x 8 image
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    assert polygon_to_mask(np.array([[2, 2], [6, 2], [6, 6], [2, 6]]), 8, 10).sum() == 16


def test_coco_object_with_parts_at_3e9_imports_clipped(tmp_path):
    _image(tmp_path / "ds" / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [
                [0, 0, 3e9, 0, 3e9, 3e9], [2, 2, 10, 2, 10, 10]]},
                {"id": 2, "image_id": 1, "category_id": 1,
                 "segmentation": [[0, 0, 1e9, 0, 0, 1e9]]}],
            "categories": [{"id": 1, "name": "cell"}]}
    (tmp_path / "ds" / "ann.json").write_text(json.dumps(data))
    code = f"""
from studio.core.project import Project
from studio.core.formats import import_dataset, export_dataset
p = Project.create({str(tmp_path / 'p')!r})
r = import_dataset(p, "coco", {str(tmp_path / 'ds' / 'ann.json')!r})
assert r.annotations == 2, r.as_dict()
assert any("clipped" in w for w in r.warnings), r.warnings
for a in p.annotations(1):
    x, y, w, h = a.bbox
    assert 0 <= x and 0 <= y and x + w <= 30 and y + h <= 20, a.bbox
for fmt in ("voc", "masks", "instances", "coco", "yolo", "labelme"):
    export_dataset(p, fmt, {str(tmp_path / 'out')!r} + "/" + fmt)
print("ok")
"""
    result = _run_isolated(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_labelme_polygon_at_1e9_imports_clipped(project, tmp_path):
    _image(tmp_path / "lm" / "a.png")
    shape = {"label": "cell", "points": [[0, 0], [1e9, 0], [0, 1e9]], "shape_type": "polygon"}
    (tmp_path / "lm" / "a.json").write_text(json.dumps(
        {"shapes": [shape], "imagePath": "a.png", "imageData": None}))
    report = import_dataset(project, "labelme", tmp_path / "lm")
    assert report.annotations == 1 and any("clipped" in w for w in report.warnings)
    ann = project.annotations(project.image_ids()[0])[0]
    assert ann.geometry.max(axis=0).tolist() == [30.0, 20.0]


def test_the_store_clips_geometry_and_refuses_what_lies_outside(project, make_image):
    from studio.core.errors import GeometryError

    img, _ = project.add_image(make_image(height=20, width=30))
    cls = project.add_class("x")
    a = project.add_annotation(img, cls, "polygon", [[-5, -5], [1e12, 0], [0, 1e12]])
    b = project.add_annotation(img, cls, "box", (25, 15, 100, 100))
    c = project.add_annotation(img, cls, "mask", MaskGeom(25, -2, np.ones((6, 10), bool)))
    assert project.annotation(a).bbox == (0.0, 0.0, 30.0, 20.0)
    assert project.annotation(b).geometry == (25.0, 15.0, 5.0, 5.0)
    assert project.annotation(c).bbox == (25.0, 0.0, 5.0, 4.0)
    with pytest.raises(GeometryError, match="outside"):
        project.add_annotation(img, cls, "polygon", [[100, 100], [200, 100], [200, 200]])
    project.update_annotation(a, geometry=[[0, 0], [5e9, 0], [0, 5]])
    assert project.annotation(a).bbox[2] == 30.0


def test_stored_bad_geometry_still_exports(make_image, tmp_path):
    """A polygon stored unclipped (by an older version) exports without a crash."""
    image = make_image(height=20, width=30)
    code = f"""
import json
from studio.core.project import Project
from studio.core.formats import export_dataset
p = Project.create({str(tmp_path / 'p')!r})
img, _ = p.add_image({str(image)!r})
a = p.add_annotation(img, p.add_class("x"), "polygon", [[0, 0], [10, 0], [0, 10]])
p._write("UPDATE annotations SET geometry = ? WHERE id = ?",
         (json.dumps([[0, 0], [3e9, 0], [0, 3e9]]), a))
for fmt in ("masks", "voc", "instances"):
    assert export_dataset(p, fmt, {str(tmp_path / 'out')!r} + "/" + fmt).annotations == 1
print("ok")
"""
    result = _run_isolated(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    label = read_label_image(tmp_path / "out" / "masks" / "masks" / "img.png")
    assert (label == 0).all()  # the whole image is the region of class 0


# --- hostile JSON ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_a_json_bracket_bomb_is_one_line(project, tmp_path, fmt):
    path = tmp_path / "bomb.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match="nests its JSON too deeply") as info:
        import_dataset(project, fmt, path)
    assert "\n" not in str(info.value)


def test_a_5000_digit_id_is_one_line(project, tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": [{"id": ' + "7" * 5000 + ', "file_name": "a.png"}], '
                    '"annotations": [], "categories": []}')
    with pytest.raises(FormatError, match="not valid JSON") as info:
        import_dataset(project, "coco", path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


# --- label images that pair, and what their values mean -------------------------------------
def _blobs(k: int, shape=(24, 32)) -> np.ndarray:
    """A label image numbering k separate squares 1..k."""
    label = np.zeros(shape, np.uint16)
    for i in range(k):
        y, x = 2 + 7 * (i // 4), 2 + 7 * (i % 4)
        label[y:y + 5, x:x + 5] = i + 1
    return label


def test_instance_label_images_named_mask_pair_with_their_images(project, tmp_path):
    (tmp_path / "ds" / "masks").mkdir(parents=True)
    for n, k in (("a", 3), ("b", 5), ("c", 2)):
        _image(tmp_path / "ds" / "images" / f"{n}.png", 24, 32, seed=k)
        cv2.imwrite(str(tmp_path / "ds" / "masks" / f"{n}_mask.png"), _blobs(k))
    report = import_dataset(project, "instances", tmp_path / "ds")
    assert report.images == 3 and report.annotations_by_kind == {"mask": 10}
    assert report.skipped == []


def test_instances_that_cannot_pair_are_an_error_not_a_partial_import(project, tmp_path):
    (tmp_path / "ds" / "masks").mkdir(parents=True)
    for n, k in (("a", 3), ("b", 5), ("c", 2)):
        _image(tmp_path / "ds" / "images" / f"{n}.png", 24, 32, seed=k)
        cv2.imwrite(str(tmp_path / "ds" / "masks" / f"label_{n}.png"), _blobs(k))
    with pytest.raises(DataError, match="3 images.*cannot be paired"):
        import_dataset(project, "instances", tmp_path / "ds")
    assert project.count_images() == 0


def test_masks_holding_instance_ids_say_so(project, tmp_path):
    (tmp_path / "ds" / "masks").mkdir(parents=True)
    for n, k in (("a", 3), ("b", 6), ("c", 4)):
        _image(tmp_path / "ds" / "images" / f"{n}.png", 24, 32, seed=k)
        cv2.imwrite(str(tmp_path / "ds" / "masks" / f"{n}.png"), _blobs(k).astype(np.uint8))
    with pytest.raises(DataError, match="look like instance ids.*--format instances"):
        import_dataset(project, "masks", tmp_path / "ds")
    assert project.classes() == []
    # named classes are taken at their word
    report = import_dataset(project, "masks", tmp_path / "ds",
                            classes=["bg", *[f"c{i}" for i in range(1, 7)]])
    assert report.annotations == 3 + 3 + 6 + 4


def _jpeg_binary_masks(root: Path) -> list[np.ndarray]:
    (root / "masks").mkdir(parents=True)
    truths = []
    for i in range(3):
        _image(root / "images" / f"m{i}.png", 40, 40, seed=i)
        truth = np.zeros((40, 40), np.uint8)
        cv2.circle(truth, (12 + 6 * i, 20), 9, 255, -1)
        ok, buf = cv2.imencode(".jpg", truth, [cv2.IMWRITE_JPEG_QUALITY, 75])
        (root / "masks" / f"m{i}.jpg").write_bytes(buf.tobytes())
        truths.append(truth > 0)
    return truths


def test_jpeg_binary_masks_are_thresholded_with_a_warning(project, tmp_path):
    truths = _jpeg_binary_masks(tmp_path / "ds")
    values = np.unique(cv2.imread(str(tmp_path / "ds" / "masks" / "m0.jpg"), 0))
    assert len(values) > 2  # what JPEG did to the 0/255 mask
    report = import_dataset(project, "masks", tmp_path / "ds")
    assert [c.name for c in project.classes()] == ["background", "foreground"]
    assert any("near 0 and 255" in w and "JPEG" in w for w in report.warnings)
    fg = project.class_by_name("foreground").id
    for image_id, truth in zip(project.image_ids(), truths, strict=True):
        region = [a for a in project.annotations(image_id) if a.class_id == fg][0]
        got = region.geometry.to_full(40, 40)
        assert (got == truth).mean() > 0.99  # all of the foreground, not 17 classes


def test_the_threshold_option_moves_the_cut_also_on_the_cli(tmp_path):
    from studio.cli import main

    _jpeg_binary_masks(tmp_path / "ds")
    assert main(["new", str(tmp_path / "p")]) == 0
    assert main(["import", str(tmp_path / "p"), "--format", "masks", "--source",
                 str(tmp_path / "ds"), "--threshold", "250"]) == 0
    from studio.core.project import Project

    with Project.open(tmp_path / "p") as p:
        fg = p.class_by_name("foreground").id
        strict = sum(a.area for i in p.image_ids() for a in p.annotations(i)
                     if a.class_id == fg)
    with Project.create(tmp_path / "q") as q:
        import_dataset(q, "masks", tmp_path / "ds", threshold=5)
        fg = q.class_by_name("foreground").id
        loose = sum(a.area for i in q.image_ids() for a in q.annotations(i) if a.class_id == fg)
    assert loose > strict > 0
    with Project.create(tmp_path / "r") as r, pytest.raises(FormatError, match="threshold"):
        import_dataset(r, "masks", tmp_path / "ds", threshold=300)


def test_masks_none_of_which_pair_are_an_error(project, tmp_path):
    (tmp_path / "ds" / "masks").mkdir(parents=True)
    for n in ("a", "b"):
        _image(tmp_path / "ds" / "images" / f"{n}.png", 24, 32)
        cv2.imwrite(str(tmp_path / "ds" / "masks" / f"gt_{n}.png"), np.zeros((24, 32), np.uint8))
    with pytest.raises(DataError, match="None of the 2 masks"):
        import_dataset(project, "masks", tmp_path / "ds")


def test_a_yaml_bomb_and_a_huge_number_in_yolo_are_one_line(project, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "data.yaml").write_text("names: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(FormatError, match="data.yaml") as info:
        import_dataset(project, "yolo", tmp_path / "a")
    assert "\n" not in str(info.value)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "data.yaml").write_text(f"names: [x]\nnc: {'9' * 5000}\ntrain: images\n")
    (tmp_path / "b" / "images").mkdir()
    with pytest.raises(FormatError, match="data.yaml") as info:
        import_dataset(project, "yolo", tmp_path / "b")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
