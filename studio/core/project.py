"""The project store: one folder with `project.db` (SQLite, WAL), `runs/` and `cache/`.

Every write is one transaction; `with project.transaction():` groups several writes into
one all-or-nothing unit (imports); image files copied in by a unit that rolls back are
removed again. A lock (see `projectlock`) keeps a second process out. The store is safe to
use from several threads (one connection guarded by a re-entrant lock), so the GUI thread
and a training worker can share it.

Durability: WAL mode with synchronous=FULL, so every committed edit is on the disk before
the call returns: a crash of the application, of the OS or a power loss loses no edit
that was saved (if the disk honours fsync) and never corrupts the database. NORMAL would
leave the WAL unsynced until the next checkpoint (up to ~1000 pages of edits lost on a power
cut); benchmarks/bench_store.py measures what FULL costs per edit (a few ms on an SSD,
below what a person notices, against ~0.2 ms). Bulk work is one transaction, one sync.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import (
    ProjectCorruptError,
    ProjectError,
    ReadOnlyProjectError,
    SchemaTooNewError,
    StudioError,
)
from studio.core.fileio import disk_full_error, is_disk_full
from studio.core.project_annotations import AnnotationsMixin
from studio.core.project_classes import ClassesMixin
from studio.core.project_images import STATUSES, ImagesMixin
from studio.core.project_runs import RunsMixin
from studio.core.projectlock import ProjectLock
from studio.core.schema import SCHEMA_VERSION, migrate, user_version
from studio.core.splits import SPLITS
from studio.core.sqlerrors import open_error, write_error

_log = logging.getLogger(__name__)

DB_NAME = "project.db"
LOCK_NAME = "project.lock"
# the settings' cache location: when set, caches live there, one folder per project
CACHE_ENV = "VISION_STUDIO_CACHE_DIR"


def _is_writable(path: Path) -> bool:
    """False for folders without write permission, even for a superuser."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class _NoLock:
    """The lock of a project opened for reading only: there is none to release."""

    def release(self) -> None:
        pass


class Project(ImagesMixin, AnnotationsMixin, ClassesMixin, RunsMixin):
    """An open project. Create with `Project.create` or `Project.open`; close when done."""

    def __init__(self, root: Path, conn: sqlite3.Connection, lock: ProjectLock) -> None:
        self.root = root
        self._conn = conn
        self._lock = lock
        self._mutex = threading.RLock()
        self._depth = 0
        self._copied: list[Path] = []  # image copies of the open transaction

    # --- opening and closing --------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | os.PathLike, name: str | None = None) -> Project:
        root = Path(folder).expanduser().resolve()
        if (root / DB_NAME).exists():
            raise ProjectError(f"{root} already holds a project; open it instead.")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"Cannot create the project folder {root}: {exc.strerror}.") from exc
        if not _is_writable(root):
            raise ReadOnlyProjectError(f"The folder {root} is read-only; choose a writable one.")
        project = cls._connect(root, new=True)
        with project.transaction():
            project._conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('name', ?), ('created_at', ?)",
                (name or root.name, str(time.time())),
            )
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Project:
        root = Path(folder).expanduser().resolve()
        if not (root / DB_NAME).is_file():
            raise ProjectError(f"{root} is not a Vision Studio project (no {DB_NAME} in it).")
        if not _is_writable(root) or not _is_writable(root / DB_NAME):
            raise ReadOnlyProjectError(
                f"The project folder {root} is read-only. Copy it to a writable place, "
                "or give yourself write permission, then open it again."
            )
        return cls._connect(root, new=False)

    @classmethod
    def open_for_reading(cls, folder: str | os.PathLike) -> Project:
        """Open without the lock and without writing, beside the process that holds it
        (the other ranks of a distributed training run read the project this way).
        Writes raise ReadOnlyProjectError."""
        root = Path(folder).expanduser().resolve()
        if not (root / DB_NAME).is_file():
            raise ProjectError(f"{root} is not a Vision Studio project (no {DB_NAME} in it).")
        uri = (root / DB_NAME).as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=5000")
            version = user_version(conn)
        except sqlite3.DatabaseError as exc:
            raise ProjectCorruptError(
                f"{root / DB_NAME} is not a readable project database ({exc}).") from exc
        if version != SCHEMA_VERSION:
            conn.close()
            raise SchemaTooNewError(
                f"The project in {root} has schema {version}; this version reads "
                f"{SCHEMA_VERSION}. Open it once normally (which migrates it), or update.")
        return cls(root, conn, _NoLock())

    @classmethod
    def open_for_child(cls, folder: str | os.PathLike) -> Project:
        """Open read-write without taking the lock, in a child process that the holder of
        the lock started and waits for (the GUI's training process). SQLite in WAL mode
        keeps the two processes' transactions apart."""
        root = Path(folder).expanduser().resolve()
        if not (root / DB_NAME).is_file():
            raise ProjectError(f"{root} is not a Vision Studio project (no {DB_NAME} in it).")
        return cls._connect(root, new=False, take_lock=False)

    @classmethod
    def _connect(cls, root: Path, new: bool, take_lock: bool = True) -> Project:
        lock = ProjectLock(root / LOCK_NAME, root / DB_NAME) if take_lock else _NoLock()
        if take_lock:
            lock.acquire()
        try:
            try:
                conn = sqlite3.connect(root / DB_NAME, isolation_level=None,
                                       check_same_thread=False)
            except sqlite3.DatabaseError as exc:
                raise open_error(root, exc) from exc
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=FULL")  # see the module docstring
                conn.execute("PRAGMA busy_timeout=5000")
                version = user_version(conn)
                if version > SCHEMA_VERSION:
                    raise SchemaTooNewError(
                        f"The project in {root} was saved by a newer Vision Studio (schema "
                        f"{version}; this version reads up to {SCHEMA_VERSION}). Update the app."
                    )
                if not new and take_lock:  # a child of the holder leaves this to the holder
                    check = conn.execute(f"PRAGMA {_check_pragma(conn)}").fetchone()[0]
                    if check != "ok":
                        raise ProjectCorruptError(
                            f"The project database in {root} is damaged ({check}). "
                            "Restore it from a backup."
                        )
                if take_lock:
                    migrate(conn)
                    conn.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('clean_close', '0')")
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise open_error(root, exc) from exc
            except StudioError:
                conn.close()
                raise
        except BaseException:
            lock.release()
            db = root / DB_NAME
            if new and db.is_file() and db.stat().st_size == 0:
                db.unlink()  # the empty file the lock made: a retry may create the project
            raise
        try:
            for sub in ("runs", "cache"):
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            conn.close()
            lock.release()
            if is_disk_full(exc):
                raise disk_full_error(root, "open the project in") from exc
            raise ProjectError(f"Cannot create {sub}/ in {root}: {exc.strerror}.") from exc
        project = cls(root, conn, lock)
        if not new:
            try:
                project.recover_runs()
            except StudioError:
                project.close()
                raise
        return project

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                try:
                    if not isinstance(self._lock, _NoLock):  # only the lock holder marks it
                        self._conn.execute(
                            "INSERT OR REPLACE INTO meta(key, value) VALUES ('clean_close', '1')")
                except sqlite3.Error as exc:  # read-only or vanished: the next open checks fully
                    _log.info("could not mark %s as cleanly closed: %s", self.root, exc)
                self._conn.close()
                self._conn = None  # type: ignore[assignment]
            self._lock.release()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def name(self) -> str:
        row = self._query("SELECT value FROM meta WHERE key='name'")
        return row[0][0] if row else self.root.name

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def cache_dir(self) -> Path:
        """Tile pyramids and thumbnails: `cache/` in the project, or a folder of its own
        under $VISION_STUDIO_CACHE_DIR (the cache location chosen in the settings)."""
        base = os.environ.get(CACHE_ENV)
        if not base:
            return self.root / "cache"
        key = hashlib.sha1(str(self.root.resolve()).encode("utf-8")).hexdigest()[:12]
        return Path(base) / f"{self.root.name}-{key}"

    # --- transactions -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside land together or not at all; nested calls join the outer one."""
        with self._mutex:
            if self._conn is None:
                raise ProjectError("The project is closed.")
            outer = self._depth == 0
            if outer:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise write_error(self.root, exc) from exc
            self._depth += 1
            try:
                yield self._conn
            except BaseException as exc:
                self._depth -= 1
                if outer:
                    self._rollback()
                    if isinstance(exc, sqlite3.OperationalError):
                        raise write_error(self.root, exc) from exc
                raise
            self._depth -= 1
            if outer:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    self._rollback()
                    raise write_error(self.root, exc) from exc
                self._copied.clear()

    def _rollback(self) -> None:
        """Undo the open transaction, unless SQLite already has (it rolls back by itself
        after some errors, e.g. a full disk, and a second ROLLBACK would hide the cause);
        remove the image files it copied in."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:  # the cause is being raised; this one is logged
            _log.warning("rollback in %s failed: %s", self.root, exc)
        copied, self._copied = self._copied, []
        for path in copied:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                _log.warning("could not remove the copied image %s: %s", path, exc)

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._mutex:
            if self._conn is None:
                raise ProjectError("The project is closed.")
            return self._conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        with self.transaction() as conn:
            try:
                return conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                raise write_error(self.root, exc) from exc

    # --- statistics --------------------------------------------------------------------------
    def counts(self) -> dict:
        q = self._query
        by_kind = {k: n for k, n in q("SELECT kind, COUNT(*) FROM annotations GROUP BY kind")}
        by_class = {name: n for name, n in q(
            "SELECT c.name, COUNT(a.id) FROM classes c LEFT JOIN annotations a ON a.class_id = c.id"
            " GROUP BY c.id ORDER BY c.position")}
        splits = {s: 0 for s in SPLITS}
        splits.update({s: n for s, n in q("SELECT split, COUNT(*) FROM images GROUP BY split")})
        statuses = {s: 0 for s in STATUSES}
        statuses.update({s: n for s, n in q("SELECT status, COUNT(*) FROM images GROUP BY status")})
        return {
            "images": int(q("SELECT COUNT(*) FROM images")[0][0]),
            "classes": [c.name for c in self.classes()],
            "annotations": {"total": sum(by_kind.values()), "by_kind": by_kind, "by_class": by_class},
            "splits": splits,
            "statuses": statuses,
        }


def _check_pragma(conn: sqlite3.Connection) -> str:
    """The full integrity check after an unclean shutdown, the quick one after a clean close.

    `quick_check` verifies every page and record but not that indexes match their tables;
    it is several times faster on large projects, which keeps opening 100,000 images
    under a second. A crash (or a copy taken while open) triggers the full check.
    """
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'clean_close'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet: an empty or foreign database
        return "integrity_check"
    return "quick_check" if row and row[0] == "1" else "integrity_check"
