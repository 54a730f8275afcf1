"""The safety net: an error nobody handled — in a slot on the GUI thread, in a worker
task, in a Python thread — is written with its traceback to today's log file and shown
in a dialog that says what to do and where the log is; the project store stays intact."""

from __future__ import annotations

import logging
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from studio.core import logs
from studio.core.errors import StudioError
from studio.core.geometry import MaskGeom
from studio.core.project import Project
from studio.gui import safety
from studio.gui.workers import WorkerPool, unhandled_error_handler


@pytest.fixture
def net(tmp_path, monkeypatch, qapp):
    """The safety net logging into tmp_path/logs, its dialogs recorded instead of shown."""
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "logs"))
    shown: list[dict] = []

    def exec_(box) -> int:
        shown.append({"title": box.windowTitle(), "text": box.text(),
                      "info": box.informativeText(), "details": box.detailedText(),
                      "icon": box.icon()})
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    installed = safety.install_safety_net()
    installed.shown = shown
    yield installed
    safety.uninstall_safety_net()


@pytest.fixture
def store(tmp_path):
    """A project with one image and one mask, closed; (folder, annotation count)."""
    import numpy as np
    from testutil import write_png

    folder = tmp_path / "proj"
    with Project.create(folder) as project:
        cls = project.add_class("cell")
        iid, _ = project.add_image(write_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8)))
        mask = np.zeros((8, 8), bool)
        mask[2:5, 2:5] = True
        project.add_annotation(iid, cls, "mask", MaskGeom.from_full(mask))
    return folder


def _log_text() -> str:
    logs.flush_logs()
    return logs.current_log_file().read_text(encoding="utf-8")


def _intact(folder) -> None:
    with Project.open(folder) as project:
        (iid,) = project.image_ids()
        assert len(project.annotations(iid)) == 1
        assert project.classes()[0].name == "cell"


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_slot_is_logged_and_shown_and_the_project_stays(net, store, qtbot):
    project = Project.open(store)  # open in "the window" while the error happens
    button = QPushButton("Go")
    qtbot.addWidget(button)

    def slot() -> None:
        project.add_class("half-way")  # a committed edit before the failure
        raise RuntimeError("boom in a slot")

    button.clicked.connect(slot)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert len(net.shown) == 1
    dialog = net.shown[0]
    assert dialog["icon"] == QMessageBox.Icon.Critical
    assert "RuntimeError: boom in a slot" in dialog["text"]
    assert "Your project is safe" in dialog["info"]
    assert "Report a problem" in dialog["info"]
    assert str(logs.current_log_file()) in dialog["info"]
    assert "in slot" in dialog["details"]  # the traceback names the failing function
    text = _log_text()
    assert "Unhandled error: RuntimeError: boom in a slot" in text
    assert "Traceback (most recent call last)" in text and "in slot" in text
    project.close()
    with Project.open(store) as reopened:
        assert [c.name for c in reopened.classes()] == ["cell", "half-way"]
    _intact(store)


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_worker_without_handler_is_logged_and_shown(net, store, qtbot):
    pool = WorkerPool(1, name="test")

    def work(folder):
        with Project.open(folder) as project:
            project.image_ids()
        return {}["missing key in the worker"]

    pool.submit(work, store)
    try:
        qtbot.waitUntil(lambda: len(net.shown) == 1, timeout=10000)
    finally:
        pool.shutdown()
    assert "KeyError" in net.shown[0]["text"]
    assert "in work" in net.shown[0]["details"]  # the worker thread's own traceback
    text = _log_text()
    assert "Unhandled error: KeyError" in text and "in work" in text
    _intact(store)


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_result_callback_and_in_a_thread_are_caught(net, qtbot):
    pool = WorkerPool(1, name="test")

    def on_result(value) -> None:
        raise ValueError(f"cannot show {value}")

    pool.submit(lambda: 42, on_result=on_result)
    try:
        qtbot.waitUntil(lambda: len(net.shown) == 1, timeout=10000)
    finally:
        pool.shutdown()
    assert "ValueError: cannot show 42" in net.shown[0]["text"]

    thread = threading.Thread(target=lambda: 1 / 0, name="helper")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(net.shown) == 2, timeout=5000)
    assert "ZeroDivisionError" in net.shown[1]["text"]
    assert "In thread helper" in net.shown[1]["details"]
    assert "In thread helper" in _log_text()


@pytest.mark.qt_no_exception_capture
def test_a_studio_error_gets_its_plain_message_and_a_second_error_no_second_dialog(net):
    net.report(StudioError("The disk is full; free some space."), "trace")
    assert net.shown[-1]["icon"] == QMessageBox.Icon.Warning
    assert net.shown[-1]["text"] == "The disk is full; free some space."
    net.showing = True  # a dialog is open: the next error is only logged
    net.report(RuntimeError("while the box is open"), "trace 2")
    assert len(net.shown) == 1
    assert "while the box is open" in _log_text()
    assert "WARNING" in _log_text()


def test_install_sets_every_hook_and_uninstall_restores_them(net):
    import sys

    assert sys.excepthook == net.excepthook
    assert threading.excepthook == net.thread_excepthook
    assert unhandled_error_handler() == net.worker_error
    net.uninstall()
    assert sys.excepthook != net.excepthook
    assert unhandled_error_handler() is None


def test_the_log_is_one_file_per_day_rotated_and_kept_for_n_days(tmp_path, monkeypatch):
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "logs"))
    try:
        path = logs.configure_logging(keep_days=3)
        assert path == tmp_path / "logs" / "studio.log"
        handler = next(h for h in logging.getLogger().handlers
                       if getattr(h, "baseFilename", None) == str(path))
        assert handler.when == "MIDNIGHT" and handler.backupCount == 3
        for day in range(5):  # five midnights
            logging.getLogger("studio.test").warning("day %d", day)
            handler.rolloverAt = 0
            handler.suffix = f"%Y-%m-{day + 10:02d}"  # distinct dated names
            handler.doRollover()
        names = sorted(p.name for p in logs.log_files())
        assert "studio.log" in names
        assert len(names) == 4  # today's and three kept days
    finally:
        logs.close_log_file()


def test_an_unwritable_log_folder_leaves_console_logging(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(blocker / "logs"))
    with caplog.at_level(logging.WARNING):
        assert logs.configure_logging() is None
    assert "Cannot write the log folder" in caplog.text
