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


# --- preferences (Edit > Settings) ------------------------------------------------------
DEFAULT_CACHE_MB = 2048
PREFERENCES = {  # key: default
    "preferences/device": "auto",  # the Train workspace's device for a new run
    "preferences/cpu_threads": 0,  # torch threads (0: torch's own choice)
    "preferences/cache_mb": DEFAULT_CACHE_MB,  # tile and thumbnail cache limit
    "preferences/cache_dir": "",  # "" = in each project's folder
}
_current = {"device": "auto", "cpu_threads": 0}  # what the running application uses
_torch_threads: dict[str, int] = {}  # torch's own thread count, before a preference
_set_env: dict[str, str] = {}  # environment variables the preferences set


def preference(settings: Settings, key: str):
    """A preference's stored value, of its default's type (QSettings' ini keeps strings)."""
    default = PREFERENCES[key]
    value = settings.value(key, default)
    if isinstance(default, int):
        try:
            return max(0, int(value))
        except (TypeError, ValueError):
            return default
    return str(value or default)


def default_cache_location() -> Path:
    """The per-user cache folder offered in the settings (platformdirs)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vision-studio")) / "projects"


def train_defaults() -> dict:
    """The settings' part of a new run's config: device and CPU threads."""
    return dict(_current)


def apply_preferences(settings: Settings) -> None:
    """Put the stored preferences to use in this process: the Train workspace's defaults
    (`train_defaults`), torch's thread count (now if torch is loaded, else through
    OMP_NUM_THREADS before it loads) and the cache location (Project.cache_dir)."""
    import os
    import sys

    from studio.core.project import CACHE_ENV

    threads = preference(settings, "preferences/cpu_threads")
    _current.update(device=preference(settings, "preferences/device"), cpu_threads=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        _torch_threads.setdefault("initial", torch.get_num_threads())
        torch.set_num_threads(threads or _torch_threads["initial"])
    for name, value in (("OMP_NUM_THREADS", str(threads) if threads and torch is None else ""),
                        (CACHE_ENV, preference(settings, "preferences/cache_dir"))):
        if value:
            os.environ[name] = _set_env[name] = value
        elif name in _set_env and os.environ.get(name) == _set_env.pop(name):
            del os.environ[name]  # only what the settings put there, not a person's own


def prune_cache(folder: str | Path, max_bytes: int) -> tuple[int, int]:
    """Delete the least recently used cache entries under `folder` until it holds at most
    `max_bytes`; returns (bytes before, bytes removed). An entry is one image's tile
    pyramid (`tiles/<image>/`, removed whole with its manifest) or one thumbnail file;
    anything removed is rebuilt from the image when needed. No Qt: runs on a worker."""
    import os
    import shutil

    units: dict[str, list[float]] = {}  # path -> [last use, bytes]
    for dirpath, _dirs, names in os.walk(folder):
        parts = Path(dirpath).relative_to(folder).parts
        pyramid = (os.path.join(folder, *parts[:parts.index("tiles") + 2])
                   if "tiles" in parts[:-1] else None)
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # removed meanwhile
                continue
            unit = units.setdefault(pyramid or path, [0.0, 0])
            unit[0] = max(unit[0], st.st_atime, st.st_mtime)
            unit[1] += st.st_size
    total = int(sum(size for _t, size in units.values()))
    removed = 0
    for path, (_time, size) in sorted(units.items(), key=lambda kv: kv[1][0]):
        if total - removed <= max_bytes:
            break
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            continue
        removed += int(size)
    return total, removed
