"""File > Settings: default device, CPU threads, the image cache (size and place), theme,
and a button to the click-to-segment model's own dialog (studio.gui.segment_settings).

The values live in the application's settings (studio.gui.settings, keys `preferences/*`
and the theme's `view/theme`) and are put to use on OK by `apply_preferences`: a new run
in the Train workspace starts with the device and threads chosen here, torch in this
process uses the threads, the tile and thumbnail cache moves to the chosen folder and is
trimmed to the chosen size (on a worker: walking a large cache takes time).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.gui.settings import (
    Settings,
    apply_preferences,
    default_cache_location,
    preference,
    prune_cache,
)
from studio.gui.theme import SETTING as THEME_SETTING
from studio.gui.theme import THEMES

log = logging.getLogger(__name__)
MB = 2**20


def _devices():
    from studio.ml.device_list import list_devices  # loads torch: on a worker

    return list_devices()


class SettingsDialog(QDialog):
    """The settings form; `pool` (a WorkerPool) lists the devices and trims the cache,
    `choose_theme(mode)` applies a theme (the window's View > Theme)."""

    def __init__(self, settings: Settings, pool=None, choose_theme: Callable | None = None,
                 project_cache: Callable[[], Path | None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self.settings, self.pool = settings, pool
        self.choose_theme = choose_theme
        self.project_cache = project_cache or (lambda: None)
        self.devices_task = None

        self.device = QComboBox()
        stored = preference(settings, "preferences/device")
        for name, label in (("auto", "auto (the first GPU, else the CPU)"), ("cpu", "cpu")):
            self.device.addItem(label, name)
        if self.device.findData(stored) < 0:
            self.device.addItem(stored, stored)
        self.device.setCurrentIndex(self.device.findData(stored))
        self.device.setToolTip("The device a new run in the Train workspace starts with")
        self.threads = QSpinBox()
        self.threads.setRange(0, max(1, os.cpu_count() or 1) * 2)
        self.threads.setSpecialValueText("torch's choice")
        self.threads.setValue(preference(settings, "preferences/cpu_threads"))
        self.threads.setToolTip("Threads torch uses on the CPU (training, prediction). Leave "
                                "one core free for the window on a small machine.")
        self.cache_size = QSpinBox()
        self.cache_size.setRange(64, 10_000_000)
        self.cache_size.setSingleStep(256)
        self.cache_size.setSuffix(" MB")
        self.cache_size.setValue(preference(settings, "preferences/cache_mb"))
        self.cache_size.setToolTip("Tiles of very large images and thumbnails: the least "
                                   "recently used are deleted past this size (and rebuilt "
                                   "from the image when needed)")
        folder = preference(settings, "preferences/cache_dir")
        self.in_project = QRadioButton("In each project's folder")
        self.in_folder = QRadioButton("In one folder:")
        group = QButtonGroup(self)
        group.addButton(self.in_project)
        group.addButton(self.in_folder)
        self.cache_dir = QLineEdit(folder or str(default_cache_location()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        (self.in_folder if folder else self.in_project).setChecked(True)
        self.in_folder.toggled.connect(self._sync)
        self.browse = browse
        self.theme = QComboBox()
        for mode, text in THEMES.items():
            self.theme.addItem(text.replace("&", ""), mode)
        self.theme.setCurrentIndex(max(0, self.theme.findData(
            str(settings.value(THEME_SETTING, "system") or "system"))))
        self.segment = QPushButton("Segment (click-to-segment) model…")
        self.segment.setToolTip("The model, device and embedding cache of the Label "
                                "workspace's click-to-segment tool")
        self.segment.clicked.connect(self.open_segment_settings)
        self.segment_dialog = None
        self.error = QLabel()
        self.error.setStyleSheet("color: #d0403a")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Default device", self.device)
        form.addRow("CPU threads", self.threads)
        form.addRow("Cache size", self.cache_size)
        row = QHBoxLayout()
        row.addWidget(self.cache_dir, 1)
        row.addWidget(browse)
        place = QVBoxLayout()
        place.addWidget(self.in_project)
        place.addWidget(self.in_folder)
        place.addLayout(row)
        form.addRow("Cache location", place)
        form.addRow("Theme", self.theme)
        form.addRow("Click-to-segment", self.segment)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._sync()
        if pool is not None:
            self.devices_task = pool.submit(_devices, on_result=self._set_devices,
                                            key="settings-devices")

    def done(self, result: int) -> None:
        if self.devices_task is not None:
            self.devices_task.cancel()  # its answer would reach a closed dialog
        super().done(result)

    def open_segment_settings(self):
        """The click-to-segment model dialog (its own OK stores its values), over this one."""
        from studio.gui.segment_settings import SEGMENT, SegmentModelDialog

        SEGMENT.load(self.settings)  # show what is stored, not the defaults
        dialog = SegmentModelDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.segment_dialog = dialog
        return dialog

    def _sync(self) -> None:
        on = self.in_folder.isChecked()
        self.cache_dir.setEnabled(on)
        self.browse.setEnabled(on)

    def _set_devices(self, devices) -> None:
        current = self.device.currentData()
        self.device.clear()
        for d in devices:
            self.device.addItem(d.label, d.name)
        index = self.device.findData(current)
        if index < 0:  # a GPU remembered from another machine: keep it, say it is absent
            self.device.addItem(f"{current} (not found on this computer)", current)
            index = self.device.count() - 1
        self.device.setCurrentIndex(index)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Cache folder", self.cache_dir.text())
        if folder:
            self.cache_dir.setText(folder)

    def _cache_folder(self) -> str:
        """The chosen cache folder ('' = in the projects), made if needed; OSError if it
        cannot be used."""
        if not self.in_folder.isChecked():
            return ""
        text = self.cache_dir.text().strip()
        if not text:
            raise OSError("no folder given")
        folder = Path(text).expanduser()
        if not folder.is_absolute():
            raise OSError("give a full path")
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise OSError("it is not writable")
        return str(folder)

    def accept(self) -> None:
        try:
            cache = self._cache_folder()
        except OSError as exc:
            self.error.setText(f"Cannot keep the cache in {self.cache_dir.text()!r}: "
                               f"{exc.strerror or exc}. Choose another folder.")
            self.error.show()
            return
        s = self.settings
        s.set_value("preferences/device", self.device.currentData())
        s.set_value("preferences/cpu_threads", self.threads.value())
        s.set_value("preferences/cache_mb", self.cache_size.value())
        s.set_value("preferences/cache_dir", cache)
        mode = self.theme.currentData()
        if self.choose_theme is not None:
            self.choose_theme(mode)  # stores it too
        else:
            s.set_value(THEME_SETTING, mode)
        s.qs.sync()
        apply_preferences(s)
        self.trim_cache()
        super().accept()

    def trim_cache(self) -> None:
        """Trim the cache in use (the shared folder, else the open project's) on a worker."""
        folder = preference(self.settings, "preferences/cache_dir") or self.project_cache()
        if self.pool is None or not folder or not Path(folder).is_dir():
            return
        limit = preference(self.settings, "preferences/cache_mb") * MB
        self.pool.submit(prune_cache, str(folder), limit, on_result=_log_trim,
                         key="settings-prune")


def _log_trim(result: tuple[int, int]) -> None:
    before, removed = result
    log.info("cache trimmed: %.1f of %.1f MB removed", removed / MB, before / MB)


def open_settings(window) -> SettingsDialog:
    """Show the settings dialog for the main window (modal to it)."""
    dialog = SettingsDialog(
        window.settings, pool=window.workers, choose_theme=window.theme.choose,
        project_cache=lambda: window.project.cache_dir if window.project else None,
        parent=window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def install_settings(window) -> QAction:
    """File > Settings… (Ctrl+,) in the main window, and the stored preferences applied."""
    act = QAction("&Settings…", window)
    act.setShortcut(QKeySequence("Ctrl+,"))
    act.setStatusTip("Default device, CPU threads, the image cache, theme, the "
                     "click-to-segment model")
    act.triggered.connect(lambda: open_settings(window))
    file_menu = None
    for menu_action in window.menuBar().actions():
        if menu_action.text() == "&File":
            file_menu = menu_action.menu()
    if file_menu is not None:
        file_menu.insertAction(window.actions.quit, act)
        file_menu.insertSeparator(window.actions.quit)
    window.settings_action = act
    apply_preferences(window.settings)
    return act
