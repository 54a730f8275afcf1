"""Relinking images whose files moved: one file, or a folder searched by name."""

from __future__ import annotations

import shutil

import pytest

from studio.core.errors import StudioError
from studio.core.relink import missing_image_ids, relink_folder, relink_image


def test_relink_one_file_checks_size_and_duplicates(project, make_image, tmp_path):
    a_path = make_image("a.png", 20, 30, seed=1)
    b_path = make_image("b.png", 20, 30, seed=2)
    a, _ = project.add_image(a_path)
    b, _ = project.add_image(b_path)
    moved = tmp_path / "moved" / "a.png"
    moved.parent.mkdir()
    shutil.move(a_path, moved)
    assert missing_image_ids(project) == [a]
    wrong = make_image("small.png", 10, 10, seed=3, folder=tmp_path / "other")
    with pytest.raises(StudioError, match="10 x 10"):
        relink_image(project, a, wrong)
    with pytest.raises(StudioError, match="already image"):
        relink_image(project, a, b_path)
    with pytest.raises(StudioError, match="does not exist"):
        relink_image(project, a, tmp_path / "nowhere.png")
    relink_image(project, a, moved)
    assert project.image(a).abs_path == moved.resolve()
    assert missing_image_ids(project) == []


def test_relink_folder_finds_every_missing_image_by_name(project, make_image, tmp_path):
    ids = [project.add_image(make_image(f"im_{i}.png", 16, 16, seed=i))[0] for i in range(3)]
    new_home = tmp_path / "new_home" / "sub"
    new_home.mkdir(parents=True)
    for i in (0, 1):
        shutil.move(tmp_path / "images" / f"im_{i}.png", new_home / f"IM_{i}.png")
    (tmp_path / "images" / "im_2.png").unlink()
    make_image("im_1.png", 16, 16, seed=99, folder=tmp_path / "new_home")  # same name, other
    report = relink_folder(project, tmp_path / "new_home")
    assert sorted(i for i, _ in report.relinked) == ids[:2]
    assert project.image(ids[1]).abs_path == (new_home / "IM_1.png").resolve()  # content won
    assert report.not_found == [project.image(ids[2]).path]
    assert "Relinked 2 image(s)" in report.summary() and "1 still missing" in report.summary()
    with pytest.raises(StudioError, match="not a folder"):
        relink_folder(project, tmp_path / "nope")
