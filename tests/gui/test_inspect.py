"""The Inspect workspace on a tiny semantic run trained in the test: sliders move the
overlay and the readouts, accept writes the cleaned mask (undo takes it out), the recipe
gives the same masks as the engine, pre-labels, review queues, and classification."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from testutil import FAST_TRAINING, add_toy_segmentation, write_png

from studio.core.project import Project

SEG_CONFIG = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 3,
              "samples_per_image": 2, "model_options": {"depth": 2, "width": 8},
              "device": "cpu", **FAST_TRAINING}


@pytest.fixture(scope="module")
def seg_template(tmp_path_factory):
    """A project with 4 train, 3 val (labelled) and 2 unlabelled val images and one run."""
    import torch

    from studio.ml.fit import fit

    root = tmp_path_factory.mktemp("seg")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with Project.create(root / "proj", name="t") as project:
        add_toy_segmentation(project, root / "img", ["train"] * 4 + ["val"] * 3, cells=6,
                             cell_px=4)
        rng = np.random.default_rng(5)
        for i in range(2):
            arr = np.where(rng.random((24, 24)) > 0.5, 200, 40).astype(np.uint8)
            project.add_image(write_png(root / "img" / f"u{i}.png", arr), split="val")
        run_id = fit(project, dict(SEG_CONFIG)).run_id
    torch.set_num_threads(threads)
    return root / "proj", run_id


@pytest.fixture
def seg_project(seg_template, tmp_path):
    src, run_id = seg_template
    shutil.copytree(src, tmp_path / "proj", ignore=shutil.ignore_patterns("project.lock"))
    project = Project.open(tmp_path / "proj")
    project.run_id = run_id
    yield project
    project.close()


@pytest.fixture
def ws(qtbot, seg_project):
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    doc = LabelDocument(seg_project)
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(1400, 800)
    w.show()
    w.set_document(doc)
    w.doc_ref = doc
    yield w
    w.shutdown()
    w.set_document(None)


def open_split(qtbot, w, split: str = "val"):
    with qtbot.waitSignal(w.sessionOpened, timeout=60000):
        w.open_run(w.project.run_id, split)
    qtbot.waitUntil(lambda: w.result is not None, timeout=20000)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)


def qimage_array(pixmap) -> np.ndarray:
    img = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_RGBA8888)
    return np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.width(), 4).copy()


def shot(widget, name: str) -> None:
    """Offscreen grabs for a person to look at, when INSPECT_SHOTS names a folder."""
    import os

    folder = os.environ.get("INSPECT_SHOTS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def wait_updated(qtbot, w, action) -> None:
    """Run `action` and wait until both the image and the split readouts caught up."""
    with qtbot.waitSignals([w.imageShown, w.splitUpdated], timeout=20000):
        action()
        w.recipe_panel.flush()
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=20000)


def answer(qtbot, button: str, seen: list | None = None) -> None:
    """Click `button` ("Yes"/"No") of the next modal question, with the real mouse."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    tries = [250]  # 5 s at most, then the question is taken as never asked

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            tries[0] -= 1
            if tries[0] > 0:
                QTimer.singleShot(20, click)
            return
        if seen is not None:
            seen.append(box.text())
        qtbot.mouseClick(box.button(getattr(QMessageBox.StandardButton, button)),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, click)


def step_index(w, op: str, operation: str | None = None) -> int:
    for i, step in enumerate(w.recipe_panel.recipe()["steps"]):
        if step["op"] == op and (operation is None or step.get("operation") == operation):
            return i
    raise AssertionError(op)


def labelled_image(w) -> int:
    return next(e.image_id for e in w.session.images if e.labelled)


def test_browser_lists_the_split_worst_first_with_unlabelled_last(ws, qtbot):
    open_split(qtbot, ws)
    s = ws.session
    ids = ws.browser.image_ids()
    labelled = [e for e in s.images if e.labelled]
    assert len(labelled) == 3 and len(ids) == 5
    scores = [s.entry(i).score for i in ids[:3]]
    assert scores == sorted(scores)
    assert all(not s.entry(i).labelled for i in ids[3:])
    assert ws.image_id == ids[0]  # the worst image opens first
    shot(ws, "inspect_view.png")


def test_moving_a_slider_changes_the_overlay_and_the_readouts(ws, qtbot):
    open_split(qtbot, ws)
    panel = ws.recipe_panel
    before_overlay = qimage_array(ws.view.left.overlay_pixmap(0))
    before_dice = ws.readouts.value("Dice", 1)
    split_before = ws.readouts.value("Dice", 4)
    calls = []
    original = ws.session.predictor.predict_array
    ws.session.predictor.predict_array = lambda *a, **k: calls.append(1) or original(*a, **k)
    slider = panel.editor(step_index(ws, "threshold"), "min_confidence")
    wait_updated(qtbot, ws, lambda: slider.setValue(0.97))
    assert calls == []  # the sliders never re-run the network
    after_overlay = qimage_array(ws.view.left.overlay_pixmap(0))
    assert not np.array_equal(before_overlay, after_overlay)
    # unsure pixels became unlabelled: transparent in the overlay
    assert (after_overlay[..., 3] == 0).sum() > (before_overlay[..., 3] == 0).sum()
    assert ws.readouts.value("Dice", 1) != before_dice
    assert ws.readouts.value("Dice", 4) != split_before
    assert ws.readouts.value("Dice", 3) == split_before  # "before" stays the plain argmax
    assert ws.readouts.change_color("Recall", 5) is not None  # the change is coloured
    assert ws.readouts.status.text().startswith("Split:")
    assert "updating" not in ws.readouts.status.text()
    shot(ws, "inspect_readouts.png")


def test_split_readout_shows_updating_while_it_computes(ws, qtbot):
    open_split(qtbot, ws)
    gate = threading.Event()
    original = ws.session.split_figures
    ws.session.split_figures = lambda *a, **k: gate.wait(10) and original(*a, **k)
    idx = step_index(ws, "components")
    ws.recipe_panel.step_group(idx).setChecked(True)
    ws.recipe_panel.flush()
    assert "updating" in ws.readouts.status.text()
    gate.set()
    qtbot.waitUntil(lambda: "updating" not in ws.readouts.status.text(), timeout=20000)


def test_accept_writes_the_cleaned_mask_and_undo_takes_it_out(ws, qtbot):
    from studio.core.rasterize import label_map

    open_split(qtbot, ws)
    project, run_id = ws.project, ws.project.run_id
    image_id = ws.image_id
    ids_before = sorted(a.id for a in project.annotations(image_id))
    old_map = label_map(project, image_id, ws.session.class_ids)
    i = step_index(ws, "morphology", "open")
    wait_updated(qtbot, ws, lambda: (ws.recipe_panel.step_group(i).setChecked(True),
                                     ws.recipe_panel.editor(i, "kernel_size").setValue(5)))
    mask = ws.current_mask()
    assert not np.array_equal(mask, ws.result.raw)
    questions = []
    answer(qtbot, "Yes", questions)
    ws.accept()
    assert "drawn or imported by a person" in questions[0]  # asked before replacing
    anns = project.annotations(image_id)
    assert {a.source for a in anns} == {f"model:{run_id}"}
    assert np.array_equal(label_map(project, image_id, ws.session.class_ids), mask)
    assert project.image(image_id).status == "review"
    ws.doc_ref.undo_stack(image_id).undo()
    assert sorted(a.id for a in project.annotations(image_id)) == ids_before
    assert np.array_equal(label_map(project, image_id, ws.session.class_ids), old_map)
    assert project.image(image_id).status == "new"
    ws.doc_ref.undo_stack(image_id).redo()
    assert np.array_equal(label_map(project, image_id, ws.session.class_ids), mask)


def test_accept_only_the_picked_component(ws, qtbot):
    from studio.core.rasterize import label_map

    open_split(qtbot, ws)
    project = ws.project
    mask = ws.current_mask()
    ys, xs = np.nonzero(mask == 1)
    ws.view_bar.pick.setChecked(True)
    ws.view.left.clicked.emit(float(xs[0]) + 0.5, float(ys[0]) + 0.5)
    comp = ws.component
    assert comp is not None and comp[ys[0], xs[0]] and ws.view_bar.accept_region.isEnabled()
    old = label_map(project, ws.image_id, ws.session.class_ids)
    answer(qtbot, "Yes")
    ws.accept(region=True)
    new = label_map(project, ws.image_id, ws.session.class_ids)
    assert (new[comp] == 1).all()
    assert np.array_equal(new[~comp], old[~comp])  # nothing outside the component changed
    ws.doc_ref.undo_stack(ws.image_id).undo()
    assert np.array_equal(label_map(project, ws.image_id, ws.session.class_ids), old)


def test_brush_paints_the_prediction_before_accepting(ws, qtbot):
    open_split(qtbot, ws)
    ws.view_bar.brush.setChecked(True)
    ws.view_bar.brush_size.setValue(6)
    ws.view_bar.brush_class.setCurrentIndex(1)
    with qtbot.waitSignal(ws.imageShown, timeout=20000):
        ws.view.left.brushed.emit(3.0, 3.0, False)
        ws.view.left.strokeFinished.emit()
    assert (ws.current_mask()[1:5, 1:5] == 1).all()
    ws.view.left.brushed.emit(3.0, 3.0, True)  # right drag erases to background
    assert (ws.current_mask()[1:5, 1:5] == 0).all()
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)


def test_recipe_in_the_gui_gives_the_engines_and_the_clis_masks(ws, qtbot, tmp_path):
    import cv2

    from studio.cli import main as cli_main
    from studio.ml.postprocess import apply_recipe, load_recipe

    open_split(qtbot, ws)
    recipe = ws.recipe_panel.recipe()
    for step in recipe["steps"]:
        if step["op"] in ("components", "fill_holes") or step.get("operation") == "close":
            step["enabled"] = True
    recipe["steps"][step_index(ws, "components")]["min_size"] = 6
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    wait_updated(qtbot, ws, lambda: ws.jobs.load_recipe_file(str(path)))
    saved = tmp_path / "saved.json"
    ws.jobs.save_recipe_file(str(saved))
    assert load_recipe(saved) == load_recipe(path)  # round trip through the panel
    ws.jobs.store_with_run()
    project, run_id = ws.project, ws.project.run_id
    gui = {}
    for image_id in [e.image_id for e in ws.session.images if e.labelled]:
        with qtbot.waitSignal(ws.imageShown, timeout=20000):
            ws.show_image(image_id)
        gui[image_id] = ws.current_mask()
        pred = ws.session.predict(image_id)
        assert np.array_equal(gui[image_id], apply_recipe(recipe, pred.probabilities,
                                                          image=pred.image))
    ws.shutdown()
    ws.set_document(None)
    root = project.root
    project.close()
    out = tmp_path / "masks"
    assert cli_main(["postprocess", str(root), "--run", str(run_id), "--split", "val",
                     "--out", str(out), "--device", "cpu"]) == 0
    with Project.open(root) as reopened:
        for image_id, mask in gui.items():
            stem = reopened.image(image_id).name.rsplit(".", 1)[0]
            cli_mask = cv2.imread(str(out / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(cli_mask, mask)


def test_a_brush_dab_redraws_only_its_rectangle(ws, qtbot, monkeypatch):
    from studio.ml.inspect import overlays as ov

    open_split(qtbot, ws)
    vb = ws.view_bar
    vb.first.setCurrentIndex(vb.first.findData("post"))
    qtbot.waitUntil(lambda: not ws.pool.busy and ("post", max(vb.heat_class.currentData() or 0,
                                                             0)) in ws.result.overlays,
                    timeout=20000)
    whole = []
    monkeypatch.setattr(ov, "overlay_for", lambda *a, **k: whole.append(1))
    vb.brush.setChecked(True)
    vb.brush_size.setValue(6)
    vb.brush_class.setCurrentIndex(1)
    ws.view.left.brushed.emit(3.0, 3.0, False)
    assert whole == []  # no whole-image overlay drawn for a dab
    shown = qimage_array(ws.view.left.overlay_pixmap(0))
    expected = ov.label_overlay(ws.result.mask, ws.class_colors(),
                                ws.view_bar.hidden_classes())
    # the canvas shows the painted mask (transparent pixels keep no colour in a pixmap)
    assert np.array_equal(shown[..., 3], expected[..., 3])
    opaque = expected[..., 3] == 255
    assert opaque[1:5, 1:5].all() and np.array_equal(shown[opaque], expected[opaque])


def test_view_modes_split_divider_and_side_by_side(ws, qtbot):
    open_split(qtbot, ws)
    vb = ws.view_bar
    vb.first.setCurrentIndex(vb.first.findData("diff_raw"))
    vb.second.setCurrentIndex(vb.second.findData("heatmap"))
    vb.mode.setCurrentIndex(vb.mode.findData("split"))
    left = ws.view.left
    assert left.split and left.divider.isVisible()
    # an overlay not drawn yet for this image is drawn in the worker
    qtbot.waitUntil(lambda: not left.overlay_pixmap(1).isNull(), timeout=20000)
    assert not left.overlay_pixmap(1).isNull() and ws.colorbar.isVisible()
    left.divider.setPos(5.0, 40.0)  # dragged: moves along x only
    assert left.divider.pos().y() == 0 and left.clip_rect(0).width() == 5.0
    shot(ws, "inspect_split.png")
    vb.mode.setCurrentIndex(vb.mode.findData("side"))
    qtbot.waitUntil(lambda: not ws.view.right.overlay_pixmap(0).isNull(), timeout=20000)
    assert ws.view.right.isVisible() and not ws.view.right.overlay_pixmap(0).isNull()
    assert not left.split
    vb.opacity.setValue(20)
    assert abs(left.overlay_opacity(0) - 0.2) < 1e-6
    shot(ws, "inspect_side.png")


def test_prelabel_unlabelled_images_then_reject_and_undo(ws, qtbot):
    open_split(qtbot, ws)
    project, run_id = ws.project, ws.project.run_id
    unlabelled = [e.image_id for e in ws.session.images if not e.labelled]
    ws.jobs.prelabel(selected=False)
    qtbot.waitUntil(lambda: ws.jobs.summary is not None, timeout=30000)
    assert sorted(ws.jobs.summary.stored) == sorted(unlabelled)
    for image_id in unlabelled:
        assert {a.source for a in project.annotations(image_id)} == {f"model:{run_id}"}
        assert project.image(image_id).status == "review"
    assert ws.jobs.prelabel_list.topLevelItemCount() == 2
    first, second = unlabelled
    ws.jobs.decide(False, [first])
    assert project.annotations(first) == [] and project.image(first).status == "new"
    ws.jobs.decide(True, [second])
    assert project.image(second).status == "done" and project.annotations(second)
    ws.doc_ref.undo_stack(first).undo()
    assert {a.source for a in project.annotations(first)} == {f"model:{run_id}"}
    assert project.image(first).status == "review"
    ws.jobs.refresh_prelabels()
    ws.left_tabs.setCurrentWidget(ws.jobs.prelabels)
    shot(ws, "inspect_prelabels.png")


def test_review_queues_list_images_with_scores(ws, qtbot):
    open_split(qtbot, ws)
    unlabelled = {e.image_id for e in ws.session.images if not e.labelled}
    panel = ws.jobs.queues["next-to-label"]
    ws.jobs.compute_queue("next-to-label")
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2, timeout=30000)
    assert set(panel.image_ids()) == unlabelled
    scores = [float(panel.tree.topLevelItem(i).text(2)) for i in range(2)]
    assert scores == sorted(scores, reverse=True)
    errors = ws.jobs.queues["label-errors"]
    ws.jobs.compute_queue("label-errors")  # val images: the run never trained on them
    qtbot.waitUntil(lambda: errors.tree.topLevelItemCount() == 3, timeout=30000)
    assert "0 training image" not in errors.info.text()
    first = errors.image_ids()[0]
    item = errors.tree.topLevelItem(0)
    with qtbot.waitSignal(ws.imageShown, timeout=20000):
        qtbot.mouseClick(errors.tree.viewport(), Qt.MouseButton.LeftButton,
                         pos=errors.tree.visualItemRect(item).center())  # one click opens
    assert ws.image_id == first and ws.view_bar.first.currentData() == "diff_post"
    qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    ws.left_tabs.setCurrentWidget(errors)
    shot(ws, "inspect_queues.png")


def test_cancel_stops_a_batch_job(ws, qtbot):
    open_split(qtbot, ws)
    gate = threading.Event()
    import studio.gui.inspect.jobs as jobs

    original = jobs.postprocess_images

    def slow(*args, stop=None, **kwargs):
        gate.wait(10)
        return original(*args, stop=stop, **kwargs)

    jobs.postprocess_images = slow
    try:
        ws.jobs.prelabel(selected=False)
        assert ws.run_bar.cancel.isVisible()
        ws.run_bar.cancel.click()
        gate.set()
        qtbot.waitUntil(lambda: not ws.pool.busy, timeout=20000)
    finally:
        jobs.postprocess_images = original
    assert ws.jobs.summary is None  # the cancelled job's result never arrived
    assert ws.confirm_close()  # nothing running any more
    assert all(not ws.project.annotations(e.image_id)
               for e in ws.session.images if not e.labelled)


def test_closing_asks_before_stopping_a_running_job(ws, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    open_split(qtbot, ws)
    gate = threading.Event()
    ws.jobs.start(lambda token: gate.wait(10), lambda _v: None, "Slow job")
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    assert not ws.confirm_close()
    assert not ws.jobs.task.done
    gate.set()
    assert ws.confirm_close()
    assert not ws.pool.busy


def test_errors_are_shown_not_raised(ws, qtbot):
    ws.jobs.store_with_run()  # no session yet
    assert "Open a run" in ws.run_bar.status.text()
    ws.open_run(999, "val")
    qtbot.waitUntil(lambda: "999" in ws.run_bar.status.text()
                    and not ws.pool.busy, timeout=20000)
    assert ws.session is None


def test_no_threads_outlive_the_workspace(qtbot, seg_project):
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    doc = LabelDocument(seg_project)
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.set_document(doc)
    with qtbot.waitSignal(w.sessionOpened, timeout=60000):
        w.open_run(seg_project.run_id, "val")
    w.recipe_panel.step_group(step_index(w, "components")).setChecked(True)
    w.recipe_panel.flush()
    w.shutdown()
    assert not w.pool.busy
    assert w.pool.wait(1000)


def test_label_errors_on_training_images_use_fold_models(ws, qtbot):
    open_split(qtbot, ws, "train")
    panel = ws.jobs.queues["label-errors"]
    panel.folds.setValue(2)
    panel.epochs.setValue(1)
    news = []
    ws.jobs.compute_queue("label-errors")
    qtbot.waitUntil(lambda: news.append(ws.run_bar.status.text()) or
                    panel.tree.topLevelItemCount() == 4, timeout=120000)
    assert "fold model" in panel.info.text()
    assert any("fold model, epoch" in text for text in news)
    assert sorted(panel.image_ids()) == sorted(e.image_id for e in ws.session.images
                                               if e.labelled)
    assert len(ws.project.runs()) == 1  # fold runs are removed again


def test_prelabel_selected_takes_only_selected_unlabelled_images(ws, qtbot):
    open_split(qtbot, ws)
    unlabelled = [e.image_id for e in ws.session.images if not e.labelled]
    labelled = [e.image_id for e in ws.session.images if e.labelled]
    ws.browser.clearSelection()
    for i in range(ws.browser.topLevelItemCount()):
        item = ws.browser.topLevelItem(i)
        if item.data(0, 256) in (unlabelled[0], labelled[0]):
            item.setSelected(True)
    ws.jobs.prelabel(selected=True)
    qtbot.waitUntil(lambda: ws.jobs.summary is not None, timeout=30000)
    assert ws.jobs.summary.stored == [unlabelled[0]]
    assert not ws.project.annotations(unlabelled[1])


def test_apply_to_split_writes_the_masks_the_view_shows(ws, qtbot, tmp_path):
    import cv2

    open_split(qtbot, ws)
    i = step_index(ws, "morphology", "close")
    wait_updated(qtbot, ws, lambda: ws.recipe_panel.step_group(i).setChecked(True))
    shown = ws.current_mask()
    name = ws.project.image(ws.image_id).name.rsplit(".", 1)[0]
    ws.jobs.apply_to_split(str(tmp_path / "out"))
    qtbot.waitUntil(lambda: ws.jobs.summary is not None, timeout=30000)
    assert len(ws.jobs.summary.written) == len(ws.session.images)
    written = cv2.imread(str(tmp_path / "out" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, shown)
    assert "label map(s) written" in ws.run_bar.status.text()
