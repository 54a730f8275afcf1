"""Remembered things: last project, recent projects, window geometry and dock layout.

A thin wrapper over QSettings. The application uses the per-user location; tests pass a
QSettings on a temporary ini file so they never touch a person's real settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

ORGANIZATION = "vision-studio"
APPLICATION = "Vision Studio"
MAX_RECENT = 8


class Settings:
    """Typed access to the application's QSettings."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qs = qsettings if qsettings is not None else QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)

    @classmethod
    def at(cls, ini_path: str | Path) -> Settings:
        """Settings kept in a given ini file (tests, portable installs)."""
        return cls(QSettings(str(ini_path), QSettings.Format.IniFormat))

    # --- projects -----------------------------------------------------------------------
    @property
    def last_project(self) -> str | None:
        value = self.qs.value("projects/last", "")
        return str(value) if value else None

    def set_last_project(self, path: str | Path | None) -> None:
        self.qs.setValue("projects/last", str(path) if path else "")
        if path:
            self.add_recent(path)
        self.qs.sync()

    def recent_projects(self) -> list[str]:
        value = self.qs.value("projects/recent", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str | Path) -> None:
        path = str(path)
        recent = [p for p in self.recent_projects() if p != path]
        self.qs.setValue("projects/recent", [path, *recent][:MAX_RECENT])

    # --- window ---------------------------------------------------------------------------
    def save_window(self, window: QMainWindow, editor: QMainWindow | None = None) -> None:
        """Geometry and tool bars of the window; the dock layout of `editor` (the Label
        workspace's nested window, which holds the docks)."""
        self.qs.setValue("window/geometry", window.saveGeometry())
        self.qs.setValue("window/state", window.saveState())
        if editor is not None:
            self.qs.setValue("window/label_state", editor.saveState())
        self.qs.sync()

    def restore_window(self, window: QMainWindow, editor: QMainWindow | None = None) -> bool:
        """Restore geometry and dock layout; False when nothing was saved yet."""
        geometry = self.qs.value("window/geometry")
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = window.restoreGeometry(geometry)
        for target, key in ((window, "window/state"), (editor, "window/label_state")):
            state = self.qs.value(key)
            if target is not None and isinstance(state, QByteArray) and not state.isEmpty():
                restored = target.restoreState(state) and restored
        return restored

    def value(self, key: str, default=None):
        return self.qs.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.qs.setValue(key, value)
