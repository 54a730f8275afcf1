"""The Help menu: F1 shortcuts, About with the versions and the GPU found, "Report a
problem" zipping the logs and system information (and nothing of the project)."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox
from testutil import write_png

import studio
from studio.core import logs
from studio.core.project import Project
from studio.gui import help_menu
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings


@pytest.fixture
def boxes(monkeypatch):
    shown: list[QMessageBox] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append((box.objectName(), box.text(), box.informativeText()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def win(qtbot, tmp_path, boxes, monkeypatch):
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "logs"))
    logs.configure_logging()
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()
    logs.close_log_file()


def _help(window: QMainWindow) -> dict[str, object]:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return {a.text().replace("&", ""): a for a in menu.actions() if a.text()}


def test_the_help_menu_has_shortcuts_about_and_report(win):
    acts = _help(win)
    assert {"Keyboard shortcuts", "About Vision Studio", "Report a problem...",
            "Open the log folder"} <= set(acts)
    assert acts["Keyboard shortcuts"].shortcut().toString() == "F1"
    assert sum(a.shortcut().toString() == "F1" for a in acts.values()) == 1  # not twice


def test_about_names_the_studio_qt_torch_cuda_and_gpu(win, boxes, qtbot):
    _help(win)["About Vision Studio"].trigger()
    qtbot.waitUntil(lambda: any(name == "aboutBox" for name, _t, _i in boxes), timeout=20000)
    assert len(boxes) == 1  # the window's own About box no longer opens as well
    text = boxes[0][1]
    from PySide6.QtCore import qVersion

    for needle in (studio.__version__, f"Qt {qVersion()}", torch.__version__, "CUDA",
                   "GPU", str(torch.version.cuda or "none")):
        assert needle in text, needle
    win.workers.wait()


def test_report_a_problem_zips_logs_and_versions_but_no_project_data(win, boxes, qtbot,
                                                                     tmp_path, monkeypatch):
    folder = tmp_path / "proj"
    with Project.create(folder) as project:
        project.add_image(write_png(tmp_path / "secret.png", np.zeros((8, 8), np.uint8)))
    win.open_project(folder)
    logging.getLogger("studio.test").error("a line that must reach the report")
    target = tmp_path / "out" / "report"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "Zip archives (*.zip)")))
    _help(win)["Report a problem..."].trigger()
    qtbot.waitUntil(lambda: any(name == "reportSavedBox" for name, _t, _i in boxes),
                    timeout=20000)
    zipped = target.with_name("report.zip")
    assert zipped.is_file()
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        assert {"README.txt", "system.txt", "logs/studio.log"} <= set(names)
        assert all(n.endswith((".txt", ".log")) or ".log." in n for n in names)
        assert "a line that must reach the report" in zf.read("logs/studio.log").decode()
        system = zf.read("system.txt").decode()
    assert "torch:" in system and torch.__version__ in system and "GPU:" in system
    assert "Operating system:" in system and "Qt:" in system
    assert str(zipped) in boxes[-1][1]
    assert not list((tmp_path / "out").glob("*.tmp*"))  # nothing half-written beside it


def test_a_bare_window_gets_f1_and_about(qtbot, boxes):
    window = QMainWindow()
    qtbot.addWidget(window)
    window.menuBar().addMenu("&File")
    menu = help_menu.install_help_menu(window)
    acts = {a.text().replace("&", ""): a for a in menu.actions() if a.text()}
    assert acts["Keyboard shortcuts"].shortcut().toString() == "F1"
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    QTest.keyClick(window, Qt.Key.Key_F1)

    def shortcuts_dialog():
        return next((w for w in QApplication.topLevelWidgets()
                     if w.windowTitle() == "Keyboard shortcuts" and w.isVisible()), None)

    qtbot.waitUntil(lambda: shortcuts_dialog() is not None, timeout=5000)
    dialog = shortcuts_dialog()
    keys = {dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert "F1" in keys
    dialog.close()
    acts["About Vision Studio"].trigger()  # no worker pool: read at once
    assert boxes and boxes[-1][0] == "aboutBox"


def test_help_opens_the_user_guide_or_says_where_it_is(win, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr(help_menu.QDesktopServices, "openUrl",
                        lambda url: opened.append(url.toLocalFile()) or True)
    action = win.findChild(type(win.menuBar().actions()[0]), "userGuideAction")
    assert action is not None and action.text() == "&User guide"
    action.trigger()
    index = help_menu.user_guide()
    assert index is not None and index.name == "README.md" and index.parent.name == "docs"
    assert opened == [str(index)]
    told: list[str] = []
    monkeypatch.setattr(help_menu, "user_guide", lambda: None)  # a wheel: no docs beside it
    monkeypatch.setattr(QMessageBox, "information",
                        lambda parent, title, text: told.append(text))
    assert not help_menu.open_user_guide(win)
    assert told and "docs/README.md" in told[0]
