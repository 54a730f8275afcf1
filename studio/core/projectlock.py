"""The lock that keeps a second process out of an open project.

Two locks are held while a project is open:
- an exclusive advisory lock on `project.lock` (which also records the holder's pid), the
  lock earlier versions took, so that they and this one keep each other out;
- on POSIX, an exclusive `flock` on `project.db` itself. Deleting `project.lock` while the
  project is open would let another process create a fresh lock file and lock that; the
  database cannot be deleted from under its holder without destroying the project, so the
  second lock still refuses. `flock` locks belong to our own open file and do not interact
  with SQLite's byte-range locks on the same file. On Windows an open file cannot be
  deleted, so `project.lock` alone holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.core.errors import ProjectLockedError


def _lock_fd(fd: int) -> None:
    """Take an exclusive, non-blocking lock on an open file; OSError when held elsewhere."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class ProjectLock:
    """Exclusive locks on `project.lock` and (POSIX) the database file of one project."""

    def __init__(self, lock_path: Path, db_path: Path) -> None:
        self.path = lock_path
        self.db_path = db_path
        self._fh = None
        self._db_fd: int | None = None

    def _locked(self) -> ProjectLockedError:
        return ProjectLockedError(
            f"The project in {self.path.parent} is open in another window or process. "
            "Close it there first.")

    def acquire(self) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held open until release()
        try:
            _lock_fd(fh.fileno())
        except OSError as exc:
            fh.close()
            raise self._locked() from exc
        if os.name != "nt":
            try:
                # O_CREAT: a new project's database does not exist yet (SQLite takes an
                # empty file for an empty database)
                db_fd = os.open(self.db_path, os.O_RDONLY | os.O_CREAT, 0o644)
            except OSError:
                fh.close()
                raise
            try:
                _lock_fd(db_fd)
            except OSError as exc:
                os.close(db_fd)
                fh.close()
                raise self._locked() from exc
            self._db_fd = db_fd
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._db_fd is not None:
            os.close(self._db_fd)
            self._db_fd = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
