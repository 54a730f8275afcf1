"""File > Settings: each setting changed by clicks and keys, stored, and put to use."""

from __future__ import annotations

import os
import time

import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from studio.core.project import CACHE_ENV, Project
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings, apply_preferences, train_defaults
from studio.gui.settings_dialog import SettingsDialog
from studio.gui.theme import apply_theme

MB = 2**20


@pytest.fixture
def win(qtbot, tmp_path, make_image):
    with Project.create(tmp_path / "proj", name="demo") as p:
        p.add_image(make_image("a.png", 24, 32))
    threads = torch.get_num_threads()
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_project(tmp_path / "proj")
    yield window
    window.close()
    apply_preferences(Settings.at(tmp_path / "defaults.ini"))  # the defaults again
    torch.set_num_threads(threads)
    apply_theme("light")


def open_dialog(qtbot, win) -> SettingsDialog:
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    target = QApplication.focusWidget() or win
    QTest.keyClick(target, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(win.findChildren(SettingsDialog)) == 1
                    and win.findChild(SettingsDialog).isVisible())
    return win.findChild(SettingsDialog)


def closed(win) -> bool:
    """The dialog is gone (deleted on close) and no work it started is running."""
    return not win.findChildren(SettingsDialog) and not win.workers.busy


def pick(combo, data) -> None:
    """Choose an entry with the arrow keys, as a person would with the keyboard."""
    combo.setFocus()
    for key in (Qt.Key.Key_Home, *[Qt.Key.Key_Down] * combo.count()):
        if combo.currentData() == data:
            return
        QTest.keyClick(combo, key)
    assert combo.currentData() == data


def click_radio(qtbot, button) -> None:
    """Click on the round mark (the button may be wider than its mark and text)."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    assert button.isChecked()


def type_into(qtbot, widget, text: str) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
    QTest.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)


def sparse(path, size: int, age_s: float = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_each_setting_is_stored_and_applied(qtbot, win, tmp_path):
    cache = tmp_path / "cache"
    old_tiles = cache / "other-0123" / "tiles" / "k-512-png"
    sparse(old_tiles / "0" / "0_0.png", 50 * MB, age_s=3600)
    sparse(old_tiles / "manifest.json", 100, age_s=3600)
    recent_thumb = cache / "other-0123" / "thumbs" / "k-128.png"
    sparse(recent_thumb, 30 * MB)

    dialog = open_dialog(qtbot, win)
    qtbot.waitUntil(lambda: dialog.device.findData("cpu") >= 0
                    and "cores" in dialog.device.itemText(dialog.device.findData("cpu")))
    pick(dialog.device, "cpu")
    type_into(qtbot, dialog.threads.lineEdit(), "1")
    type_into(qtbot, dialog.cache_size.lineEdit(), "64")
    click_radio(qtbot, dialog.in_folder)
    assert dialog.cache_dir.isEnabled()
    type_into(qtbot, dialog.cache_dir, str(cache))
    pick(dialog.theme, "dark")
    dialog.grab().save(str(tmp_path / "settings.png"))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: closed(win))  # the cache trim on a worker is done too

    stored = Settings.at(tmp_path / "settings.ini")  # what a restart would read
    assert stored.value("preferences/device") == "cpu"
    assert int(stored.value("preferences/cpu_threads")) == 1
    assert int(stored.value("preferences/cache_mb")) == 64
    assert stored.value("preferences/cache_dir") == str(cache)
    assert stored.value("view/theme") == "dark"
    # applied: a new run's defaults, torch's threads, the project's cache, the palette
    from studio.gui.train import backend

    config = backend.default_config("semantic")
    assert (config["device"], config["cpu_threads"]) == ("cpu", 1)
    assert train_defaults() == {"device": "cpu", "cpu_threads": 1}
    assert torch.get_num_threads() == 1
    assert os.environ[CACHE_ENV] == str(cache)
    assert win.project.cache_dir.parent == cache
    assert win.theme.scheme == "dark" and win.theme.actions["dark"].isChecked()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    # the cache is trimmed to 64 MB: the least recently used pyramid goes, whole
    assert not old_tiles.exists() and recent_thumb.is_file()

    again = open_dialog(qtbot, win)  # the dialog shows what is stored
    assert again.device.currentData() == "cpu" and again.threads.value() == 1
    assert again.cache_size.value() == 64 and again.in_folder.isChecked()
    assert again.theme.currentData() == "dark"
    qtbot.mouseClick(again.buttons.button(QDialogButtonBox.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: closed(win))


def test_an_unusable_cache_folder_is_refused_and_nothing_is_stored(qtbot, win, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    dialog = open_dialog(qtbot, win)
    type_into(qtbot, dialog.threads.lineEdit(), "3")
    click_radio(qtbot, dialog.in_folder)
    type_into(qtbot, dialog.cache_dir, str(blocker / "cache"))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.error.isVisible()
    assert "Choose another folder" in dialog.error.text()
    assert Settings.at(tmp_path / "settings.ini").value("preferences/cpu_threads") is None
    assert CACHE_ENV not in os.environ
    assert win.project.cache_dir == tmp_path / "proj" / "cache"
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: closed(win))


def test_the_segment_button_opens_the_click_to_segment_model_dialog(qtbot, win, tmp_path):
    from dataclasses import asdict

    from studio.gui.segment_settings import SEGMENT, SegmentConfig, SegmentModelDialog

    win.settings.set_value("segment/disk_mb", 512)  # stored before: the dialog shows it
    dialog = open_dialog(qtbot, win)
    try:
        qtbot.mouseClick(dialog.segment, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.findChild(SegmentModelDialog) is not None
                        and dialog.findChild(SegmentModelDialog).isVisible())
        segment = dialog.findChild(SegmentModelDialog)
        assert segment.disk.value() == 512
        pick(segment.output, "polygon")
        qtbot.mouseClick(segment.findChild(QDialogButtonBox).button(
            QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.findChild(SegmentModelDialog) is None)
        assert dialog.isVisible()  # back in the settings
        assert SEGMENT.config.output == "polygon"
        assert Settings.at(tmp_path / "settings.ini").value("segment/output") == "polygon"
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel),
                         Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: closed(win))
    finally:
        SEGMENT.update(**asdict(SegmentConfig()))  # the live copy is process-wide
