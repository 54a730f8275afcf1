"""Inspect's session code below the GUI (studio.ml.inspect): overlay pictures, accept
plans, and a semantic session that streams its predictions in. No Qt here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from testutil import add_toy_segmentation, write_png

from studio.core.geometry import MaskGeom
from studio.ml.inspect import overlays as ov
from studio.ml.inspect.accept import plan_accept_mask, plan_accept_objects
from studio.ml.inspect.opening import (
    finish_session,
    open_session,
    prepare_session,
    stream_predictions,
)


class StandIn:
    """A predictor whose probability maps are the label maps blurred a little (channel k
    high where class k is), with one image made wrong on purpose; counts its calls."""

    def __init__(self, project, class_ids: list[int], wrong: int) -> None:
        from studio.core.rasterize import label_map

        self.project, self.wrong, self.calls = project, wrong, []
        self.meta = {"task": "semantic", "class_ids": class_ids,
                     "class_names": ["background", "foreground"], "channels": 3,
                     "epoch": 1, "config": {}}
        self._label_map = label_map

    def predict_array(self, image, name: str = "", image_id=None):
        from studio.ml.predict import PredictionResult

        self.calls.append(image_id)
        labels = self._label_map(self.project, image_id, self.meta["class_ids"]).astype(int)
        labels[labels == 255] = 0
        if image_id == self.wrong:
            labels = 1 - labels
        probs = np.stack([labels == 0, labels == 1]).astype(np.float32) * 0.8 + 0.1
        return PredictionResult(name, image_id, "semantic", self.meta["class_names"], probs,
                                probs.argmax(0).astype(np.uint8))


@pytest.fixture
def seg(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "img", ["val"] * 3, cells=4, cell_px=4)
    arr = np.full((16, 16), 90, np.uint8)
    project.add_image(write_png(tmp_path / "img" / "u.png", arr), split="val")
    ids = project.image_ids(split="val")
    class_ids = [c.id for c in project.classes()]
    return project, ids, StandIn(project, class_ids, wrong=ids[1])


def test_overlays_colour_every_class_unless_hidden():
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    colors = [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    rgba = ov.label_overlay(labels, colors)
    assert [tuple(px) for px in rgba[0, :3]] == [(1, 2, 3, 255), (4, 5, 6, 255), (7, 8, 9, 255)]
    assert rgba[0, 3, 3] == 0
    hidden = ov.label_overlay(labels, colors, hidden=[0, 2])
    assert list(hidden[0, :, 3]) == [0, 255, 0, 0]
    target = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 0]], np.uint8)
    every = ov.difference_overlay(pred, target)  # nothing hidden: right green, wrong orange
    assert [tuple(px[:3]) for px in every[0]] == [ov.TP_COLOR, ov.WRONG_COLOR, ov.TP_COLOR,
                                                  ov.WRONG_COLOR]
    classic = ov.difference_overlay(pred, target, hidden=[0])
    assert classic[0, 0, 3] == 0 and [tuple(px[:3]) for px in classic[0, 1:]] == [
        ov.FP_COLOR, ov.TP_COLOR, ov.FN_COLOR]
    assert ov.hex_to_rgb("#10a0ff") == (16, 160, 255) and ov.hex_to_rgb("grey") == (255, 0, 255)


def test_accept_plans_count_the_labels_a_person_made(seg):
    project, ids, _ = seg
    image_id = ids[0]
    class_ids = [c.id for c in project.classes()]
    rec = project.image(image_id)
    labels = np.zeros((rec.height, rec.width), np.uint8)
    labels[:4, :4] = 1
    plan = plan_accept_mask(project, image_id, labels, class_ids, run_id=7)
    assert plan.human == 2 and len(plan.deletes) == 2  # hand-drawn background, foreground
    assert [a[0] for a in plan.adds] == class_ids and plan.adds[0][3] == "model:7"
    region = np.zeros_like(labels, bool)
    region[:4, :4] = True
    cut = plan_accept_mask(project, image_id, labels, class_ids, 7, region)
    assert not cut.deletes and len(cut.adds) == 1 and cut.human == len(cut.patches) >= 1
    # an image whose labels are a model's: nothing of a person's to replace
    empty = project.add_image(write_png(project.root / "e.png", np.zeros((16, 16),
                                                                         np.uint8)))[0]
    project.add_annotation(empty, class_ids[1], "mask", MaskGeom.from_full(labels == 1),
                           source="model:7")
    assert plan_accept_mask(project, empty, labels, class_ids, 7).human == 0
    boxes = plan_accept_objects(project, image_id, [(1, "box", (0, 0, 3, 3), 0.9)],
                                class_ids, 7, replace_kinds=["box"])
    assert boxes.human == 0 and boxes.adds[0][1:] == ("box", (0, 0, 3, 3), "model:7", 0.9)


def test_a_session_streams_its_predictions_then_ranks_them(seg):
    project, ids, predictor = seg
    session = prepare_session(project, 0, "val", predictor=predictor)
    assert predictor.calls == [] and session.readout is None
    assert [e.image_id for e in session.images if e.labelled] == ids[:3]
    assert [e.image_id for e in session.images if not e.labelled] == [ids[3]]
    first = session.predict(ids[0])  # a window asks for the first image straight away
    seen = []
    stream_predictions(session, on_image=lambda e, d, t: seen.append((e.image_id, d, t)))
    assert seen == [(ids[0], 1, 3), (ids[1], 2, 3), (ids[2], 3, 3)]
    assert predictor.calls == ids[:3]  # the first image was not predicted twice
    assert session.predict(ids[0]) is first
    finish_session(session)
    assert session.readout is not None and len(session.readout) == 3
    ranked = [e.image_id for e in session.images]
    assert ranked[0] == ids[1] and ranked[-1] == ids[3]  # the wrong one first, unlabelled last
    assert session.entry(ids[1]).score < 0.5 < session.entry(ids[0]).score
    figures = session.split_figures(session.recipe)
    assert figures["after"]["images"] == 3 and figures["left_out"] == 0


def test_model_labels_are_left_out_of_the_split_figures(seg):
    project, ids, predictor = seg
    session = open_session(project, 0, "val", predictor=predictor)
    image_id = ids[0]
    class_ids = session.class_ids
    for a in project.annotations(image_id):
        project.delete_annotation(a.id)
    rec = project.image(image_id)
    project.add_annotation(image_id, class_ids[1], "mask",
                           MaskGeom.from_full(np.ones((rec.height, rec.width), bool)),
                           source="model:0")
    project.set_status(image_id, "review")
    session.refresh_target(image_id)
    assert image_id in session.model_labelled
    figures = session.split_figures(session.recipe)
    assert figures["left_out"] == 1 and figures["after"]["images"] == 2
    pos = figures["image_ids"].index(image_id)
    assert math.isnan(figures["dice_after"][pos])
    result = session.image_result(image_id, session.recipe)
    assert result.figures["model_labels"]
