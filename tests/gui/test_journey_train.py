"""Journeys through the Train workspace, as a person clicks them: for each of the four
tasks, Defaults then Start, and Recommended then Start, on a tiny project; a run trains a
few steps and finishes. A value the engine refuses is shown beside its field and no run
is recorded."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from testutil import tiny_task_project

from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings

TASKS = ("classification", "semantic", "detection", "instance")
# typed into the form after Defaults / Recommended so a run is a few small steps
SHORT = {"epochs": "1", "batch_size": "2", "cpu_threads": "1",
         "scheduler.warmup_epochs": "0"}
SMALL = {  # and small inputs and models (detection: the model's own resizing too)
    "classification": {"image_size": "16"},
    "semantic": {"image_size": "24", "model_options.depth": "2", "model_options.width": "12"},
    "detection": {"image_size": "48", "model_options.min_size": "64",
                  "model_options.max_size": "64"},
    "instance": {"image_size": "48", "model_options.min_size": "64",
                 "model_options.max_size": "64"},
}


@pytest.fixture
def dialogs(monkeypatch):
    shown: list[tuple[str, str]] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append((box.windowTitle(), box.text()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    return shown


def choose(qtbot, combo, value) -> None:
    """Pick `value` in a choice list with the keyboard, as a person would."""
    combo.setFocus()
    index = next(i for i in range(combo.count()) if combo.itemData(i) == value)
    while combo.currentIndex() != index:
        key = Qt.Key.Key_Down if combo.currentIndex() < index else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)


def open_window(qtbot, tmp_path, task: str) -> MainWindow:
    root = tmp_path / "proj"
    tiny_task_project(root, task).close()
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(root)
    window.workspaces.switch_to("train")
    qtbot.waitUntil(lambda: window.train.backend is not None, timeout=60000)
    window.train.workers.wait()
    window.train.runner.mode = "thread"  # the same loop as the child process, started sooner
    if window.train.task != task:  # masks serve semantic and instance: pick the task
        choose(qtbot, window.train.controls.task, task)
    return window


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, train, path: str, text: str) -> None:
    """Show the field's tab, then replace its text by typing."""
    editor = train.form.fields[path].editor
    train.show_setup(editor)
    qtbot.keyClick(editor, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor, text)
    assert editor.text() == text


def shorten(qtbot, train, task: str) -> None:
    for path, text in {**SHORT, **SMALL[task]}.items():
        if path in train.form.fields:  # a recommended model may lack an option
            type_into(qtbot, train, path, text)


def run_to_the_end(qtbot, window) -> dict:
    train = window.train
    before = len(window.project.runs())
    click(qtbot, train.controls.start)
    qtbot.waitUntil(lambda: train.runner.running or not train.controls.problem.isHidden()
                    or any(not f.error.isHidden() for f in train.form.fields.values()),
                    timeout=60000)
    assert train.runner.running, (train.controls.problem.text(), [
        (p, f.error.text()) for p, f in train.form.fields.items() if not f.error.isHidden()])
    qtbot.waitUntil(lambda: not train.runner.running, timeout=300000)
    train.workers.wait()
    QApplication.processEvents()
    runs = window.project.runs()
    assert len(runs) == before + 1
    return {"status": runs[-1].status, "config": runs[-1].config, "run": runs[-1]}


@pytest.mark.parametrize("task", TASKS)
def test_defaults_then_recommended_each_start_and_finish(qtbot, tmp_path, dialogs, task,
                                                         caplog):
    caplog.set_level(logging.WARNING)
    window = open_window(qtbot, tmp_path, task)
    train = window.train
    try:
        assert train.task == task
        click(qtbot, train.controls.reset)
        shown = train.config()
        shorten(qtbot, train, task)
        ended = run_to_the_end(qtbot, window)
        assert ended["status"] == "finished", dialogs
        assert ended["config"]["model"] == shown["model"]
        assert ended["config"]["epochs"] == 1 and len(ended["run"].history) == 1

        choose(qtbot, train.controls.mirror, True)
        click(qtbot, train.controls.recommend)
        qtbot.waitUntil(lambda: train.controls.recommend.isEnabled(), timeout=60000)
        qtbot.waitUntil(lambda: any(not f.reason.isHidden()
                                    for f in train.form.fields.values()), timeout=60000)
        recommended = train.config()
        shorten(qtbot, train, task)
        # the explanation of a value changed from its recommendation says so
        epochs = train.form.fields["epochs"]
        if recommended["epochs"] != 1 and epochs.reasons:
            assert epochs.reason.text() == (
                f"Changed from the recommended {recommended['epochs']}.")
        ended = run_to_the_end(qtbot, window)
        assert ended["status"] == "finished", dialogs
        assert ended["config"]["model"] == recommended["model"]
        assert [r.status for r in window.project.runs()] == ["finished", "finished"]
        assert not dialogs
        # no background check failed unseen (the parameter count of options being typed)
        assert not [r for r in caplog.records if r.name.startswith("studio.gui")]
    finally:
        train.stop_and_wait()
        train.workers.wait()
        window.close()


@pytest.mark.parametrize("task, path, text", [
    ("detection", "model_options.anchor_sizes", "16; x; 64; 128"),
    ("detection", "optimizer.lr", "fast"),
    ("instance", "detection.score_threshold", "2"),
    ("classification", "optimizer.betas", "0.9"),
    ("semantic", "scheduler.min_lr_factor", "-1"),
    ("semantic", "model_options.width", "8"),  # refused by the builder, with its path
])
def test_a_refused_value_is_shown_beside_its_field_and_no_run_starts(
        qtbot, tmp_path, dialogs, task, path, text):
    window = open_window(qtbot, tmp_path, task)
    train = window.train
    try:
        click(qtbot, train.controls.reset)
        type_into(qtbot, train, path, text)
        click(qtbot, train.controls.start)
        field = train.form.fields[path]
        qtbot.waitUntil(lambda: not field.error.isHidden(), timeout=30000)
        assert path in field.error.text() or path.rsplit(".", 1)[-1] in field.error.text()
        assert [p for p, f in train.form.fields.items() if not f.error.isHidden()] == [path]
        assert train.controls.problem.isHidden()
        assert train.current_setup().isAncestorOf(field.editor)  # its tab is in front
        train.workers.wait()
        assert not train.runner.running and window.project.runs() == []
        assert not dialogs
    finally:
        train.workers.wait()
        window.close()
