"""Files and names that used to crash or mislead the store and the formats: class names
with control characters, images changed on disk, annotation files whose stated size
differs from the image, multi-page TIFFs, broken links, one mask for two images."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from testutil import write_png

from studio.core.errors import ValidationError
from studio.core.formats import export_dataset, import_dataset
from studio.core.project import Project


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "two\nlines", "bell\x07"])
def test_class_names_with_control_characters_are_refused(project, name):
    with pytest.raises(ValidationError, match="control characters"):
        project.add_class(name)
    cid = project.add_class("fine")
    with pytest.raises(ValidationError, match="control characters"):
        project.rename_class(cid, name)
    assert [c.name for c in project.classes()] == ["fine"]


def test_voc_export_of_an_older_projects_control_character_name_reads_back(tmp_path):
    root = tmp_path / "p"
    with Project.create(root) as project:
        cid = project.add_class("cell")
        iid, _ = project.add_image(write_png(tmp_path / "img" / "a.png",
                                             np.zeros((20, 30, 3), np.uint8)))
        project.add_annotation(iid, cid, "box", [2.0, 3.0, 10.0, 8.0])
    with sqlite3.connect(root / "project.db") as conn:  # written before the store refused it
        conn.execute("UPDATE classes SET name = ? WHERE id = ?", ("ce\x00ll\x1b", cid))
    with Project.open(root) as project:
        export_dataset(project, "voc", tmp_path / "voc")
    xml = (tmp_path / "voc" / "Annotations" / "a.xml").read_bytes()
    assert b"\x00" not in xml and b"\x1b" not in xml and b"ce\\x00ll\\x1b" in xml
    with Project.create(tmp_path / "q") as again:
        report = import_dataset(again, "voc", tmp_path / "voc")
        assert report.annotations == 1 and [c.name for c in again.classes()] == ["ce\\x00ll\\x1b"]


# --- an image file changed after import ---------------------------------------------------
def _resized_project(tmp_path):
    from studio.core.geometry import MaskGeom

    root = tmp_path / "p"
    with Project.create(root) as project:
        cid = project.add_class("cell")
        for i in range(2):
            iid, _ = project.add_image(write_png(tmp_path / "img" / f"i{i}.png",
                                                 np.full((64, 64), 40 * i, np.uint8)))
            project.add_annotation(iid, cid, "mask",
                                   MaskGeom.from_full(np.eye(64, dtype=bool)))
    write_png(tmp_path / "img" / "i1.png", np.zeros((50, 100), np.uint8))  # edited elsewhere
    return root


@pytest.mark.parametrize("fmt", ["masks", "coco"])
def test_export_refuses_images_resized_since_import_and_names_them(tmp_path, fmt):
    from studio.core.errors import DataError

    root = _resized_project(tmp_path)
    with Project.open(root) as project, pytest.raises(DataError) as caught:
        export_dataset(project, fmt, tmp_path / "out")
    text = str(caught.value)
    assert "i1.png (now 100 x 50, recorded 64 x 64)" in text and "studio-cli refresh" in text
    assert not (tmp_path / "out").exists()


def test_refresh_lists_and_rereads_changed_images(tmp_path, capsys):
    from studio.cli import main

    root = _resized_project(tmp_path)
    assert main(["refresh", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "changed: " in out and "i1.png (now 100 x 50" in out and "i0.png" not in out
    with Project.open(root) as project:
        assert project.images()[1].width == 64  # a dry run changes nothing
    assert main(["refresh", str(root)]) == 0
    assert "1 changed size: check their annotations" in capsys.readouterr().out
    with Project.open(root) as project:
        rec = project.images()[1]
        assert (rec.width, rec.height, rec.channels) == (100, 50, 1)
        export_dataset(project, "masks", tmp_path / "out")
    # same size, other pixels: only the content check sees it
    write_png(tmp_path / "img" / "i0.png", np.full((64, 64), 7, np.uint8))
    assert main(["refresh", str(root), "--dry-run"]) == 0
    assert "Every image file is as recorded" in capsys.readouterr().out
    assert main(["refresh", str(root), "--content"]) == 0
    out = capsys.readouterr().out
    assert "i0.png (other content, same size)" in out and "Re-read 1 changed image(s)." in out


# --- annotation files whose stated size differs from the image ----------------------------
def _rotated_photo(path, orientation: int = 6):
    """A 40 x 20 JPEG (stored pixels) whose EXIF says: shown turned 90 degrees, 20 x 40."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.full((20, 40, 3), 128, np.uint8)).save(path, exif=exif, quality=95)
    return path


def _coco(folder, width: int, height: int, bbox: list[float]):
    import json

    data = {"images": [{"id": 1, "file_name": "photo.jpg", "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox,
                             "area": bbox[2] * bbox[3], "iscrowd": 0}],
            "categories": [{"id": 1, "name": "thing"}]}
    (folder / "ann.json").write_text(json.dumps(data))
    return folder / "ann.json"


def _voc(folder, width: int, height: int, box: tuple[int, int, int, int]):
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    x1, y1, x2, y2 = box
    (folder / "Annotations" / "photo.xml").write_text(
        f"<annotation><filename>photo.jpg</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size><object><name>thing</name>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
        "</bndbox></object></annotation>")


def test_coco_drawn_on_the_unrotated_photo_is_turned_with_it(project, tmp_path):
    _rotated_photo(tmp_path / "ds" / "photo.jpg")
    # a box in the stored pixels (40 x 20): x 2..12, y 4..9
    report = import_dataset(project, "coco", _coco(tmp_path / "ds", 40, 20, [2, 4, 10, 5]))
    rec = project.images()[0]
    assert (rec.width, rec.height) == (20, 40)
    [ann] = project.annotations(rec.id)
    # turned 90 degrees clockwise: x' = 20 - y, y' = x
    assert tuple(ann.geometry) == pytest.approx((11.0, 2.0, 5.0, 10.0))
    assert any("before its EXIF rotation (40x20; shown 20x40)" in w for w in report.warnings)


def test_voc_drawn_on_the_unrotated_photo_is_turned_with_it(project, tmp_path):
    _rotated_photo(tmp_path / "voc" / "JPEGImages" / "photo.jpg")
    _voc(tmp_path / "voc", 40, 20, (3, 5, 12, 9))  # VOC: 1-based pixel numbers
    report = import_dataset(project, "voc", tmp_path / "voc")
    [ann] = project.annotations(project.images()[0].id)
    assert tuple(ann.geometry) == pytest.approx((11.0, 2.0, 5.0, 10.0))
    assert any("EXIF rotation" in w for w in report.warnings)


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_objects_drawn_on_another_size_are_not_imported(project, tmp_path, fmt):
    write_png(tmp_path / "ds" / "JPEGImages" / "photo.jpg", np.zeros((20, 40, 3), np.uint8))
    if fmt == "coco":
        (tmp_path / "ds" / "JPEGImages" / "photo.jpg").rename(tmp_path / "ds" / "photo.jpg")
        source = _coco(tmp_path / "ds", 80, 40, [4, 8, 20, 10])
    else:
        _voc(tmp_path / "ds", 80, 40, (5, 9, 24, 18))
        source = tmp_path / "ds"
    report = import_dataset(project, fmt, source)
    assert report.images == 1 and report.annotations == 0
    [(item, reason)] = report.skipped
    assert "says the image is 80x40, but it is 40x20" in reason and "1 object(s)" in reason
    assert project.annotations(project.images()[0].id) == []


# --- small silent ones --------------------------------------------------------------------
def test_a_multi_page_tiff_says_only_page_one_was_read(project, tmp_path):
    from PIL import Image

    (tmp_path / "ds" / "cell").mkdir(parents=True)
    pages = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 90, 200)]
    pages[0].save(tmp_path / "ds" / "cell" / "stack.tif", save_all=True,
                  append_images=pages[1:])
    write_png(tmp_path / "ds" / "cell" / "single.png", np.zeros((8, 8), np.uint8))
    report = import_dataset(project, "folders", tmp_path / "ds")
    assert report.images == 2
    assert [w for w in report.warnings if "pages" in w] == [
        "cell/stack.tif: the file holds 3 pages; only the first was imported (split the file "
        "to label the others)."]


def test_dangling_links_are_in_the_import_report(project, tmp_path):
    (tmp_path / "ds" / "cell").mkdir(parents=True)
    write_png(tmp_path / "ds" / "cell" / "ok.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "ds" / "cell" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "ds" / "loose.png").symlink_to(tmp_path / "nowhere2.png")
    report = import_dataset(project, "folders", tmp_path / "ds")
    skipped = dict(report.skipped)
    assert report.images == 1
    assert skipped["cell/gone.png"].startswith("broken link")
    assert skipped["loose.png"].startswith("broken link")


def test_one_mask_for_two_images_is_reported(project, tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 1
    write_png(tmp_path / "ds" / "images" / "a.png", np.full((8, 8), 50, np.uint8))
    write_png(tmp_path / "ds" / "images" / "a.tif", np.full((8, 8), 90, np.uint8))
    write_png(tmp_path / "ds" / "masks" / "a.png", mask)
    report = import_dataset(project, "masks", tmp_path / "ds")
    [warning] = [w for w in report.warnings if "label image of" in w]
    assert warning.startswith("a.png is the label image of 2 images (a.png, a.tif)")


def test_an_import_naming_a_class_with_control_characters_is_one_line(project, tmp_path):
    import json

    write_png(tmp_path / "ds" / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "ds" / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3],
                         "area": 9, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "ce\u0000ll"}]}))
    with pytest.raises(ValidationError, match="control characters"):
        import_dataset(project, "coco", tmp_path / "ds" / "ann.json")
    assert project.count_images() == 0 and project.classes() == []  # all or nothing


# --- names near the file system's limit ---------------------------------------------------
def test_long_names_are_cut_on_whole_characters_and_stay_distinct(tmp_path):
    import os

    from studio.core.fileio import FIT_NAME_BYTES, NAME_MAX, atomic_write_text, fit_name

    a, b = "é" * 130 + "a.png", "é" * 130 + "b.png"  # 265 bytes each, differing at the end
    fa, fb = fit_name(a), fit_name(b)
    assert fa != fb and fa.endswith(".png") and fa.startswith("é" * 100)
    assert len(os.fsencode(fa)) <= FIT_NAME_BYTES
    fa.encode("utf-8")  # no character torn in half
    assert fit_name("short.png") == "short.png"
    # a name that fits the file system is written as it is, whatever the temporary name adds
    name = "y" * (NAME_MAX - 4) + ".txt"
    atomic_write_text(tmp_path / name, "ok")
    assert [p.name for p in tmp_path.iterdir()] == [name]
