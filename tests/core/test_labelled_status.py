"""Imported labelled images are done; "unlabelled" means without annotations; object
counts leave image tags out; model-made annotations mark their image for review."""

from __future__ import annotations

import shutil

import pytest

from studio.core.errors import NotFoundError
from studio.core.formats import import_dataset


def test_import_marks_labelled_images_done_and_says_so(project, test_data, tmp_path):
    src = tmp_path / "voc"
    shutil.copytree(test_data / "voc" / "mini", src)
    report = import_dataset(project, "voc", src)
    records = project.images()
    labelled = [r for r in records if r.n_annotations]
    assert labelled and report.images_done == len(labelled)
    assert all(r.status == "done" for r in labelled)
    assert all(r.status == "new" for r in records if not r.n_annotations)
    assert f"{len(labelled)} image(s) came with annotations and are marked done" in report.summary()
    assert report.as_dict()["images_done"] == len(labelled)
    assert project.image_ids(unlabelled=True) == [r.id for r in records if not r.n_annotations]


def test_import_keeps_an_edited_status_and_fills_unlabelled_duplicates(project, make_image,
                                                                       tmp_path):
    import json

    img = make_image("a.png", 20, 30, seed=3, folder=tmp_path / "ds")
    make_image("b.png", 20, 30, seed=4, folder=tmp_path / "ds")
    a, _ = project.add_image(img)  # already here, unlabelled: the import labels it
    (tmp_path / "ds" / "a.json").write_text(json.dumps({
        "imagePath": "a.png", "imageHeight": 20, "imageWidth": 30, "shapes": [
            {"label": "x", "shape_type": "rectangle", "points": [[1, 1], [9, 9]]}]}))
    (tmp_path / "ds" / "b.json").write_text(json.dumps({
        "imagePath": "b.png", "imageHeight": 20, "imageWidth": 30, "shapes": []}))
    report = import_dataset(project, "labelme", tmp_path / "ds")
    by_name = {r.name: r for r in project.images()}
    assert by_name["a.png"].status == "done" and by_name["b.png"].status == "new"
    assert report.images_done == 1
    project.set_status(a, "review")
    import_dataset(project, "labelme", tmp_path / "ds")
    assert project.image(a).status == "review"  # a person's status is never overwritten


def test_object_count_leaves_tags_out_and_done_empty_images_are_labelled(project, make_image):
    c = project.add_class("cell")
    a, _ = project.add_image(make_image("a.png", seed=1))
    b, _ = project.add_image(make_image("b.png", seed=2))
    e, _ = project.add_image(make_image("e.png", seed=3))
    for _ in range(4):
        project.add_annotation(a, c, "box", (1, 1, 5, 5))
    project.add_annotation(a, c, "tag")
    project.add_annotation(b, c, "tag")
    rec = project.image(a)
    assert rec.n_objects == 4 and rec.n_annotations == 5
    assert project.image(b).n_objects == 0
    assert project.image_ids(unlabelled=True) == [e]
    project.set_status(e, "done")  # an empty image a person marked done is labelled
    assert project.image_ids(unlabelled=True) == []


def test_replacing_model_annotations_marks_the_image_for_review(project, make_image):
    cls = project.add_class("cell")
    a, _ = project.add_image(make_image("a.png", 20, 30, seed=1))
    b, _ = project.add_image(make_image("b.png", 20, 30, seed=2))
    project.set_status([a, b], "done")
    manual = project.add_annotation(a, cls, "box", (1, 1, 4, 4))
    other_run = project.add_annotation(a, cls, "box", (2, 2, 4, 4), source="model:2")
    box = dict(class_id=cls, kind="box", geometry=(0, 0, 5, 5), score=0.9)
    first = project.replace_model_annotations(a, "model:1", [box, box])
    again = project.replace_model_annotations(a, "model:1", [box])
    assert len(first) == 2 and len(again) == 1
    kept = {x.id: x.source for x in project.annotations(a)}
    assert kept == {manual: "manual", other_run: "model:2", again[0]: "model:1"}
    assert project.annotation(again[0]).score == 0.9
    assert project.image(a).status == "review" and project.waiting_for_review() == {a}
    assert project.pending_model_images() == set()  # its manual box is still ground truth
    # nothing added: nothing to review, the status stays
    assert project.replace_model_annotations(b, "model:1", []) == []
    assert project.image(b).status == "done"
    # a failing item leaves the old annotations and the status as they were
    bad = dict(class_id=cls + 99, kind="box", geometry=(0, 0, 5, 5))
    with pytest.raises(NotFoundError):
        project.replace_model_annotations(b, "model:2", [bad])
    project.set_status(a, "done")
    with pytest.raises(NotFoundError):
        project.replace_model_annotations(a, "model:1", [box, bad])
    assert [x.id for x in project.annotations(a)] == [manual, other_run, again[0]]
    assert project.image(a).status == "done"
