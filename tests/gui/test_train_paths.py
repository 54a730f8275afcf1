"""Paths through the Train workspace that used to go wrong: a training process that dies,
a stratified split with unlabelled images, the mirror answer, the augmentation preview's
image, the classification summary."""

from __future__ import annotations

import os
import signal

import cv2
import numpy as np
import pytest
import test_train_workspace as tw

from studio.gui.train.history import COLUMNS

TINY, set_fields, start, wait_run = tw.TINY, tw.set_fields, tw.start, tw.wait_run
tiny_project, dialogs, win = tw.tiny_project, tw.dialogs, tw.win  # the same fixtures


def _status_cell(train, run_id: int) -> str:
    table = train.history.table
    for r in range(table.rowCount()):
        if table.item(r, 0).text() == str(run_id):
            return table.item(r, COLUMNS.index("status")).text()
    raise AssertionError(f"run {run_id} is not in the history")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_killed_training_process_ends_its_run_interrupted_at_once(qtbot, win, dialogs):
    train = win.train
    set_fields(train, {**TINY, "epochs": 500, "early_stopping.enabled": False})
    start(qtbot, train)
    qtbot.waitUntil(lambda: train.live.plots.point_count("batch") >= 1, timeout=60000)
    os.kill(train.runner.thread.process.pid, signal.SIGKILL)
    wait_run(qtbot, train, timeout=30000)  # the window is open and sees it now
    run = win.project.runs()[-1]
    assert run.status == "interrupted", (run.status, run.error)
    assert "signal 9" in run.error
    assert _status_cell(train, run.id) == "interrupted"
    assert train.live.figures["state"].text().startswith("Interrupted:")
    assert any("signal 9" in text for _title, text in dialogs)
    assert train.controls.start.isEnabled() and train.controls.resume.isEnabled()


def test_the_stratified_split_button_leaves_unlabelled_images_out(qtbot, win):
    project, train = win.project, win.train
    project.set_split(project.image_ids(), "none")
    arr = np.full((16, 16, 3), 128, np.uint8)
    path = project.root / "img" / "unlabelled.png"
    cv2.imwrite(str(path), arr)
    unlabelled = project.add_image(path)[0]
    train.refresh_data()
    train.workers.wait()
    assert "no_val" in train.data_panel.warning_codes()
    train.data_panel.split_button.click()
    train.workers.wait()
    train.workers.wait()
    assert project.image(unlabelled).split == "none"
    assert project.count_images(split="none") == 1
    assert project.count_images(split="val") > 0
    codes = train.data_panel.warning_codes()
    assert "no_val" not in codes and "unlabelled_train" not in codes


def test_the_confusion_matrix_names_its_axes(qtbot):
    from studio.gui.train.summary import SummaryPanel
    from studio.gui.workers import WorkerPool

    pool = WorkerPool(1)
    panel = SummaryPanel(pool)
    qtbot.addWidget(panel)
    panel.show()
    panel._show_result({"class_names": ["cat", "dog"], "confusion_matrix": [[3, 1], [0, 2]],
                        "precision": [1.0, 0.67], "recall": [0.75, 1.0], "f1": [0.86, 0.8],
                        "support": [4, 2], "images": 6})
    assert panel.confusion_box.isVisible()
    assert panel.predicted_axis.isVisible() and "predicted" in panel.predicted_axis.text()
    assert panel.true_axis.isVisible() and "true" in panel.true_axis.text()
    table = panel.confusion
    assert table.verticalHeaderItem(0).toolTip() == "true: cat"
    assert table.horizontalHeaderItem(1).toolTip() == "predicted: dog"
    # the axis names sit beside the matrix: above its columns, left of its rows
    above = panel.predicted_axis.mapTo(panel, panel.predicted_axis.rect().bottomLeft())
    assert above.y() <= table.mapTo(panel, table.rect().topLeft()).y()
    left = panel.true_axis.mapTo(panel, panel.true_axis.rect().topRight())
    assert left.x() <= table.mapTo(panel, table.rect().topLeft()).x()
    pool.shutdown()


def _shifted_segmentation(project, folder, n: int = 5, size: int = 48) -> None:
    """Blocky images whose foreground mask sits one row above the blocks."""
    from testutil import write_png

    from studio.core.geometry import MaskGeom

    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(1)
    for i in range(n):
        blocks = np.kron(rng.random((size // 6, size // 6)) > 0.5, np.ones((6, 6), bool))
        image = write_png(folder / f"m{i}.png", np.where(blocks, 200, 40).astype(np.uint8))
        iid, _ = project.add_image(image, split="train")
        mask = np.roll(blocks, -1, axis=0)
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))


def test_the_mirror_answer_is_kept_and_a_contradiction_said_beside_it(qtbot, tmp_path,
                                                                       dialogs):
    from PySide6.QtCore import Qt

    from studio.core.project import Project

    root = tmp_path / "shifted"
    with Project.create(root) as p:
        _shifted_segmentation(p, tmp_path / "img")
    window = tw.open_on_train(qtbot, tmp_path, root)
    train = window.train
    mirror = train.controls.mirror
    assert mirror.value() is None
    mirror.setCurrentIndex(mirror.findText("yes"))  # the person answers
    assert window.project.train_setting("mirror") is True
    qtbot.mouseClick(train.controls.recommend, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.controls.mirror_note.isVisibleTo(train), timeout=60000)
    note = train.controls.mirror_note.text()
    assert "You answered yes, but" in note and "up-down flips and rotations" in note
    assert not train.config()["augment"]["vflip"]["enabled"]
    assert train.config()["augment"]["hflip"]["enabled"]
    mirror.setCurrentIndex(mirror.findText("no"))  # a new answer: the note was about "yes"
    assert not train.controls.mirror_note.isVisibleTo(train)
    mirror.setCurrentIndex(mirror.findText("yes"))
    train.workers.wait()
    window.close()
    again = tw.open_on_train(qtbot, tmp_path, root)  # the answer is the project's
    assert again.train.controls.mirror.value() is True
    again.train.stop_and_wait()
    again.close()


def test_the_preview_starts_on_a_labelled_image_and_picks_by_name(qtbot, tmp_path, dialogs):
    from PySide6.QtCore import Qt
    from testutil import add_toy_segmentation, write_png

    from studio.core.project import Project

    root = tmp_path / "seg"
    with Project.create(root) as p:
        p.add_image(write_png(tmp_path / "img" / "a_plain.png", np.full((24, 24), 90, np.uint8)))
        add_toy_segmentation(p, tmp_path / "img", ["train"] * 3 + ["val"])
    window = tw.open_on_train(qtbot, tmp_path, root)
    train = window.train
    panel = train.augment_panel
    qtbot.waitUntil(lambda: panel.previews_done >= 1, timeout=30000)
    unlabelled = window.project.image_ids()[0]
    assert window.doc.image_id == unlabelled  # the Label workspace shows the unlabelled one
    box = panel.image_choice
    names = [box.itemText(i) for i in range(box.count())]
    assert len(names) == 4 and names == sorted(names)
    assert not any("a_plain" in n for n in names)  # only images with masks are offered
    assert panel.current_image_id() != unlabelled
    assert box.currentText() == names[0]
    first = [t.pixmap().toImage() for t in panel.tiles]
    with qtbot.waitSignal(panel.previewShown, timeout=30000):
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Down)  # the next image by name
    assert box.currentText() == names[1]
    assert window.project.image(panel.current_image_id()).name == names[1]
    assert [t.pixmap().toImage() for t in panel.tiles] != first
    train.workers.wait()
    window.close()


def test_a_run_with_a_data_loading_worker_finishes_from_the_window(qtbot, win, tmp_path):
    """A config loaded with num_workers 1: the window's training child used to hang before
    its first batch (the worker waited for the stdin lock of the command watcher)."""
    import json

    train = win.train
    set_fields(train, TINY)
    path = tmp_path / "workers.json"
    path.write_text(json.dumps({**train.config(), "num_workers": 1}), encoding="utf-8")
    assert train.load_config(str(path))
    assert train.config()["num_workers"] == 1
    start(qtbot, train)
    wait_run(qtbot, train, timeout=120000)  # a hang fails here
    run = win.project.runs()[-1]
    assert run.status == "finished", (run.status, run.error)
    assert run.config["num_workers"] == 1
    assert train.live.plots.point_count("batch") >= 2
