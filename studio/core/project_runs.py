"""Training runs recorded in the project: config, history, device, metrics, checkpoints.

A run set to "running" records the process that runs it (pid and host). When a project is
opened, a run still marked "running" whose process is gone (killed, crashed, power lost) is
marked "interrupted" (resumable from its last.pt), and temporary files that a write cut
short left in its folder are removed; a window that supervises the process records it at
once (`end_runs_of_process`).

A run's duration is the time it trained over all its sessions: a resumed run adds the
new session's time to what it had (see `update_run`).

Settings of the Train workspace that belong to the project (e.g. the answer to the mirror
question) are kept in the store too: `train_setting` / `set_train_setting`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import NotFoundError, ProjectError
from studio.core.fileio import remove_stale_temp_files
from studio.core.jsonutil import dumps_strict

_log = logging.getLogger(__name__)

RUN_STATUSES = ("created", "running", "stopped", "finished", "failed", "interrupted")
_JSON_FIELDS = ("config", "history", "best_metrics", "checkpoints")
_PLAIN_FIELDS = ("name", "status", "device", "error", "ended_at", "duration_s")


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    task: str
    config: dict
    status: str
    device: str | None
    history: list
    best_metrics: dict
    checkpoints: dict
    error: str | None
    started_at: float
    ended_at: float | None
    duration_s: float | None


_COLS = ("id, name, task, config, status, device, history, best_metrics, checkpoints, error,"
         " started_at, ended_at, duration_s")


def _record(row: tuple) -> RunRecord:
    r = list(row)
    r[3], r[6], r[7], r[8] = (json.loads(r[i]) for i in (3, 6, 7, 8))
    return RunRecord(*r)


class RunsMixin:
    """Run bookkeeping for `Project`."""

    def _run_folder(self, run_id: int) -> Path:
        return self.root / "runs" / f"run_{run_id:04d}"

    def run_dir(self, run_id: int) -> Path:
        """A run's folder, made when missing."""
        d = self._run_folder(run_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def create_run(self, task: str, config: dict, name: str | None = None) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs(name, task, config, started_at) VALUES (?, ?, ?, ?)",
                (name or "", task, dumps_strict(config), time.time()))
            run_id = int(cur.lastrowid)
            if not name:
                conn.execute("UPDATE runs SET name = ? WHERE id = ?", (f"run {run_id}", run_id))
        return run_id

    def run(self, run_id: int) -> RunRecord:
        rows = self._query(f"SELECT {_COLS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFoundError(f"There is no run {run_id} in this project.")
        return _record(rows[0])

    def runs(self, task: str | None = None) -> list[RunRecord]:
        if task is None:
            rows = self._query(f"SELECT {_COLS} FROM runs ORDER BY id")
        else:
            rows = self._query(f"SELECT {_COLS} FROM runs WHERE task = ? ORDER BY id", (task,))
        return [_record(r) for r in rows]

    def update_run(self, run_id: int, **fields) -> None:
        """Set fields of a run's record. `duration_s` given while the run is "running" is
        the length of the session that now ends: it is added to the time the run trained
        before (a resumed run reports its whole training time, not its last part)."""
        with self.transaction():
            before = self.run(run_id)
            sets, params = [], []
            for key, value in fields.items():
                if key in _JSON_FIELDS:
                    value = dumps_strict(value)
                elif key not in _PLAIN_FIELDS:
                    raise ValueError(f"runs have no field {key!r}")
                if key == "status" and value not in RUN_STATUSES:
                    raise ValueError(f"unknown run status {value!r}")
                if key == "duration_s" and value is not None and before.status == "running":
                    value = float(value) + float(before.duration_s or 0.0)
                sets.append(f"{key} = ?")
                params.append(value)
                if key == "status" and value == "running":
                    sets += ["pid = ?", "host = ?"]
                    params += [os.getpid(), socket.gethostname()]
            if sets:
                self._write(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))

    def end_runs_of_process(self, pid: int, status: str, error: str) -> list[int]:
        """Record how the runs that process `pid` (on this machine) left "running" ended:
        for a window whose training process died (killed, crashed). Returns their ids."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"a run cannot end {status!r}")
        with self.transaction() as conn:
            ids = [int(r[0]) for r in conn.execute(
                "SELECT id FROM runs WHERE status = 'running' AND pid = ? AND host = ?",
                (int(pid), socket.gethostname())).fetchall()]
            conn.executemany("UPDATE runs SET status = ?, error = ?, ended_at = ? WHERE id = ?",
                             [(status, error, time.time(), i) for i in ids])
        return ids

    def train_setting(self, key: str, default=None):
        """A Train workspace setting this project keeps (JSON value), or `default`."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"train.{key}",))
        if not rows:
            return default
        try:
            return json.loads(rows[0][0])
        except ValueError:
            return default  # not ours to fail on: the setting is asked again

    def set_train_setting(self, key: str, value) -> None:
        """Keep a Train workspace setting in the project (None forgets it)."""
        if value is None:
            self._write("DELETE FROM meta WHERE key = ?", (f"train.{key}",))
        else:
            self._write("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                        (f"train.{key}", dumps_strict(value)))

    def append_run_epoch(self, run_id: int, record: dict) -> None:
        """Add one epoch's figures to a run's history (one transaction)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT history FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"There is no run {run_id} in this project.")
            history = json.loads(row[0])
            history.append(record)
            conn.execute("UPDATE runs SET history = ? WHERE id = ?", (dumps_strict(history), run_id))

    def recover_runs(self) -> list[int]:
        """Mark runs whose process is gone "interrupted" and clear their stale temporary
        files; returns their ids. Called when the project is opened."""
        host = socket.gethostname()
        interrupted = []
        for run_id, pid, run_host in self._query(
                "SELECT id, pid, host FROM runs WHERE status = 'running'"):
            if run_host == host and pid is not None and pid != os.getpid() and _alive(pid):
                continue  # a process on this machine still runs it
            interrupted.append(run_id)
        if interrupted:
            now = time.time()
            with self.transaction() as conn:
                conn.executemany(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?, error = ? WHERE id = ?",
                    [(now, "The process running it stopped (killed, crashed or the machine "
                           "lost power); resume it from its last checkpoint.", i)
                     for i in interrupted])
        runs = self.root / "runs"
        folders = [self.root / "images", *(p for p in runs.iterdir() if p.is_dir())] \
            if runs.is_dir() else [self.root / "images"]
        for folder in folders:
            for path in remove_stale_temp_files(folder):
                _log.info("removed the stale temporary file %s", path)
        return interrupted

    def delete_run(self, run_id: int) -> None:
        """Delete a run: its record, then its folder (checkpoints, reports, recipe)."""
        self.run(run_id)
        folder = self._run_folder(run_id)
        self._write("DELETE FROM runs WHERE id = ?", (run_id,))
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass  # a run that never saved anything has no folder
        except OSError as exc:
            raise ProjectError(f"Run {run_id} is deleted but its folder {folder} could not be "
                               f"removed: {exc.strerror}. Delete it by hand.") from exc


def _alive(pid: int) -> bool:
    """True when a process with this id exists on this machine."""
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would send Ctrl-C there
        return False  # we hold the project's lock: no other process has it open
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: assume alive)
    return True
