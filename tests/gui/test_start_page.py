"""The start page's recent projects: a thumbnail, name, count and folder for each, read off
the GUI thread; a project that is gone or broken is a plain row; a click or Enter opens one."""

from __future__ import annotations

import shutil
import threading

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from studio.core.project import DB_NAME, Project
from studio.gui.main_window import MainWindow
from studio.gui.panels import recent_projects
from studio.gui.panels.images_model import THUMB_SIZE
from studio.gui.panels.welcome import WelcomePage
from studio.gui.settings import Settings
from studio.gui.workers import CancelToken

RED = (0, 0, 255)  # BGR, as cv2 writes


@pytest.fixture
def boxes(monkeypatch):
    """Every message box shown, instead of a blocking dialog."""
    shown: list[str] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(box.text())
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def recent(tmp_path, make_image):
    """Two recent projects: 'cells' (a red first image, then two others) and one deleted."""
    red = tmp_path / "images" / "red.png"
    red.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(red), np.full((60, 80, 3), RED, np.uint8))
    with Project.create(tmp_path / "cells", name="cells") as p:
        p.add_image(red)
        p.add_image(make_image("b.png", seed=1))
        p.add_image(make_image("c.png", seed=2))
    with Project.create(tmp_path / "gone", name="gone") as p:
        p.add_image(make_image("d.png", seed=3))
    shutil.rmtree(tmp_path / "gone")
    settings = Settings.at(tmp_path / "settings.ini")
    settings.add_recent(tmp_path / "gone")
    settings.add_recent(tmp_path / "cells")  # the newest first
    settings.qs.sync()
    return tmp_path / "cells", tmp_path / "gone"


@pytest.fixture
def win(qtbot, tmp_path, boxes, recent, monkeypatch):
    readers: list[bool] = []  # True for each project database opened on the GUI thread
    real = recent_projects.Project.open_for_reading

    def spy(folder):
        readers.append(threading.current_thread() is threading.main_thread())
        return real(folder)

    monkeypatch.setattr(recent_projects.Project, "open_for_reading", spy)
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    window.readers = readers
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    window.close()


def rows_read(page) -> bool:
    return all(page.recent_info(p) is not None for p in page.recent_paths())


def test_recent_projects_show_a_thumbnail_or_not_found_and_a_click_opens(
        qtbot, win, recent, boxes, tmp_path):
    cells, gone = map(str, recent)
    page = win.welcome
    assert win.label.currentWidget() is page
    assert page.recent_paths() == [cells, gone]
    qtbot.waitUntil(lambda: rows_read(page))
    assert win.readers == [False]  # one database opened (the deleted one is not tried), off the GUI thread

    info = page.recent_info(cells)
    assert (info.found, info.name, info.images) == (True, "cells", 3)
    thumb = info.thumbnail
    assert max(thumb.width(), thumb.height()) == THUMB_SIZE
    colour = thumb.pixelColor(thumb.width() // 2, thumb.height() // 2)
    assert (colour.red(), colour.green(), colour.blue()) == (255, 0, 0)  # the first image
    first = page.recent.item(0)
    assert first.text() == f"cells · 3 images\n{cells}"
    shown = first.icon().pixmap(THUMB_SIZE, THUMB_SIZE).toImage()
    assert shown.pixelColor(shown.width() // 2, shown.height() // 2).red() == 255  # not blank
    assert list((recent[0] / "cache" / "thumbs").iterdir())  # the Label list's cache

    missing = page.recent.item(1)
    assert not page.recent_info(gone).found
    assert missing.text() == f"gone: not found\n{gone}"
    assert not missing.flags() & Qt.ItemFlag.ItemIsEnabled
    win.grab().save(str(tmp_path / "start_page.png"))

    view = page.recent.viewport()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                     pos=page.recent.visualItemRect(missing).center())
    QTest.qWait(50)
    assert win.project is None and not boxes  # nothing opened, no error
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                     pos=page.recent.visualItemRect(first).center())
    qtbot.waitUntil(lambda: win.project is not None)
    assert str(win.project.root) == cells and win.label.currentWidget() is not page
    assert not boxes


def test_enter_opens_the_selected_recent_project(qtbot, win, recent):
    page = win.welcome
    qtbot.waitUntil(lambda: rows_read(page))
    page.recent.setFocus()
    page.recent.setCurrentRow(0)
    QTest.keyClick(page.recent, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.project is not None)
    assert win.project.root == recent[0]
    # closed again: the start page lists it first, read afresh
    QTest.keyClick(win, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.project is None and rows_read(page))
    assert page.recent_paths()[0] == str(recent[0])
    assert page.recent_info(str(recent[0])).images == 3


def test_a_broken_project_is_a_plain_row_and_never_raises(tmp_path, make_image):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / DB_NAME).write_bytes(b"this is not a database" * 100)
    with Project.create(tmp_path / "moved", name="moved") as p:  # its image is gone
        p.add_image(make_image("e.png", seed=4))
    (tmp_path / "images" / "e.png").unlink()
    token = CancelToken()
    seen = []
    token._progress = seen.append  # what the worker reports, in order
    paths = [str(tmp_path / "broken"), str(tmp_path / "moved"), str(tmp_path / "nowhere")]
    assert recent_projects.read_recent(token, paths) == 3
    broken, moved, nowhere = seen
    assert (broken.found, broken.problem) == (False, "cannot be read")
    assert (moved.found, moved.images, moved.thumbnail) == (True, 1, None)
    assert (nowhere.found, nowhere.problem) == (False, "not found")


def test_a_double_click_opens_once_and_nothing_is_read_while_hidden(qtbot, tmp_path):
    from studio.gui.workers import WorkerPool

    pool = WorkerPool(1, name="recent-test")
    page = WelcomePage(workers=pool)
    qtbot.addWidget(page)
    try:
        page.set_recent([str(tmp_path / "a"), str(tmp_path / "b")])
        assert not pool.busy  # not shown yet: nothing read
        page.show()
        qtbot.waitExposed(page)
        qtbot.waitUntil(lambda: rows_read(page))
        assert page.recent_info(str(tmp_path / "a")).problem == "not found"
        for item in (page.recent.item(0), page.recent.item(1)):  # pretend both were found
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        asked: list[str] = []
        page.recentRequested.connect(asked.append)
        rect = page.recent.visualItemRect(page.recent.item(1))
        view = page.recent.viewport()  # a double click: a click, then the second press
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.wait(50)
        assert asked == [str(tmp_path / "b")]
    finally:
        pool.shutdown()
