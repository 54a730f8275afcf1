"""The bundled sample project builds, has the promised content, and is reused."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import ProjectError
from studio.core.images import load_image
from studio.core.project import Project
from studio.sample import ensure_sample_project, sample_data_dir


def test_sample_project_content(tmp_path):
    folder = ensure_sample_project(tmp_path / "sample")
    assert folder == (tmp_path / "sample").resolve()
    assert not (tmp_path / "sample.building").exists()
    with Project.open(folder) as p:
        assert [c.name for c in p.classes()] == ["membrane", "cell"]
        counts = p.counts()
        labelled = p.images(status="done")
        assert len(labelled) == 5
        assert counts["splits"] == {"train": 3, "val": 1, "test": 1, "none": 2}
        assert counts["statuses"]["new"] == 2
        assert counts["annotations"]["by_kind"] == {"mask": 10}
        membrane = p.class_by_name("membrane").id
        cell = p.class_by_name("cell").id
        for rec in labelled:
            # images were copied into the project, stored relative to it
            assert not rec.path.startswith("/") and rec.abs_path.is_file()
            anns = {a.class_id: a for a in p.annotations(rec.id)}
            assert set(anns) == {membrane, cell}
            assert all(a.source == "import:masks" for a in anns.values())
            label = load_image(sample_data_dir() / "masks" / rec.name, mode="gray")
            cell_full = anns[cell].geometry.to_full(rec.height, rec.width)
            membrane_full = anns[membrane].geometry.to_full(rec.height, rec.width)
            np.testing.assert_array_equal(cell_full, label >= 128)
            np.testing.assert_array_equal(membrane_full, label < 128)


def test_sample_project_is_reused_and_refuses_foreign_folder(tmp_path):
    folder = ensure_sample_project(tmp_path / "sample")
    with Project.open(folder) as p:
        p.set_status(p.image_ids()[0], "review")
    again = ensure_sample_project(folder)
    with Project.open(again) as p:  # not rebuilt: the edit survives
        assert p.count_images(status="review") == 1
    other = tmp_path / "busy"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError):
        ensure_sample_project(other)
    assert (other / "notes.txt").read_text() == "mine"
