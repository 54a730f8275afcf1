"""Classification folders: class and split layouts, bad input, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.folders import folder_name
from studio.core.project import Project

from . import assert_same_annotations


def _tags(project) -> dict[str, list[str]]:
    names = {c.id: c.name for c in project.classes()}
    return {img.name: [names[a.class_id] for a in project.annotations(img.id, kind="tag")]
            for img in project.images()}


def test_class_layout(project, make_image, tmp_path):
    root = tmp_path / "ds"
    make_image("a.png", seed=1, folder=root / "cat")
    make_image("b.png", seed=2, folder=root / "cat" / "nested")
    make_image("c.png", seed=3, folder=root / "dog")
    make_image("loose.png", seed=4, folder=root)
    (root / "dog" / "notes.txt").write_text("not an image")
    report = import_dataset(project, "folders", root)
    assert _tags(project) == {"a.png": ["cat"], "b.png": ["cat"], "c.png": ["dog"]}
    assert report.classes_added == ["cat", "dog"]
    assert report.skipped[0] == ("loose.png", "image is not inside a class folder")
    assert report.skipped[1][0] == "dog/notes.txt" and "not an image format" in report.skipped[1][1]
    assert len(report.skipped) == 2  # every file not imported, each with its reason
    assert project.count_images(split="none") == 3


def test_gif_and_unknown_files_in_a_class_folder(project, make_image, tmp_path):
    from PIL import Image

    root = tmp_path / "ds"
    make_image("a.png", seed=1, folder=root / "cat")
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(root / "cat" / "anim.gif")
    (root / "cat" / "scan.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00")
    report = import_dataset(project, "folders", root)
    assert sorted(_tags(project)) == ["a.png", "anim.gif"]  # predict reads GIFs: so do we
    gif = next(i for i in project.images() if i.name == "anim.gif")
    assert (gif.width, gif.height, gif.channels) == (8, 6, 3)
    reasons = dict(report.skipped)
    assert set(reasons) == {"cat/scan.heic", "cat/.DS_Store"}
    assert ".heic" in reasons["cat/scan.heic"] and reasons["cat/.DS_Store"] == "hidden file"


def test_split_layout(project, make_image, tmp_path):
    root = tmp_path / "ds"
    make_image("a.png", seed=1, folder=root / "train" / "cat")
    make_image("b.png", seed=2, folder=root / "valid" / "dog")
    make_image("c.png", seed=3, folder=root / "test" / "cat")
    make_image("d.png", seed=4, folder=root / "unassigned" / "dog")
    import_dataset(project, "folders", root)
    splits = {img.name: img.split for img in project.images()}
    assert splits == {"a.png": "train", "b.png": "val", "c.png": "test", "d.png": "none"}
    assert [c.name for c in project.classes()] == ["cat", "dog"]


def test_limit_and_split_option(project, make_image, tmp_path):
    for i in range(5):
        make_image(f"{i}.png", seed=i, folder=tmp_path / "ds" / "x")
    report = import_dataset(project, "folders", tmp_path / "ds", limit=2, split="val")
    assert report.images == 2 and project.count_images(split="val") == 2


def test_duplicate_image_in_two_classes(project, make_image, tmp_path):
    make_image("a.png", seed=1, folder=tmp_path / "ds" / "cat")
    make_image("a.png", seed=1, folder=tmp_path / "ds" / "dog")
    report = import_dataset(project, "folders", tmp_path / "ds")
    assert report.images == 1 and report.duplicate_images == 1
    assert "same image content" in report.skipped[0][1]


def test_no_images(project, tmp_path):
    (tmp_path / "ds" / "cat").mkdir(parents=True)
    with pytest.raises(FormatError, match="No images found in"):
        import_dataset(project, "folders", tmp_path / "ds")


def test_unreadable_image_is_skipped(project, make_image, tmp_path):
    make_image("good.png", folder=tmp_path / "ds" / "cat")
    (tmp_path / "ds" / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    report = import_dataset(project, "folders", tmp_path / "ds")
    assert report.images == 1
    assert report.skipped[0][0] == "cat/bad.png" and "unreadable" in report.skipped[0][1]


def test_round_trip_with_splits(project, make_image, tmp_path):
    root = tmp_path / "ds"
    make_image("a.png", seed=1, folder=root / "train" / "cat")
    make_image("b.png", seed=2, folder=root / "val" / "dog")
    make_image("c.png", seed=3, folder=root / "unassigned" / "dog")
    import_dataset(project, "folders", root)
    untagged, _ = project.add_image(make_image("u.png", seed=9))
    report = export_dataset(project, "folders", tmp_path / "out")
    assert (tmp_path / "out" / "train" / "cat" / "a.png").is_file()
    assert (tmp_path / "out" / "unassigned" / "dog" / "c.png").is_file()
    assert report.skipped[0][1] == "image has no tag (class) to file it under"
    project.delete_image(untagged)
    with Project.create(tmp_path / "again") as again:
        import_dataset(again, "folders", tmp_path / "out")
        assert_same_annotations(project, again)
    only_val = export_dataset(project, "folders", tmp_path / "val_only", split="val")
    assert only_val.images == 1 and (tmp_path / "val_only" / "dog" / "b.png").is_file()


def test_folder_name_is_safe():
    assert folder_name("tv/monitor") == "tv_monitor"
    assert folder_name("..") == "_"


def test_sklearn_digits(shared_datasets, tmp_path):
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "folders", shared_datasets / "sklearn_digits" / "images")
        assert report.images + report.duplicate_images == 1797
        assert [c.name for c in project.classes()] == [str(d) for d in range(10)]
        assert report.annotations_by_kind["tag"] == report.images
        with Project.create(tmp_path / "few") as few:
            import_dataset(few, "folders", shared_datasets / "sklearn_digits" / "images", limit=3)
            export_dataset(few, "folders", tmp_path / "out")
            with Project.create(tmp_path / "again") as again:
                import_dataset(again, "folders", tmp_path / "out")
                assert_same_annotations(few, again)
