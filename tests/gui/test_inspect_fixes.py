"""Inspect bugs a person met, one test each: the first class never coloured, pre-labels
and Next to label limited to one split, the Pre-labels tab out of sight, Undo not taking
back an accept, hand-drawn labels replaced without a question and then scored as ground
truth, nothing shown while a run is predicted, stale predictions without a word, review
rows needing a double click, zero changes shown as red "-0.0000"."""

from __future__ import annotations

import os
import threading

import numpy as np
import test_inspect as base
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from test_inspect import answer, open_split, qimage_array, shot
from testutil import write_png

# the tiny semantic project with its run, and the workspace on it (test_inspect's)
seg_template, seg_project, ws = base.seg_template, base.seg_project, base.ws


def click_row(qtbot, tree, row: int) -> None:
    item = tree.topLevelItem(row)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=tree.visualItemRect(item).center())


def show_overlay(qtbot, w, kind: str) -> np.ndarray:
    vb = w.view_bar
    vb.first.setCurrentIndex(vb.first.findData(kind))
    qtbot.waitUntil(lambda: not w.pool.busy and w.result is not None and any(
        k[0] == kind for k in w.result.overlays), timeout=20000)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)
    return qimage_array(w.view.left.overlay_pixmap(0))


def test_the_first_class_is_coloured_and_any_class_can_be_hidden(ws, qtbot):
    open_split(qtbot, ws)
    target = ws.result.prediction.target
    colors = ws.class_colors()
    for kind, labels in (("gt", target), ("pred", ws.result.raw)):
        shown = show_overlay(qtbot, ws, kind)
        first = labels == 0
        assert first.any() and (shown[first][:, 3] == 255).all(), kind  # class 0 drawn
        assert tuple(shown[first][0][:3]) == colors[0]
    # the background (first) class hidden from the Classes menu: transparent
    ws.view_bar.class_menu.actions()[0].trigger()
    assert ws.view_bar.hidden_classes() == [0] and "1 hidden" in ws.view_bar.classes.text()
    qtbot.waitUntil(lambda: not ws.pool.busy and ("pred", 1) in ws.result.overlays,
                    timeout=20000)
    shown = qimage_array(ws.view.left.overlay_pixmap(0))
    assert (shown[ws.result.raw == 0][:, 3] == 0).all()
    assert (shown[ws.result.raw == 1][:, 3] == 255).all()
    # the difference picture: with nothing hidden class 0 counts like any other
    ws.view_bar.class_menu.actions()[0].trigger()
    diff = show_overlay(qtbot, ws, "diff_raw")
    agree0 = (ws.result.raw == 0) & (target == 0)
    assert agree0.any() and (diff[agree0][:, 3] == 255).all()


def test_prelabel_and_next_to_label_cover_every_unlabelled_image(ws, qtbot, tmp_path):
    project = ws.project
    rng = np.random.default_rng(3)
    arr = np.where(rng.random((24, 24)) > 0.5, 200, 40).astype(np.uint8)
    other, _ = project.add_image(write_png(tmp_path / "elsewhere.png", arr), split="train")
    open_split(qtbot, ws)  # the val split
    in_split = {e.image_id for e in ws.session.images if not e.labelled}
    queue = ws.jobs.queues["next-to-label"]
    qtbot.mouseClick(queue.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: queue.tree.topLevelItemCount() == 3, timeout=30000)
    assert set(queue.image_ids()) == in_split | {other}
    assert "whole project" in queue.info.text()
    qtbot.mouseClick(ws.jobs.buttons["Pre-label all unlabelled"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ws.jobs.summary is not None, timeout=30000)
    assert sorted(ws.jobs.summary.stored) == sorted(in_split | {other})
    assert project.annotations(other)


def test_the_prelabels_tab_is_in_sight_at_1366_px(ws, qtbot):
    ws.resize(1366, 768)
    open_split(qtbot, ws)
    bar = ws.left_tabs.tabBar()
    index = ws.left_tabs.indexOf(ws.jobs.prelabels)
    assert ws.left_tabs.isTabVisible(index)
    assert bar.rect().contains(bar.tabRect(index))  # not behind the scroll arrow
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert ws.left_tabs.currentWidget() is ws.jobs.prelabels


def test_inspects_undo_takes_back_accepting_prelabels_of_another_image(ws, qtbot):
    open_split(qtbot, ws)
    project = ws.project
    ws.jobs.prelabel(selected=False)
    qtbot.waitUntil(lambda: ws.jobs.summary is not None, timeout=30000)
    first = ws.jobs.summary.stored[0]
    assert ws.image_id != first  # the image shown is another one
    ws.jobs.decide(True, [first])
    assert project.image(first).status == "done"
    qtbot.mouseClick(ws.view_bar.undo, Qt.MouseButton.LeftButton)
    assert project.image(first).status == "review"
    assert "Undone" in ws.run_bar.status.text()
    ws.jobs.decide(False, [first])  # rejected: its pre-labels go
    assert not project.annotations(first)
    ws.left_tabs.setCurrentWidget(ws.jobs.prelabels)
    qtbot.mouseClick(ws.jobs.undo_button, Qt.MouseButton.LeftButton)  # the tab's own Undo
    assert project.annotations(first) and project.image(first).status == "review"


def test_accept_asks_before_replacing_hand_drawn_labels(ws, qtbot):
    from studio.core.rasterize import label_map

    open_split(qtbot, ws)
    project, image_id = ws.project, ws.image_id
    before = sorted(a.id for a in project.annotations(image_id))
    old = label_map(project, image_id, ws.session.class_ids)
    questions = []
    answer(qtbot, "No", questions)
    qtbot.mouseClick(ws.view_bar.accept_all, Qt.MouseButton.LeftButton)
    assert questions and "drawn or imported by a person" in questions[0]
    assert sorted(a.id for a in project.annotations(image_id)) == before  # kept
    assert np.array_equal(label_map(project, image_id, ws.session.class_ids), old)
    assert "Not accepted" in ws.run_bar.status.text()


def test_accepted_model_labels_are_not_scored_as_ground_truth(ws, qtbot):
    open_split(qtbot, ws)
    image_id = ws.image_id
    split_images = ws.readouts.status.text()
    assert "3 image(s)" in split_images
    answer(qtbot, "Yes")
    with qtbot.waitSignal(ws.splitUpdated, timeout=20000):
        qtbot.mouseClick(ws.view_bar.accept_all, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ws.pool.busy and ws.result.figures is not None
                    and ws.result.figures["model_labels"], timeout=20000)
    assert image_id in ws.session.model_labelled
    text = ws.readouts.status.text()
    assert "2 image(s)" in text and "1 image(s) left out" in text
    assert ws.readouts.note.isVisible() and "not ground truth" in ws.readouts.note.text()
    assert ws.readouts.table.horizontalHeaderItem(0).text().startswith("Image*")
    with qtbot.waitSignal(ws.splitUpdated, timeout=20000):
        qtbot.mouseClick(ws.view_bar.undo, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    assert image_id not in ws.session.model_labelled and "3 image(s)" in \
        ws.readouts.status.text()
    assert not ws.readouts.note.isVisible()


def test_the_first_prediction_shows_before_the_split_is_predicted(ws, qtbot, monkeypatch):
    from studio.ml.predict import Predictor

    gate, calls = threading.Event(), []
    original = Predictor.predict_array

    def slow(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # every image after the first waits for the test
            gate.wait(20)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict_array", slow)
    opened = []
    ws.sessionOpened.connect(lambda: opened.append(1))
    try:
        with qtbot.waitSignal(ws.imageShown, timeout=60000) as shown:
            ws.open_run(ws.project.run_id, "val")
        first = shown.args[0]
        assert opened == [] and ws.session is not None and ws.session.readout is None
        assert ws.result is not None and ws.result.image_id == first
        assert ws.run_bar.progress.isVisible()  # the rest still streaming in
        shot(ws, "inspect_streaming.png")
    finally:
        gate.set()
    qtbot.waitUntil(lambda: opened == [1], timeout=60000)
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    worst = min((e for e in ws.session.images if e.labelled), key=lambda e: e.score)
    assert ws.image_id == worst.image_id  # ranked: the worst one, as nobody chose another
    assert ws.browser.image_ids()[0] == worst.image_id
    assert ws.session.readout is not None and "Split:" in ws.readouts.status.text()


def test_predictions_older_than_the_checkpoint_are_said_stale(ws, qtbot):
    from studio.ml.checkpoints import run_checkpoint

    open_split(qtbot, ws)
    assert not ws.check_stale() and not ws.run_bar.stale.isVisible()
    path = run_checkpoint(ws.project, ws.project.run_id, "best")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # saved again
    qtbot.waitUntil(lambda: ws.run_bar.stale.isVisible(), timeout=10000)  # the timer saw it
    assert "Stale" in ws.run_bar.stale.text() and ws.run_bar.refresh.isVisible()
    shot(ws, "inspect_stale.png")
    with qtbot.waitSignal(ws.sessionOpened, timeout=60000):
        qtbot.mouseClick(ws.run_bar.refresh, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    assert not ws.run_bar.stale.isVisible() and not ws.check_stale()


def test_the_stale_check_stops_quietly_once_the_project_is_closed(ws, qtbot):
    """The check runs from a timer: a project closed under an open session (the window
    closing it, a test's teardown) must not make it raise in the event loop."""
    from studio.ml.checkpoints import run_checkpoint

    open_split(qtbot, ws)
    assert ws.opener.stale_timer.isActive()
    path = run_checkpoint(ws.project, ws.project.run_id, "best")
    ws.project.close()
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # and it went stale
    assert not ws.check_stale()
    assert not ws.opener.stale_timer.isActive() and not ws.run_bar.stale.isVisible()


def test_a_single_click_or_enter_opens_a_review_row(ws, qtbot):
    open_split(qtbot, ws)
    panel = ws.jobs.queues["next-to-label"]
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2, timeout=30000)
    first, second = panel.image_ids()
    with qtbot.waitSignal(ws.imageShown, timeout=20000):
        click_row(qtbot, panel.tree, 0)
    assert ws.image_id == first and ws.view_bar.first.currentData() == "heatmap"
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    panel.tree.setFocus()
    panel.tree.setCurrentItem(panel.tree.topLevelItem(1))
    with qtbot.waitSignal(ws.imageShown, timeout=20000):
        qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    assert ws.image_id == second
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)


def test_a_change_that_rounds_to_zero_reads_0_without_colour(qtbot):
    from studio.gui.inspect.readout_panel import BETTER, WORSE, ReadoutTable, change_cell

    assert change_cell(-1e-7, True) == ("0", None)
    assert change_cell(2e-6, False) == ("0", None)
    assert change_cell(0.25, True) == ("+0.2500", BETTER)
    assert change_cell(-0.25, True) == ("-0.2500", WORSE)
    table = ReadoutTable()
    qtbot.addWidget(table)
    table.set_classes(["a", "b"])
    before = {"mean_dice": 0.5, "mean_iou": 0.4}
    after = {"mean_dice": 0.5 - 1e-7, "mean_iou": 0.4 + 1e-7}
    table.set_image({"before": before, "after": after})
    for row in ("Dice", "Mean IoU"):
        assert table.value(row, 2) == "0"
        assert table.change_color(row, 2) in (None, QColor())


def test_a_region_of_the_first_class_can_be_picked_unless_hidden(ws, qtbot):
    open_split(qtbot, ws)
    mask = ws.current_mask()
    ys, xs = np.nonzero(mask == 0)
    ws.view_bar.pick.setChecked(True)
    ws.view.left.clicked.emit(float(xs[0]) + 0.5, float(ys[0]) + 0.5)
    assert ws.component is not None and ws.component[ys[0], xs[0]]
    assert ws.view_bar.accept_region.isEnabled()
    ws.view_bar.class_menu.actions()[0].trigger()  # the first class hidden
    ws.view.left.clicked.emit(float(xs[0]) + 0.5, float(ys[0]) + 0.5)
    assert ws.component is None and not ws.view_bar.accept_region.isEnabled()
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
