"""labelme JSON import/export: every shape type, groups, flags, bad input, round trips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.labelme import CIRCLE_VERTICES
from studio.core.geometry import MaskGeom, polygon_to_mask
from studio.core.project import Project

from . import assert_same_annotations

LABELME_SUBFOLDERS = {  # subfolder -> (images, annotations by kind)
    "bbox_detection": (3, {"box": 9}),
    "classification": (2, {"tag": 2}),
    "instance_segmentation": (3, {"polygon": 10, "mask": 2}),
    "primitives": (1, {"box": 2, "polygon": 2, "mask": 1}),
    "semantic_segmentation": (3, {"polygon": 16}),
    "tutorial": (1, {"polygon": 4}),
    "video_annotation": (5, {"polygon": 15}),
}


@pytest.fixture
def labelme_dir(tmp_path, test_data) -> Path:
    dest = tmp_path / "labelme"
    shutil.copytree(test_data / "labelme", dest)
    return dest


def _by_label(project, image_id):
    names = {c.id: c.name for c in project.classes()}
    out: dict[str, list] = {}
    for ann in project.annotations(image_id):
        out.setdefault(names[ann.class_id], []).append(ann)
    return out


def test_every_shape_type(project, labelme_dir):
    report = import_dataset(project, "labelme", labelme_dir / "scene.json")
    assert report.images == 1
    image = project.images()[0]
    anns = _by_label(project, image.id)
    assert set(anns) == {"car", "road", "ball", "blob", "tree", "outdoor"}
    (car,) = anns["car"]
    assert car.kind == "box" and car.geometry == (2.0, 3.0, 10.0, 7.0)  # corners swapped
    (road,) = anns["road"]
    assert road.kind == "polygon" and road.geometry.shape == (4, 2)
    (ball,) = anns["ball"]
    assert ball.kind == "polygon" and len(ball.geometry) == CIRCLE_VERTICES
    radii = np.hypot(ball.geometry[:, 0] - 30, ball.geometry[:, 1] - 10)
    np.testing.assert_allclose(radii, 6.0, atol=1e-3)  # stored to 4 decimals
    (blob,) = anns["blob"]
    plus = np.zeros((5, 5), bool)
    plus[2, :] = plus[:, 2] = True
    assert blob.kind == "mask" and blob.geometry.equals(MaskGeom(35, 20, plus))
    (tree,) = anns["tree"]  # two polygons with one group_id: one object
    union = (polygon_to_mask([[40, 2], [46, 2], [43, 8]], 32, 48)
             | polygon_to_mask([[40, 10], [46, 10], [43, 16]], 32, 48))
    assert tree.kind == "mask" and np.array_equal(tree.geometry.to_full(32, 48), union)
    (outdoor,) = anns["outdoor"]
    assert outdoor.kind == "tag" and "night" not in anns
    assert all(a.source == "import:labelme" for group in anns.values() for a in group)
    reasons = dict(report.skipped)
    assert "point shapes have no area" in reasons["scene.json shape 6"]
    assert "line shapes have no area" in reasons["scene.json shape 7"]
    assert "linestrip shapes have no area" in reasons["scene.json shape 8"]
    assert "__ignore__" in reasons["scene.json shape 9"]
    assert report.annotations_by_kind == {"box": 1, "polygon": 2, "mask": 2, "tag": 1}


def test_ignore_label_can_be_kept(project, labelme_dir):
    import_dataset(project, "labelme", labelme_dir / "scene.json", ignore_label=None)
    assert project.class_by_name("__ignore__") is not None


def test_embedded_image_is_copied_into_the_project(project, labelme_dir):
    report = import_dataset(project, "labelme", labelme_dir / "embedded.json")
    assert report.images == 1
    image = project.images()[0]
    assert image.abs_path.parent == project.root / "images"
    assert image.abs_path.is_file() and (image.width, image.height) == (20, 16)
    assert [a.geometry for a in project.annotations(image.id)] == [(1.0, 1.0, 8.0, 6.0)]


def test_unknown_shape_type_is_skipped_and_reported(project, labelme_dir):
    data = json.loads((labelme_dir / "scene.json").read_text())
    data["shapes"] = [dict(data["shapes"][0], shape_type="ellipse"), data["shapes"][1]]
    (labelme_dir / "scene.json").write_text(json.dumps(data))
    report = import_dataset(project, "labelme", labelme_dir / "scene.json")
    assert report.annotations_by_kind == {"polygon": 1, "tag": 1}
    assert ("scene.json shape 0", "unknown shape type 'ellipse'") in report.skipped


def test_bad_shapes_are_skipped(project, labelme_dir):
    data = json.loads((labelme_dir / "scene.json").read_text())
    base = data["shapes"][1]
    data["shapes"] = [dict(base, points=[[0, 0], [1, 1]]), dict(base, points="nonsense"),
                      dict(base, label=""), dict(base, shape_type="mask", mask="!!notpng")]
    (labelme_dir / "scene.json").write_text(json.dumps(data))
    report = import_dataset(project, "labelme", labelme_dir / "scene.json")
    assert report.annotations_by_kind == {"tag": 1}
    reasons = [r for _, r in report.skipped]
    assert "2 points (needs 3)" in reasons
    assert "points are not a list of [x, y] numbers" in reasons
    assert "shape without a label" in reasons
    assert "the mask is not a base64 PNG" in reasons


def test_malformed_file_in_a_folder_is_skipped(project, labelme_dir):
    (labelme_dir / "broken.json").write_text("{ not json")
    (labelme_dir / "other.json").write_text(json.dumps({"images": []}))
    report = import_dataset(project, "labelme", labelme_dir)
    assert report.images == 2
    reasons = dict(report.skipped)
    assert "not valid JSON" in reasons["broken.json"]
    assert "not a labelme file" in reasons["other.json"]


def test_single_malformed_file_is_an_error_and_nothing_lands(project, labelme_dir):
    (labelme_dir / "broken.json").write_text("[1, 2")
    with pytest.raises(FormatError, match="broken.json"):
        import_dataset(project, "labelme", labelme_dir / "broken.json")
    assert project.count_images() == 0 and project.classes() == []


def test_image_path_outside_the_dataset_is_refused(project, tmp_path, labelme_dir):
    outside = tmp_path / "secret.png"
    shutil.copy(labelme_dir / "scene.png", outside)
    data = json.loads((labelme_dir / "scene.json").read_text())
    data["imagePath"] = "../secret.png"
    (labelme_dir / "scene.json").write_text(json.dumps(data))
    report = import_dataset(project, "labelme", labelme_dir)
    assert "outside the dataset folder" in dict(report.skipped)["scene.json"]
    assert all(img.abs_path != outside for img in project.images())


def test_missing_image_without_image_data_is_skipped(project, labelme_dir):
    data = json.loads((labelme_dir / "scene.json").read_text())
    data["imagePath"] = "nowhere.png"
    (labelme_dir / "scene.json").write_text(json.dumps(data))
    report = import_dataset(project, "labelme", labelme_dir)
    assert "was not found" in dict(report.skipped)["scene.json"]


def test_duplicate_images_are_counted_once(project, labelme_dir):
    shutil.copy(labelme_dir / "scene.png", labelme_dir / "copy.png")
    data = json.loads((labelme_dir / "scene.json").read_text())
    data["imagePath"] = "copy.png"
    (labelme_dir / "copy.json").write_text(json.dumps(data))
    report = import_dataset(project, "labelme", labelme_dir)
    assert report.duplicate_images == 1
    assert project.count_images() == 2  # scene + embedded
    first = import_dataset(project, "labelme", labelme_dir)  # again: nothing doubles
    assert first.images == 0 and first.annotations == 0


def test_no_json_files(project, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="No labelme JSON files found"):
        import_dataset(project, "labelme", tmp_path / "empty")


def test_round_trip(project, labelme_dir, tmp_path):
    import_dataset(project, "labelme", labelme_dir)
    report = export_dataset(project, "labelme", tmp_path / "out")
    assert report.images == 2
    exported = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert exported["version"].startswith("5.") and exported["imageData"] is None
    assert exported["flags"] == {"outdoor": True}
    assert {s["shape_type"] for s in exported["shapes"]} == {"rectangle", "polygon", "mask"}
    with Project.create(tmp_path / "again") as again:
        import_dataset(again, "labelme", tmp_path / "out")
        assert_same_annotations(project, again)


@pytest.mark.parametrize("subfolder", sorted(LABELME_SUBFOLDERS))
def test_labelme_examples_import_and_round_trip(shared_datasets, tmp_path, subfolder):
    n_images, kinds = LABELME_SUBFOLDERS[subfolder]
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "labelme", shared_datasets / "labelme_examples" / subfolder)
        assert report.images == n_images
        assert dict(report.annotations_by_kind) == kinds
        export_dataset(project, "labelme", tmp_path / "out")
        with Project.create(tmp_path / "again") as again:
            import_dataset(again, "labelme", tmp_path / "out")
            assert_same_annotations(project, again)


def test_images_in_another_folder(project, labelme_dir, tmp_path):
    ann, img = tmp_path / "ds" / "ann", tmp_path / "ds" / "img"
    ann.mkdir(parents=True)
    shutil.move(labelme_dir / "scene.png", tmp_path / "elsewhere.png")
    img.mkdir()
    shutil.move(tmp_path / "elsewhere.png", img / "scene.png")
    shutil.copy(labelme_dir / "scene.json", ann / "scene.json")
    report = import_dataset(project, "labelme", ann, images_dir=img)
    assert report.images == 1 and project.images()[0].abs_path == (img / "scene.png").resolve()
