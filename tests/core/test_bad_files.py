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
