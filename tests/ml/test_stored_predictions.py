"""Predictions stored on labelled images (predict --store, pre-labels) wait for review, but
they never take the labels people drew on those images out of training."""

from __future__ import annotations

import numpy as np
import pytest
from testutil import add_toy_classification, add_toy_segmentation, write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.config import validate_config
from studio.ml.datasets import build_run_data, read_split
from studio.ml.fingerprint import fingerprint
from studio.ml.tasks.detection.data import build_detection_data, read_detection_split


def _boxes_project(project, folder, per_image: int = 10, images: int = 3) -> list[int]:
    cls = project.add_class("cell")
    ids = []
    for i in range(images + 1):
        iid, _ = project.add_image(write_png(folder / f"b{i}.png",
                                             np.full((64, 64, 3), 20 * i, np.uint8)),
                                   split="train" if i < images else "val")
        for k in range(per_image):
            project.add_annotation(iid, cls, "box", [k * 5.0, k * 5.0, 4.0, 4.0])
        ids.append(iid)
    return ids


def _store(project, ids, run_id: int = 7, kind: str = "box", geometry=None):
    """What `predict --store` does: the run's objects replace its earlier ones, the
    images are marked for review."""
    cls = project.classes()[0].id
    for iid in ids:
        project.replace_model_annotations(iid, f"model:{run_id}", [
            {"class_id": cls, "kind": kind, "geometry": geometry or [1.0, 2.0, 9.0, 9.0],
             "score": 0.9}])


def test_stored_detections_leave_hand_drawn_boxes_in_training(project, tmp_path):
    ids = _boxes_project(project, tmp_path)
    _store(project, ids[:3])
    assert {project.image(i).status for i in ids[:3]} == {"review"}
    assert project.waiting_for_review() == set(ids[:3])
    assert project.pending_model_images() == set()  # none is without a person's labels
    source = read_detection_split(project, "detection", "train", [project.classes()[0].id])
    assert len(source.samples) == 3 and source.object_count == 30  # the model's 3 are out
    cfg = validate_config({"task": "detection", "image_size": 48}, project)
    data = build_detection_data(project, cfg)  # "the train split has no objects" before
    assert len(data.train.source.samples) == 3


def test_an_image_with_only_a_models_objects_is_counted_in_the_message(project, tmp_path):
    ids = _boxes_project(project, tmp_path, per_image=0, images=2)
    _store(project, ids[:2])
    cfg = validate_config({"task": "detection", "image_size": 48}, project)
    with pytest.raises(ConfigError, match=r"2 image\(s\) hold only a model's objects waiting "
                                          "for review"):
        build_detection_data(project, cfg)


def test_stored_regions_and_tags_leave_hand_labels_in_training(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "s", ["train"] * 2 + ["val"], cells=4)
    train = project.image_ids(split="train")
    full = MaskGeom.from_full(np.ones((16, 16), bool))
    _store(project, train, kind="mask", geometry=full)
    fg = project.class_by_name("foreground").id
    bg = project.class_by_name("background").id
    source = read_split(project, "semantic", "train", [bg, fg])
    assert len(source.samples) == 2
    for iid in train:
        assert all(not a.source.startswith("model:") for a in source.snapshot.regions[iid])
    fp = fingerprint(project, "semantic", device="cpu")
    assert fp["images"]["labelled_by_split"]["train"] == 2


def test_stored_tags_leave_hand_tags_in_training(project, tmp_path):
    add_toy_classification(project, tmp_path / "c", ["train"] * 4 + ["val"] * 2, size=8)
    train = project.image_ids(split="train")
    bright = project.class_by_name("bright").id
    for iid in train:  # the model says "bright" everywhere
        project.replace_model_annotations(iid, "model:3", [
            {"class_id": bright, "kind": "tag", "geometry": None, "score": 0.6}])
    cfg = validate_config({"task": "classification", "image_size": 8}, project)
    data = build_run_data(project, cfg)
    labels = [s.label for s in data.train.source.samples]
    assert len(labels) == 4 and sorted(labels) == [0, 0, 1, 1]  # the people's tags
