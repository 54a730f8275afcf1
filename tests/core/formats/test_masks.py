"""Semantic label-map folders: palette and grey masks, class names, binary masks, round trips."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from testutil import write_png

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.masks import parse_class_names, read_label_image
from studio.core.project import Project

from . import assert_same_annotations


@pytest.fixture
def masks_dir(tmp_path, test_data) -> Path:
    dest = tmp_path / "masks_ds"
    shutil.copytree(test_data / "masks", dest)
    return dest


def _class_pixels(project, name: str) -> dict[str, np.ndarray]:
    """image file name -> full mask of the class `name` on it."""
    cls = project.class_by_name(name)
    out = {}
    for img in project.images():
        anns = [a for a in project.annotations(img.id) if a.class_id == cls.id]
        assert len(anns) <= 1, "one mask per class per image"
        if anns:
            out[img.name] = anns[0].geometry.to_full(img.height, img.width)
    return out


def test_palette_and_grey_masks_with_class_names(project, masks_dir):
    report = import_dataset(project, "masks", masks_dir)
    assert [c.name for c in project.classes()] == ["background", "cell", "membrane"]
    assert report.images == 3 and report.annotations_by_kind == {"mask": 5}
    assert any("1 images have no mask" in w for w in report.warnings)
    a = read_label_image(masks_dir / "masks" / "a.png")
    assert a[0, 0] == 255 and set(np.unique(a)) == {0, 1, 2, 255}  # palette indices
    cell = _class_pixels(project, "cell")
    assert np.array_equal(cell["a.png"], a == 1) and "b.png" not in cell
    membrane = _class_pixels(project, "membrane")
    b = cv2.imread(str(masks_dir / "masks" / "b_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(membrane["b.png"], b == 2)
    background = _class_pixels(project, "background")
    assert not background["a.png"][0].any(), "255 is void, not background"
    assert all(a.source == "import:masks" for a in project.iter_annotations())


def test_background_can_stay_unlabelled(project, masks_dir):
    import_dataset(project, "masks", masks_dir, import_background=False)
    assert [c.name for c in project.classes()] == ["cell", "membrane"]


def test_class_names_from_option_and_default_names(project, masks_dir):
    (masks_dir / "classes.txt").unlink()
    import_dataset(project, "masks", masks_dir, classes={1: "nucleus"})
    assert [c.name for c in project.classes()] == ["nucleus", "background", "class_2"]


def test_parse_class_names_forms():
    assert parse_class_names("a\nb\n") == {0: "a", 1: "b"}
    assert parse_class_names("__ignore__\n_background_\ncat\n") == {0: "_background_", 1: "cat"}
    assert parse_class_names("0 sky\n3: road\n# note\n") == {0: "sky", 3: "road"}


def test_binary_masks_are_detected(project, tmp_path):
    root = tmp_path / "bin"
    mask = np.zeros((10, 12), np.uint8)
    mask[2:7, 3:9] = 255
    write_png(root / "images" / "x.png", np.full((10, 12), 90, np.uint8))
    write_png(root / "masks" / "x.png", mask)
    import_dataset(project, "masks", root, classes=["membrane", "cell"])
    assert [c.name for c in project.classes()] == ["membrane", "cell"]
    assert np.array_equal(_class_pixels(project, "cell")["x.png"], mask == 255)
    assert np.array_equal(_class_pixels(project, "membrane")["x.png"], mask == 0)


def test_size_mismatch_and_orphan_masks_are_reported(project, masks_dir):
    write_png(masks_dir / "masks" / "c.png", np.zeros((5, 5), np.uint8))
    write_png(masks_dir / "masks" / "lonely.png", np.zeros((12, 16), np.uint8))
    report = import_dataset(project, "masks", masks_dir)
    reasons = dict(report.skipped)
    assert "mask is 5x5 but its image is 16x12" in reasons["c.png"]
    assert reasons["lonely.png"] == "mask without a matching image"


def test_colour_mask_is_refused_clearly(project, masks_dir):
    colour = np.zeros((12, 16, 3), np.uint8)
    colour[..., 0] = 200
    write_png(masks_dir / "masks" / "c.png", colour)
    report = import_dataset(project, "masks", masks_dir)
    assert "colour image" in dict(report.skipped)["c.png"]


def test_missing_folders_and_no_images(project, tmp_path):
    (tmp_path / "x" / "images").mkdir(parents=True)
    (tmp_path / "x" / "masks").mkdir()
    with pytest.raises(FormatError, match="No images found in"):
        import_dataset(project, "masks", tmp_path / "x")
    (tmp_path / "y").mkdir()
    with pytest.raises(FormatError, match="No images folder"):
        import_dataset(project, "masks", tmp_path / "y")


def test_round_trip(project, masks_dir, tmp_path):
    import_dataset(project, "masks", masks_dir)
    report = export_dataset(project, "masks", tmp_path / "out")
    assert report.images == 3 and report.annotations == 5
    assert (tmp_path / "out" / "classes.txt").read_text().split() == [
        "background", "cell", "membrane"]
    with Image.open(tmp_path / "out" / "masks" / "a.png") as im:
        assert im.mode == "P"
    assert not (tmp_path / "out" / "masks" / "c.png").exists()
    with Project.create(tmp_path / "again") as again:
        import_dataset(again, "masks", tmp_path / "out")
        assert [c.name for c in again.classes()] == ["background", "cell", "membrane"]
        assert_same_annotations(project, again)


def test_export_paints_polygons_and_leaves_out_boxes(project, make_image, tmp_path):
    image_id, _ = project.add_image(make_image("p.png", 20, 30))
    cls = project.add_class("road")
    project.add_annotation(image_id, cls, "polygon", [[0, 0], [10, 0], [10, 10], [0, 10]])
    project.add_annotation(image_id, cls, "box", (12, 2, 5, 5))
    report = export_dataset(project, "masks", tmp_path / "out")
    label = read_label_image(tmp_path / "out" / "masks" / "p.png")
    assert (label[:10, :10] == 0).all() and (label == 0).sum() == 100
    assert (label == 255).sum() == 20 * 30 - 100
    assert "1 box annotations" in report.skipped[0][1]


def test_isbi_membrane_round_trip(shared_datasets, tmp_path):
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "masks", shared_datasets / "isbi2012_membrane" / "train")
        assert report.images == 30 and report.annotations_by_kind == {"mask": 60}
        assert [c.name for c in project.classes()] == ["background", "foreground"]
        assert project.count_images(split="train") == 30  # guessed from the folder name
        first = project.images(limit=1)[0]
        label = cv2.imread(str(shared_datasets / "isbi2012_membrane" / "train" / "label"
                               / first.name), cv2.IMREAD_UNCHANGED)
        fg = _class_pixels(project, "foreground")[first.name]
        assert np.array_equal(fg, label == 255)
        export_dataset(project, "masks", tmp_path / "out")
        with Project.create(tmp_path / "again") as again:
            import_dataset(again, "masks", tmp_path / "out", split="train")
            assert_same_annotations(project, again)


def test_masks_folder_with_separate_images_folder(project, shared_datasets):
    train = shared_datasets / "isbi2012_membrane" / "train"
    report = import_dataset(project, "masks", train / "label", images_dir=train / "image",
                            classes={0: "membrane", 255: "cell"})
    assert report.images == 30 and report.annotations_by_class == {"membrane": 30, "cell": 30}
    assert report.skipped == []
