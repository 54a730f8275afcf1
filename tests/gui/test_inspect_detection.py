"""The Inspect workspace on detection and instance runs: raw detections predicted once
per image, sliders that refilter them (the network is never called again), matched /
false positive / missed on a planted case, the objects list, readouts, accept and undo,
and a tiny instance run trained in the test opened end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_inspect import answer
from testutil import FAST_TRAINING, add_toy_objects, inspect_on_copy, write_png

from studio.core.project import Project
from studio.ml.inspect.detections import DetectionParams, open_detection_session
from studio.ml.tasks.detection.matching import counts_figures, filter_detections, match_detections
from studio.ml.tasks.detection.predict import Detections

SIZE = 64


def shot(widget, name: str) -> None:
    """Offscreen grabs for a person to look at, when INSPECT_SHOTS names a folder."""
    import os

    folder = os.environ.get("INSPECT_SHOTS")
    if folder:
        widget.grab().save(os.path.join(folder, name))

# planted ground truth (class, XYXY): image "a"
GT_A = [(0, (10, 10, 30, 30)), (1, (40, 40, 60, 60)), (0, (5, 40, 20, 55))]
# planted detections of "a" (class, XYXY, score):
PRED_A = [
    (0, (10, 10, 30, 30), 0.95),  # matches square 0
    (0, (11, 11, 31, 31), 0.90),  # a double of it: NMS 0.5 removes it, NMS 0.9 keeps it (FP)
    (1, (40, 40, 60, 60), 0.40),  # the disc, below 0.5: missed until the score slider drops
    (0, (40, 40, 60, 60), 0.80),  # right place, wrong class: false positive
    (1, (5, 40, 20, 55), 0.70),  # wrong class over square 2: false positive, square missed
]
GT_B = [(0, (8, 8, 28, 28)), (1, (30, 30, 50, 50))]
PRED_B = [(0, (8, 8, 28, 28), 0.9), (1, (31, 30, 50, 50), 0.85)]  # both right
PRED_EMPTY = [(1, (20, 20, 40, 40), 0.6)]  # an image without objects: a false positive


class FakeDetector:
    """Stands in for a run's predictor: fixed detections per file, calls counted."""

    def __init__(self, outputs: dict[str, list], class_ids: list[int], task: str = "detection"):
        self.outputs, self.calls = outputs, 0
        self.meta = {"task": task, "class_ids": class_ids, "class_names": ["square", "disc"],
                     "channels": 3,
                     "config": {"detection": {"score_threshold": 0.5, "nms_iou": 0.5}}}

    def detect(self, image, name="", image_id=None, score_threshold=None, nms_iou=None,
               max_detections=None):
        self.calls += 1
        rows = [r for r in self.outputs[name.replace("\\", "/").rsplit("/", 1)[-1]]
                if r[2] >= (score_threshold or 0)]
        h, w = image.shape[:2]
        return Detections(name, image_id, list(self.meta["class_names"]),
                          np.asarray([r[1] for r in rows], np.float32).reshape(-1, 4),
                          np.asarray([r[2] for r in rows], np.float32),
                          np.asarray([r[0] for r in rows], np.int64), None, w, h)


@pytest.fixture
def planted(project, tmp_path):
    """Images a (planted errors), b (all right) and e (no objects) in val."""
    ids = [project.get_or_add_class("square"), project.get_or_add_class("disc")]
    images = {}
    for name, gt in (("a", GT_A), ("b", GT_B), ("e", [])):
        arr = np.full((SIZE, SIZE, 3), 30, np.uint8)
        for _c, (x1, y1, x2, y2) in gt:
            arr[y1:y2, x1:x2] = 200
        image_id, _ = project.add_image(write_png(tmp_path / f"{name}.png", arr), split="val")
        for c, (x1, y1, x2, y2) in gt:
            project.add_annotation(image_id, ids[c], "box", (x1, y1, x2 - x1, y2 - y1))
        images[name] = image_id
    detector = FakeDetector({"a.png": PRED_A, "b.png": PRED_B, "e.png": PRED_EMPTY}, ids)
    project.planted = images
    return project, detector


def test_filter_and_match_follow_coco_greedy_matching():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], np.float32)

    class Raw:
        pass

    raw = Raw()
    raw.boxes, raw.scores, raw.classes = boxes, np.array([0.6, 0.9, 0.7], np.float32), \
        np.array([0, 0, 1])
    assert filter_detections(raw, 0.65, 0.5).tolist() == [1, 2]  # score order, class-wise
    assert filter_detections(raw, 0.0, 0.95).tolist() == [1, 2, 0]
    assert filter_detections(raw, 0.95, 0.5).tolist() == []
    # two detections want the same object: the higher score takes it, the other is an FP
    ious = np.array([[0.9, 0.0], [0.7, 0.6]], np.float32)
    m = match_detections(np.array([0, 0]), np.array([0, 1]), np.array([0, 0]), ious, 0.5)
    assert m.match.tolist() == [0, 1] and m.gt_match.tolist() == [0, 1]
    m = match_detections(np.array([0, 0]), np.array([1, 0]), np.array([0, 0]), ious, 0.65)
    assert m.match.tolist() == [0, -1] and (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert math.isnan(counts_figures(0, 0, 0)["f1"]) and counts_figures(1, 1, 2)["f1"] == 0.4


def test_planted_statuses_and_split_figures(planted):
    project, detector = planted
    s = open_detection_session(project, 0, "val", predictor=detector)
    assert detector.calls == 3  # once per image
    assert s.run_metrics == {}  # no run record (a stand-in detector)
    a = project.planted["a"]
    r = s.image_result(a, DetectionParams(0.5, 0.5, 0.5))
    rows = [(row.source, row.index, row.status) for row in r.rows()]
    assert rows == [("prediction", 0, "matched"), ("prediction", 3, "false positive"),
                    ("prediction", 4, "false positive"), ("ground truth", 1, "missed"),
                    ("ground truth", 2, "missed")]
    assert (r.figures["tp"], r.figures["fp"], r.figures["fn"]) == (1, 2, 2)
    assert r.rows()[0].iou == pytest.approx(1.0)
    r = s.image_result(a, DetectionParams(0.3, 0.5, 0.5))
    assert [row.status for row in r.rows()].count("matched") == 2
    r = s.image_result(a, DetectionParams(0.5, 0.9, 0.5))  # the double survives NMS
    assert [(row.index, row.status) for row in r.rows()][:2] == [(0, "matched"),
                                                                (1, "false positive")]
    split = s.split_figures(DetectionParams(0.5, 0.5, 0.5))
    assert (split["tp"], split["fp"], split["fn"]) == (3, 3, 2)  # a + b + the empty image
    assert split["precision"] == pytest.approx(0.5) and split["recall"] == pytest.approx(0.6)
    box = split["map"]["box"]
    assert 0 < box["map50"] < 1 and box["map"] <= box["map50"]
    # worst first; the image without objects after the labelled ones
    assert [e.image_id for e in s.images] == [a, project.planted["b"], project.planted["e"]]
    assert detector.calls == 3


@pytest.fixture
def ws(qtbot, planted):
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    project, detector = planted
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(1500, 850)
    w.show()
    w.set_document(LabelDocument(project))
    w.detector = detector
    yield w
    w.shutdown()
    w.set_document(None)


def show(qtbot, w):
    session = open_detection_session(w.project, 0, "val", predictor=w.detector)
    with qtbot.waitSignals([w.imageShown, w.splitUpdated], timeout=20000):
        w.show_session(session)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)
    return session


def move(qtbot, w, slider, value):
    panel = w.detection.panel
    with qtbot.waitSignals([w.imageShown, w.splitUpdated], timeout=20000):
        getattr(panel, slider).setValue(value)
        panel.flush()
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)


def test_sliders_refilter_without_the_network(ws, qtbot):
    s = show(qtbot, ws)
    panel = ws.detection.panel
    assert ws.image_id == ws.project.planted["a"]  # worst first
    assert not ws.view_bar.isVisible() and panel.isVisible() and not ws.recipe_panel.isVisible()
    assert panel.statuses() == ["matched", "false positive", "false positive", "missed",
                                "missed"]
    assert panel.value("Precision", 0) == "0.333" and panel.value("Recall", 1) == "0.600"
    assert panel.value("Box mAP@0.5", 1) != "–"
    map50 = panel.value("Box mAP@0.5", 1)
    calls = ws.detector.calls
    move(qtbot, ws, "score", 0.3)
    assert panel.statuses().count("matched") == 2 and panel.statuses().count("missed") == 1
    assert panel.value("Recall", 0) == "0.667" and panel.value("Recall", 1) == "0.800"
    assert panel.value("Box mAP@0.5", 1) == map50  # mAP does not depend on the score
    move(qtbot, ws, "nms", 0.9)
    assert len(panel.statuses()) == 6 and panel.statuses()[1] == "false positive"
    assert ws.detector.calls == calls == 3  # the network ran once per image, no more
    shot(ws, "inspect_detection_planted.png")
    # boxes on the canvas: one per kept detection and per ground-truth object
    keys = ws.detection.layer.keys()
    assert sum(k[0] == "prediction" for k in keys) == 5
    assert sum(k[0] == "ground truth" for k in keys) == 3
    # the browser follows: image a is still the worst (F1), errors counted
    assert ws.browser.image_ids()[0] == ws.project.planted["a"]
    assert s.network_calls == 3


def test_clicking_an_object_selects_and_centres_it(ws, qtbot):
    show(qtbot, ws)
    panel, canvas = ws.detection.panel, ws.view.left
    r = panel.statuses().index("missed")
    panel.select_row(r + 1)  # the second missed object: square 2 at (5, 40)-(20, 55)
    assert ws.detection.layer.selected == ("ground truth", 2)
    assert canvas.auto_fit  # all of it was in sight: the view stays where it was
    canvas.scale(8, 8)  # zoomed in on the middle: the object is out of sight
    canvas.centerOn(32, 32)
    panel.select_row(0)
    panel.select_row(r + 1)
    centre = canvas.mapToScene(canvas.viewport().rect().center())
    assert abs(centre.x() - 12.5) < 2 and abs(centre.y() - 47.5) < 2
    item = ws.detection.layer.items[("ground truth", 2)]
    assert item.pen().widthF() > 3
    assert not panel.accept_selected.isEnabled()  # a missed object is no detection
    panel.select_row(0)
    assert panel.accept_selected.isEnabled()
    # a click on the image picks the smallest object under it: the double at (11, 11)
    ws.detection.panel.nms.setValue(0.9)
    ws.detection.panel.flush()
    qtbot.waitUntil(lambda: len(panel.statuses()) == 6 and not ws.pool.busy, timeout=20000)
    canvas.clicked.emit(30.5, 30.5)  # inside the double (11..31) only
    assert ws.detection.layer.selected == ("prediction", 1)
    assert panel.selected_row().index == 1
    move(qtbot, ws, "score", 0.3)  # still kept: still selected, in the list too
    assert ws.detection.layer.selected == ("prediction", 1)
    assert panel.selected_row().index == 1 and len(panel.statuses()) == 6


def test_accept_writes_boxes_and_undo_takes_them_out(ws, qtbot):
    show(qtbot, ws)
    project, a = ws.project, ws.project.planted["a"]
    before = sorted((x.class_id, x.bbox) for x in project.annotations(a))
    questions = []
    answer(qtbot, "Yes", questions)  # its boxes were drawn by a person: asked first
    with qtbot.waitSignal(ws.imageShown, timeout=20000):
        ws.detection.accept()
    assert "drawn or imported by a person" in questions[0]
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    anns = project.annotations(a)
    assert len(anns) == 3 and all(x.source == "model:0" and x.kind == "box" for x in anns)
    assert sorted(round(x.score, 2) for x in anns) == [0.7, 0.8, 0.95]
    assert project.image(a).status == "review"
    # the image shows the detections against its objects now: every kept one matches;
    # a model's objects waiting for review are no ground truth: out of the split figures
    assert ws.detection.panel.statuses() == ["matched"] * 3
    s = ws.session
    assert a in s.pending and a not in s.evaluated and len(s.evaluated) == 2
    assert ws.detection.panel.value("Recall", 1) == "1.000"  # b alone (e has no objects)
    assert "waiting for review" in ws.run_bar.status.text()
    with qtbot.waitSignals([ws.imageShown, ws.splitUpdated], timeout=20000):
        ws.detection.panel.undo.click()
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    assert sorted((x.class_id, x.bbox) for x in project.annotations(a)) == before
    assert project.image(a).status != "review"
    assert a not in s.pending and a in s.evaluated
    assert ws.detection.panel.value("Recall", 1) == "0.600"
    ws.detection.panel.select_row(1)
    ws.detection.accept(selected=True)
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    added = [x for x in project.annotations(a) if x.source == "model:0"]
    assert len(added) == 1 and len(project.annotations(a)) == 4
    move(qtbot, ws, "score", 0.99)
    errors = []
    ws.errorShown.connect(errors.append)
    ws.detection.accept()
    assert errors and "No detection is kept" in errors[0]


# --- a tiny instance run, trained in the test, opened through the Open button's path ----
TINY = {"task": "instance", "epochs": 1, "image_size": 48, "batch_size": 2,
        "resize_policy": "resize", "model_options": {"min_size": 64, "max_size": 64},
        "device": "cpu", **FAST_TRAINING}


@pytest.fixture(scope="module")
def instance_template(tmp_path_factory):
    import torch

    from studio.ml.fit import fit

    root = tmp_path_factory.mktemp("inst")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with Project.create(root / "proj", name="t") as project:
        add_toy_objects(project, root / "img", ["train"] * 3 + ["val"] * 2, kind="mask")
        run_id = fit(project, dict(TINY)).run_id
    torch.set_num_threads(threads)
    return root / "proj", run_id


@pytest.fixture
def inst_ws(qtbot, instance_template, tmp_path):
    with inspect_on_copy(qtbot, instance_template, tmp_path) as w:
        yield w


def test_an_instance_run_opens_with_masks_and_mask_map(inst_ws, qtbot):
    w = inst_ws
    assert w.run_bar.run.findData(w.run_id) >= 0  # detection-type runs are listed
    w.run_bar.run.setCurrentIndex(w.run_bar.run.findData(w.run_id))
    # before Open, the chosen run's panels: objects and sliders, not the pixel recipe
    assert w.detection.panel.isVisibleTo(w) and not w.recipe_panel.isVisibleTo(w)
    assert w.browser.headerItem().text(1) == "F1"  # the objects' columns, not Dice
    with qtbot.waitSignals([w.sessionOpened, w.imageShown, w.splitUpdated], timeout=60000):
        w.open_selected()
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)
    s = w.session
    assert s.task == "instance" and len(s.raw) == 2 and s.network_calls == 2
    assert all(raw.masks is not None and len(raw.masks) == len(raw) for raw in s.raw.values())
    panel = w.detection.panel
    assert panel.value("Mask mAP@0.5", 1) != "–" and panel.value("Box mAP@0.5", 1) != "–"
    best = w.project.run(w.run_id).best_metrics
    assert panel.value("Mask mAP@0.5", 2) == f"{best['mask_map50']:.3f}"  # the run's record
    # at the run's own NMS the mAPs are the engine's evaluation of the split (up to greedy
    # NMS done in two passes, loose then the run's, which can drop a rare extra box)
    from studio.ml.evaluation import evaluate_run

    engine = evaluate_run(w.project, w.run_id, "val", device="cpu")
    ours = s.map_report(s.default_params.nms_iou)
    for kind in ("box", "mask"):
        for key in ("map", "map50"):
            assert ours[kind][key] == pytest.approx(engine[kind][key], abs=5e-3)
    move(qtbot, w, "score", 0.01)  # everything the network kept: masks drawn
    r = w.detection.result
    assert len(r.matching.kept) > 0
    assert r.overlay is not None and r.overlay.shape == (64, 64, 4) and r.overlay[..., 3].any()
    assert s.network_calls == 2
    shot(w, "inspect_instance_run.png")
    answer(qtbot, "Yes")
    with qtbot.waitSignal(w.imageShown, timeout=20000):
        w.detection.accept()
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)
    anns = w.project.annotations(r.image_id)
    assert anns and all(a.kind == "mask" and a.source == f"model:{w.run_id}" for a in anns)
    w.close_session()  # as opening another project does: no run's split sliders stay
    assert not panel.seed.isVisibleTo(w) and panel.score.value() == 0.5


def test_panels_follow_the_task(ws, qtbot):
    from studio.gui.inspect.task_views import TASK_VIEWS, views_for

    show(qtbot, ws)
    queue_tab = ws.left_tabs.indexOf(ws.jobs.queues["label-errors"])
    assert not ws.left_tabs.isTabVisible(queue_tab)  # the queues are pixel-wise
    ws._arrange(views_for("semantic"))
    assert ws.recipe_panel.isVisible() and ws.view_bar.isVisible()
    assert not ws.detection.panel.isVisible() and ws.left_tabs.isTabVisible(queue_tab)
    assert set(TASK_VIEWS) == {"classification", "semantic", "detection", "instance"}
    with pytest.raises(Exception, match="cannot be inspected"):
        views_for("regression")


def test_no_detections_anywhere_and_a_move_cut_short(ws, qtbot):
    ws.detector.outputs = {k: [] for k in ws.detector.outputs}
    s = show(qtbot, ws)
    panel = ws.detection.panel
    statuses = panel.statuses()
    assert set(statuses) == {"missed"} and len(statuses) == len(s.gt[ws.image_id]) > 0
    assert panel.value("Precision", 1) == "–" and panel.value("Recall", 1) == "0.000"
    assert panel.value("Box mAP@0.5", 1) == "0.000"
    errors = []
    ws.errorShown.connect(errors.append)
    ws.detection.accept()
    assert errors and "No detection is kept" in errors[-1]
    panel.score.setValue(0.2)
    panel.flush()
    ws.shutdown()  # mid-update: nothing may be left running (the fixture checks too)
    assert not ws.pool.busy
    assert s.network_calls == 3


def test_the_objects_list_sorts_by_any_column(ws, qtbot):
    from PySide6.QtCore import Qt

    show(qtbot, ws)
    panel = ws.detection.panel
    panel.objects.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # status
    assert panel.statuses() == sorted(panel.statuses())
    panel.objects.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # score, no score last
    keys = panel.row_keys()
    assert keys[0] == ("prediction", 4) and keys[-2:] == [("ground truth", 1),
                                                          ("ground truth", 2)]
    panel.select_key(("prediction", 0))
    assert panel.selected_row().index == 0 and ws.detection.layer.selected == ("prediction", 0)
    move(qtbot, ws, "score", 0.3)  # new rows keep the chosen order
    scores = [ws.detection.result.raw.scores[i] for s, i in panel.row_keys() if s == "prediction"]
    assert scores == sorted(scores)
    assert panel.model.headerData(2, Qt.Orientation.Horizontal) == "Score"


def test_images_waiting_for_review_are_listed_last_and_left_out(planted):
    project, detector = planted
    b = project.planted["b"]
    square = project.classes()[0].id
    # only a model's objects: objects people drew on an image under review still count
    project.delete_annotations([a.id for a in project.annotations(b)])
    for c, (x1, y1, x2, y2) in GT_B:
        project.add_annotation(b, project.classes()[c].id, "box", (x1, y1, x2 - x1, y2 - y1),
                               source="model:7")
    project.add_annotation(b, square, "box", (1, 1, 5, 5), source="model:7")
    project.set_status(b, "review")
    s = open_detection_session(project, 0, "val", predictor=detector)
    assert detector.calls == 3  # predicted all the same (it is shown)
    assert s.images[-1].image_id == b and not s.images[-1].labelled
    assert b in s.pending and b not in s.evaluated
    split = s.split_figures(DetectionParams(0.5, 0.5, 0.5))
    assert (split["tp"], split["fp"], split["fn"]) == (1, 3, 2)  # a and the empty image
    r = s.image_result(b, DetectionParams(0.5, 0.5, 0.5))
    assert len(r.gt) == 3  # its own view still compares with its objects


def test_instance_matching_uses_mask_iou_and_the_overlay_shows_it(project, tmp_path):
    from studio.core.geometry import MaskGeom
    from studio.gui.inspect.det_overlay import instance_overlay
    from studio.ml.inspect import overlays as ov

    ids = [project.get_or_add_class("square"), project.get_or_add_class("disc")]
    yy, xx = np.mgrid[:SIZE, :SIZE]
    disc = (xx - 20) ** 2 + (yy - 20) ** 2 < 64
    square = np.zeros((SIZE, SIZE), bool)
    square[40:56, 40:56] = True
    ell = np.zeros_like(square)  # an L in the square's box: box IoU 1, mask IoU 0.44
    ell[40:56, 40:44] = ell[52:56, 40:56] = True
    image_id, _ = project.add_image(write_png(tmp_path / "m.png", np.where(
        disc | square, 200, 30).astype(np.uint8)), split="val")
    project.add_annotation(image_id, ids[1], "mask", MaskGeom.from_full(disc))
    project.add_annotation(image_id, ids[0], "mask", MaskGeom.from_full(square))

    class Masks(FakeDetector):
        def detect(self, image, name="", image_id=None, **_kw):
            self.calls += 1
            boxes = np.array([[12, 12, 28, 28], [40, 40, 56, 56]], np.float32)
            return Detections(name, image_id, ["square", "disc"], boxes,
                              np.array([0.9, 0.8], np.float32), np.array([1, 0]),
                              np.stack([disc, ell]), SIZE, SIZE)

    s = open_detection_session(project, 0, "val", predictor=Masks({}, ids, "instance"))
    r = s.image_result(image_id, DetectionParams(0.5, 0.5, 0.5))
    assert [row.status for row in r.rows()] == ["matched", "false positive", "missed"]
    assert r.rows()[1].iou == pytest.approx(112 / 256)
    loose = s.image_result(image_id, DetectionParams(0.5, 0.5, 0.4))
    assert [row.status for row in loose.rows()] == ["matched", "matched"]
    rgba = instance_overlay(r, [(1, 2, 3), (4, 5, 6)])
    assert tuple(rgba[20, 20]) == (*ov.TP_COLOR, 100)  # inside the matched disc
    assert tuple(rgba[53, 48]) == (*ov.FP_COLOR, 100)  # inside the L
    assert tuple(rgba[48, 55][:3]) == ov.FN_COLOR  # the missed square's outline
    assert rgba[48, 48, 3] == 0  # inside the square, outside the L: nothing
    by_class = instance_overlay(r, [(1, 2, 3), (4, 5, 6)], color_by="class", truth=False)
    assert tuple(by_class[20, 20]) == (4, 5, 6, 100) and by_class[48, 55, 3] == 0


def test_a_detection_session_opens_in_steps_that_stream(planted):
    from studio.ml.inspect.detections import (
        finish_detection_session,
        prepare_detection_session,
        stream_detections,
    )

    project, detector = planted
    a, b, e = (project.planted[k] for k in "abe")
    s = prepare_detection_session(project, 0, "val", predictor=detector)
    assert detector.calls == 0 and [x.image_id for x in s.images] == [a, b, e]  # listed
    assert [x.labelled for x in s.images] == [True, True, False]
    landed = []
    s.image_result(b, s.default_params)  # the window asks for one meanwhile
    stream_detections(s, on_image=lambda entry, done, total: landed.append(
        (entry.image_id, done, total)))
    assert detector.calls == 3  # b was not predicted again
    assert landed == [(a, 1, 3), (b, 2, 3), (e, 3, 3)]
    assert s.errors == {a: 4, b: 0, e: 1}
    assert s.entry(b).score == 1.0 and math.isnan(s.entry(e).score)
    finish_detection_session(s)
    assert [x.image_id for x in s.images] == [a, b, e]  # worst first, the empty one last
