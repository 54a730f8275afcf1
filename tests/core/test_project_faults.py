"""Faults of the machine seen by the store: a full disk, a removed lock file, a killed run."""

from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from studio.core import project as project_module
from studio.core import project_images
from studio.core.errors import DiskFullError, ProjectCorruptError, ProjectLockedError
from studio.core.formats import import_dataset
from studio.core.project import Project


class _FullDiskConnection:
    """A connection whose COMMIT fails as SQLite does on a full disk: the transaction is
    already rolled back when the error comes."""

    def __init__(self, conn: sqlite3.Connection, fail_on: str) -> None:
        self._conn = conn
        self._fail_on = fail_on

    def execute(self, sql, *args):
        if sql.strip().upper().startswith(self._fail_on):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_full_disk_on_commit_says_so_not_cannot_rollback(project):
    real = project._conn
    project._conn = _FullDiskConnection(real, "COMMIT")
    try:
        with pytest.raises(DiskFullError, match="full") as info:
            project.add_class("cells")
    finally:
        project._conn = real
    assert str(project.root) in str(info.value) and "cannot rollback" not in str(info.value)
    assert project.classes() == []  # nothing half-saved, and the store still works
    project.add_class("cells")


def test_full_disk_inside_a_transaction_is_a_disk_full_error(project):
    real = project._conn
    project._conn = _FullDiskConnection(real, "INSERT")
    try:
        with pytest.raises(DiskFullError):
            project.add_class("cells")
    finally:
        project._conn = real
    assert not real.in_transaction


def test_reopening_on_a_full_disk_is_not_called_corrupt(tmp_path, monkeypatch):
    Project.create(tmp_path / "p").close()
    connect = sqlite3.connect

    def full_disk_connect(*args, **kwargs):
        return _FullDiskConnection(connect(*args, **kwargs), "INSERT OR REPLACE INTO META")

    monkeypatch.setattr(project_module.sqlite3, "connect", full_disk_connect)
    with pytest.raises(DiskFullError, match="full") as info:
        Project.open(tmp_path / "p")
    assert not isinstance(info.value, ProjectCorruptError)
    monkeypatch.undo()
    Project.open(tmp_path / "p").close()  # the refusal released the lock


def test_import_with_copies_leaves_no_orphans_when_the_disk_fills(tmp_path, monkeypatch,
                                                                  make_image):
    for name in ("a.png", "b.png", "c.png"):
        make_image(name, seed=len(name) + ord(name[0]), folder=tmp_path / "ds")
    coco = {"images": [{"id": i, "file_name": n, "width": 48, "height": 32}
                       for i, n in enumerate(("a.png", "b.png", "c.png"), 1)],
            "annotations": [], "categories": [{"id": 1, "name": "x"}]}
    (tmp_path / "ds" / "ann.json").write_text(json.dumps(coco))
    real_copy = project_images.atomic_copy
    calls = []

    def copy_then_fill(src, dest):
        calls.append(dest)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_copy(src, dest)

    monkeypatch.setattr(project_images, "atomic_copy", copy_then_fill)
    with Project.create(tmp_path / "p") as p:
        with pytest.raises(DiskFullError, match="copy images into"):
            import_dataset(p, "coco", tmp_path / "ds" / "ann.json", copy_images=True)
        assert p.count_images() == 0
        assert not any((p.root / "images").iterdir())  # the two copies made are gone


def test_removing_the_lock_file_does_not_let_a_second_open_in(tmp_path):
    p = Project.create(tmp_path / "p")
    (tmp_path / "p" / "project.lock").unlink()
    with pytest.raises(ProjectLockedError):
        Project.open(tmp_path / "p")
    code = ("import sys\nfrom studio.core.project import Project\n"
            "from studio.core.errors import ProjectLockedError\n"
            "try:\n    Project.open(sys.argv[1])\nexcept ProjectLockedError:\n    sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")],
                            cwd=os.getcwd(), capture_output=True, timeout=120)
    assert result.returncode == 3, result.stderr.decode()
    p.close()
    Project.open(tmp_path / "p").close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_processes_are_interrupted_and_temp_files_removed(tmp_path):
    with Project.create(tmp_path / "p") as p:
        dead = p.create_run("semantic", {})
        p.update_run(dead, status="running")
        assert p._query("SELECT pid, host FROM runs WHERE id = ?", (dead,))[0] == (
            os.getpid(), socket.gethostname())
        alive = p.create_run("semantic", {})
        done = p.create_run("semantic", {})
        p.update_run(done, status="finished")
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            pid = _dead_pid()
            p._write("UPDATE runs SET pid = ? WHERE id = ?", (pid, dead))
            p.update_run(alive, status="running")
            p._write("UPDATE runs SET pid = ? WHERE id = ?", (sleeper.pid, alive))
            folder = p.run_dir(dead)
            stale = folder / f".last.{pid}.1234.tmp.pt"
            stale.write_bytes(b"half a checkpoint")
            (folder / "last.pt").write_bytes(b"kept")
            p.close()
            with Project.open(tmp_path / "p") as q:
                assert q.run(dead).status == "interrupted"
                assert "resume" in q.run(dead).error
                assert q.run(alive).status == "running"  # its process is still there
                assert q.run(done).status == "finished"
                assert not stale.exists() and (folder / "last.pt").exists()
        finally:
            sleeper.kill()
            sleeper.wait()


def test_every_edit_is_synced_to_disk(project):
    # WAL with synchronous=FULL: a committed edit survives a power cut (README, "What
    # survives what"); the cost per edit is measured in benchmarks/bench_store.py
    assert project._query("PRAGMA synchronous")[0][0] == 2
    assert project._query("PRAGMA journal_mode")[0][0] == "wal"


def test_a_run_left_running_by_an_older_version_is_interrupted_after_migration(tmp_path):
    from studio.core.schema import MIGRATIONS

    (tmp_path / "p").mkdir()
    conn = sqlite3.connect(tmp_path / "p" / "project.db", isolation_level=None)
    for statement in MIGRATIONS[1].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs(name, task, config, status, started_at) VALUES"
                 " ('old', 'semantic', '{}', 'running', 0)")
    conn.close()
    with Project.open(tmp_path / "p") as p:
        assert p.runs()[0].status == "interrupted"


def test_a_failed_create_leaves_no_empty_database(tmp_path, monkeypatch):
    def full_disk_connect(*args, **kwargs):
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr(project_module.sqlite3, "connect", full_disk_connect)
    with pytest.raises(DiskFullError):
        Project.create(tmp_path / "p")
    monkeypatch.undo()
    assert not (tmp_path / "p" / "project.db").exists()
    Project.create(tmp_path / "p").close()  # the retry works
