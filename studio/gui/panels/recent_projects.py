"""What the start page shows of a recent project: its name, image count and a thumbnail of
its first image. Read on a worker (`read_recent`): opening a project database and decoding
an image are disk work, and a project on a slow or vanished network drive must not hold up
the window.

A project is opened read-only and without its lock (`Project.open_for_reading`), so a
project open in another window is read too, and nothing in it is changed; the thumbnail is
the one the Label image list keeps in the project's cache (made there when missing).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QImage

from studio.core.errors import StudioError
from studio.core.project import DB_NAME, Project
from studio.gui.panels.images_model import THUMB_SIZE, make_thumbnail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecentProject:
    path: str
    found: bool
    name: str = ""
    images: int = 0
    thumbnail: QImage | None = None
    problem: str = ""  # why a project is not shown ("not found", or what failed)

    @property
    def title(self) -> str:
        if not self.found:
            return f"{Path(self.path).name or self.path}: {self.problem}"
        count = f"{self.images} image{'' if self.images == 1 else 's'}"
        return f"{self.name} · {count}"


def describe(path: str, size: int = THUMB_SIZE) -> RecentProject:
    """The project at `path`, or a row saying it is not there or cannot be read; never
    raises for a missing, moved, locked-out, corrupt or too new project (worker thread)."""
    root = Path(path)
    try:
        if not (root / DB_NAME).is_file():
            return RecentProject(path, False, problem="not found")
        with Project.open_for_reading(root) as project:
            name, count = project.name, project.count_images()
            first = project.images(limit=1)
            cache = project.cache_dir
    except (StudioError, OSError, sqlite3.Error) as exc:
        log.info("recent project %s cannot be read: %s", path, exc)
        return RecentProject(path, False, problem="cannot be read")
    thumb = None
    if first:
        try:
            thumb = make_thumbnail(first[0].abs_path, cache, size)
        except (StudioError, OSError) as exc:  # an image moved away: the row, no picture
            log.info("no thumbnail for the recent project %s: %s", path, exc)
    return RecentProject(path, True, name=name, images=count, thumbnail=thumb)


def read_recent(token, paths: list[str], size: int = THUMB_SIZE) -> int:
    """Worker: describe each project in turn, each reported as progress as soon as it is
    read (the first rows fill in while a slow one is still read); stops when cancelled."""
    for path in paths:
        token.check()
        token.progress(describe(path, size))
    return len(paths)
