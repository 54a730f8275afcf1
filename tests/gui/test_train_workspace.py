"""The Train workspace end to end: tiny runs started, stopped and resumed from the panels."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core.project import Project
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings
from studio.gui.train.runner import TRAIN_NICE
from studio.ml.evaluation import report_path

TINY = {"epochs": 2, "batch_size": 4, "image_size": 16, "cpu_threads": 1,
        "model_options.width": 8, "model_options.fc": [16], "scheduler.warmup_epochs": 0}


@pytest.fixture
def tiny_project(tmp_path):
    """24 tagged 16x16 images (dark / bright), 18 in train and 6 in val."""
    root = tmp_path / "proj"
    with Project.create(root, name="tiny") as p:
        dark, bright = p.add_class("dark", "#0000ff"), p.add_class("bright", "#ffff00")
        rng = np.random.default_rng(0)
        (root / "img").mkdir()
        for i in range(24):
            value = 60 if i % 2 else 190
            arr = np.clip(rng.normal(value, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            path = root / "img" / f"{i}.png"
            cv2.imwrite(str(path), arr)
            image_id = p.add_image(path)[0]
            p.add_annotation(image_id, bright if value > 100 else dark, "tag")
            p.set_split(image_id, "train" if i < 18 else "val")
    return root


@pytest.fixture
def dialogs(monkeypatch):
    """Message boxes answered at once; (title, text) of each shown."""
    shown: list[tuple[str, str]] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append((box.windowTitle(), box.text()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    return shown


def open_on_train(qtbot, tmp_path, project_root) -> MainWindow:
    """A window with the project open on the Train workspace, its engine loaded."""
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(project_root)
    window.workspaces.switch_to("train")
    qtbot.waitUntil(lambda: window.train.backend is not None, timeout=60000)
    window.train.workers.wait()
    return window


@pytest.fixture
def win(qtbot, tmp_path, tiny_project, dialogs):
    window = open_on_train(qtbot, tmp_path, tiny_project)
    yield window
    window.train.stop_and_wait()
    window.close()


def set_fields(train, values: dict) -> None:
    for path, value in values.items():
        train.form.fields[path].editor.set_value(value)


def wait_run(qtbot, train, timeout: int = 120000) -> None:
    qtbot.waitUntil(lambda: not train.runner.running, timeout=timeout)
    train.workers.wait()
    QApplication.processEvents()


def start(qtbot, train) -> None:
    train.controls.start.click()
    qtbot.waitUntil(lambda: train.runner.running, timeout=30000)


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_tiny_run_gets_curves_history_and_summary(qtbot, win, mode):
    train = win.train
    train.runner.mode = mode
    set_fields(train, TINY)
    start(qtbot, train)
    assert win.workspaces.current_key == "train"
    wait_run(qtbot, train)
    plots = train.live.plots
    assert plots.point_count("batch") == 2 * (18 // 4)  # every step (full batches) arrives
    assert plots.point_count("train_loss") == 2 and plots.point_count("val_loss") == 2
    assert plots.point_count("accuracy") == 2
    assert plots.best_line.isVisible()
    runs = win.project.runs()
    assert [r.status for r in runs] == ["finished"]
    assert train.history.table.rowCount() == 1
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=30000)
    assert train.summary.confusion.rowCount() == 2
    assert np.asarray(train.summary.result["confusion_matrix"]).sum() == 6
    assert train.summary.per_class.rowCount() == 2
    # the child process evaluated the run for the summary; the window only read it
    assert report_path(win.project, runs[0].id).is_file() == (mode == "process")
    assert "Finished 2 epochs" in train.live.figures["state"].text()
    train.reset()
    train.use_run_config(runs[0].id)  # "start from the config of run N"
    assert train.config()["model_options"]["width"] == 8
    assert train.config()["epochs"] == 2


def test_stop_mid_run_then_resume(qtbot, win):
    train = win.train
    set_fields(train, {**TINY, "epochs": 40, "early_stopping.enabled": False})
    start(qtbot, train)
    qtbot.waitUntil(lambda: train.live.plots.point_count("train_loss") >= 1, timeout=60000)
    if hasattr(os, "getpriority"):  # the child trains at a lower priority than the window
        child = train.runner.thread.process.pid
        assert os.getpriority(os.PRIO_PROCESS, child) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + TRAIN_NICE)
    train.controls.stop.click()
    wait_run(qtbot, train)
    run = win.project.runs()[-1]
    assert run.status == "stopped"
    assert run.checkpoints.get("last")
    assert 1 <= len(run.history) < 40
    done = len(run.history)
    train.history.select_run(run.id)
    train.controls.resume.click()
    qtbot.waitUntil(lambda: train.runner.running, timeout=30000)
    assert train.live.plots.point_count("train_loss") == done  # the history so far is drawn
    wait_run(qtbot, train, timeout=240000)
    run = win.project.run(run.id)
    assert run.status == "finished"
    assert [h["epoch"] for h in run.history] == list(range(1, 41))
    assert len(win.project.runs()) == 1  # resumed, not a new run


def test_diverging_run_shows_dialog_and_window_stays_usable(qtbot, win, dialogs):
    train = win.train
    set_fields(train, {**TINY, "epochs": 3, "optimizer.name": "sgd", "optimizer.lr": 10.0,
                       "model_options.batch_norm": False})
    start(qtbot, train)
    wait_run(qtbot, train)
    assert win.project.runs()[-1].status == "failed"
    assert any(title == "Training diverged" and "loss became" in text for title, text in dialogs)
    assert train.controls.start.isEnabled() and not train.controls.stop.isEnabled()
    win.workspaces.switch_to("label")  # the window answers
    assert win.doc.add_annotation("box", (1, 1, 5, 5)) is not None


def test_invalid_setting_is_shown_next_to_its_field(qtbot, win):
    train = win.train
    set_fields(train, {**TINY, "optimizer.lr": "fast"})
    train.controls.start.click()
    train.workers.wait()
    field = train.form.fields["optimizer.lr"]
    assert not field.error.isHidden()
    assert "'optimizer.lr' must be a number" in field.error.text()
    assert train.current_setup() is train.training_panel
    assert not train.runner.running and win.project.runs() == []
    set_fields(train, {"optimizer.lr": 1e-3, "model_options.width": 5000})
    train.controls.start.click()
    train.workers.wait()
    assert "'model_options.width' must be" in train.form.fields["model_options.width"].error.text()
    assert train.form.fields["optimizer.lr"].error.isHidden()
    assert train.current_setup() is train.model_panel
    assert not train.runner.running and win.project.runs() == []


def test_config_round_trips_between_panels_and_json(qtbot, win, tmp_path):
    from studio.ml.config import validate_config

    train = win.train
    set_fields(train, {**TINY, "optimizer.lr": 3e-4, "augment.rotation.enabled": True,
                       "augment.rotation.degrees": [-5.0, 7.5], "loss.class_weights": [1, 2],
                       "dropout": 0.25})
    saved = train.config()
    path = train.save_config(str(tmp_path / "run.json"))
    on_disk = json.loads(path.read_text())
    assert on_disk == json.loads(json.dumps(saved))
    validate_config(on_disk, win.project)  # the CLI's own check accepts it
    train.reset()
    assert train.config()["optimizer"]["lr"] != 3e-4
    assert train.load_config(str(path))
    assert train.config() == on_disk
    assert train.form.fields["augment.rotation.degrees"].editor.text() == "-5, 7.5"


def test_preview_updates_after_an_option_changes(qtbot, win):
    panel = win.train.augment_panel
    qtbot.waitUntil(lambda: panel.previews_done >= 1, timeout=30000)
    before = [t.pixmap().toImage() for t in panel.tiles]
    done = panel.previews_done
    with qtbot.waitSignal(panel.previewShown, timeout=30000):
        win.train.form.fields["augment.hflip.enabled"].editor.set_value(False)
        win.train.form.fields["augment.brightness.enabled"].editor.setChecked(True)
        win.train.form.fields["augment.brightness.p"].editor.setText("1.0")
        win.train.form.fields["augment.brightness.p"].editor.textEdited.emit("1.0")
    assert panel.previews_done == done + 1
    after = [t.pixmap().toImage() for t in panel.tiles]
    assert any(a != b for a, b in zip(before, after, strict=True))


def test_labelling_while_a_run_trains_is_saved(qtbot, win):
    train = win.train
    set_fields(train, {**TINY, "epochs": 30, "early_stopping.enabled": False})
    start(qtbot, train)
    win.workspaces.switch_to("label")
    image_id = win.doc.image_id
    ann = win.doc.add_annotation("box", (2, 2, 9, 9))
    assert train.runner.running  # still training while we label
    assert win.project.annotation(ann).image_id == image_id
    win.workspaces.switch_to("train")
    train.controls.stop.click()
    wait_run(qtbot, train)
    assert win.project.annotation(ann).geometry is not None


def test_closing_while_training_asks_and_leaves_no_thread(qtbot, win):
    train = win.train
    set_fields(train, {**TINY, "epochs": 50, "early_stopping.enabled": False})
    start(qtbot, train)
    thread = train.runner.thread
    assert win.close()
    assert not train.runner.running and thread.isFinished()
    assert win.project is None


def test_missing_validation_split_has_a_button(qtbot, win):
    train = win.train
    ids = win.project.image_ids()
    win.project.set_split(ids[:20], "train")
    win.project.set_split(ids[20:], "test")
    train.refresh_data()
    train.workers.wait()
    assert "no_val" in train.data_panel.warning_codes()
    train.data_panel.split_button.click()
    train.workers.wait()
    train.workers.wait()
    # a stratified fifth of train moved to val; test kept as it was
    assert win.project.count_images(split="val") == 4
    assert win.project.count_images(split="train") == 16
    assert win.project.image_ids(split="test") == ids[20:]
    assert "no_val" not in train.data_panel.warning_codes()


def test_model_annotations_waiting_for_review_have_a_button(qtbot, win):
    train = win.train
    first = win.project.image_ids(split="train")[0]
    win.project.add_annotation(first, win.project.classes()[0].id, "tag", source="model:1")
    win.project.set_status(first, "review")
    train.refresh_data()
    train.workers.wait()
    assert "pending_review" in train.data_panel.warning_codes()
    train.data_panel.review_button.click()
    train.workers.wait()
    train.workers.wait()
    assert win.project.image(first).status == "done"
    assert "pending_review" not in train.data_panel.warning_codes()


def test_deleted_image_ends_the_run_with_advice(qtbot, win, dialogs):
    train = win.train
    set_fields(train, TINY)
    win.project.image(win.project.image_ids(split="train")[3]).abs_path.unlink()
    start(qtbot, train)
    wait_run(qtbot, train)
    assert all(r.status == "failed" for r in win.project.runs())  # none left "running"
    assert any(title == "An image cannot be read" for title, _text in dialogs), dialogs
    assert train.controls.start.isEnabled()


def test_recommended_settings_show_their_reasons(qtbot, win):
    train = win.train
    assert train.controls.recommend.isEnabled()
    train.controls.mirror.set_value(False)
    train.controls.recommend.click()
    qtbot.waitUntil(lambda: any(not f.reason.isHidden() for f in train.form.fields.values()),
                    timeout=60000)
    shown = {p: f.reason.text() for p, f in train.form.fields.items() if not f.reason.isHidden()}
    assert "batch_size" in shown or "image_size" in shown
    assert not train.config()["augment"]["hflip"]["enabled"]  # "no": digits, text
    train.workers.wait()
    assert train.controls.problem.isHidden()


def test_a_segmentation_project_opens_on_its_task(qtbot, tmp_path, dialogs):
    from testutil import add_toy_segmentation

    root = tmp_path / "seg"
    with Project.create(root) as p:
        add_toy_segmentation(p, tmp_path / "img", ["train"] * 3 + ["val"])
    window = open_on_train(qtbot, tmp_path, root)
    assert window.train.task == "semantic"  # not "classification", which has no labels
    window.train.stop_and_wait()
    window.close()


def test_showing_a_config_builds_the_model_panel_once(qtbot, win, monkeypatch):
    panel = win.train.model_panel
    calls = []
    original = panel.refresh_model
    monkeypatch.setattr(panel, "refresh_model", lambda: calls.append(1) or original())
    win.train.set_config({**win.train.config(), "model": "simple_cnn"})
    assert calls == [1]  # it reads the project's runs and the weights on disk
    panel.model.set_value("resnet18")  # a person's choice still shows the model
    assert calls == [1, 1]
