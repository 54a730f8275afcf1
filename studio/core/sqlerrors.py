"""What an SQLite error of the project store means, as one StudioError line.

A full disk must read as a full disk (naming the folder and the disk), never as "cannot
rollback" or as a damaged project; only SQLite's own verdict of damage is called damage.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from studio.core.errors import (
    ProjectCorruptError,
    ProjectError,
    ProjectLockedError,
    ReadOnlyProjectError,
    StudioError,
)
from studio.core.fileio import disk_full_error, is_disk_full


def is_sqlite_full(exc: sqlite3.Error) -> bool:
    """True for SQLITE_FULL (by its code, or its message where the code is missing)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "disk is full" in str(
        exc).lower()


def open_error(root: Path, exc: sqlite3.DatabaseError) -> StudioError:
    """What a failure while opening means: a full disk, an I/O error, or real damage."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if is_sqlite_full(exc):
        return disk_full_error(root, "open the project in")
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return ProjectError(f"Cannot open the project in {root}: the disk reported an error "
                            f"({exc}). Check the disk and try again.")
    if code in (sqlite3.SQLITE_READONLY,):
        return ReadOnlyProjectError(f"The project in {root} is read-only; copy it to a "
                                    "writable place and open it again.")
    return ProjectCorruptError(f"{root / 'project.db'} is not a readable project database "
                               f"({exc}); restore it from a backup.")


def write_error(root: Path, exc: sqlite3.OperationalError) -> StudioError:
    """What a failed write means: a full disk, a read-only project, a busy one, or else."""
    text = str(exc).lower()
    if is_sqlite_full(exc) or (exc.__cause__ is not None and is_disk_full(exc.__cause__)):
        return disk_full_error(root, "save to the project in")
    if "readonly" in text or "read-only" in text:
        return ReadOnlyProjectError(f"Cannot save to the project in {root}: it is read-only.")
    if "locked" in text or "busy" in text:
        return ProjectLockedError(f"The project in {root} is busy; try again in a moment.")
    return ProjectError(f"Cannot save to the project in {root}: {exc}.")
