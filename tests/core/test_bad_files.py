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
