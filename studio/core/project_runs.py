"""Training runs recorded in the project: config, history, device, metrics, checkpoints."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import NotFoundError
from studio.core.jsonutil import dumps_strict

RUN_STATUSES = ("created", "running", "stopped", "finished", "failed")
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

    def run_dir(self, run_id: int) -> Path:
        d = self.root / "runs" / f"run_{run_id:04d}"
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
        self.run(run_id)
        sets, params = [], []
        for key, value in fields.items():
            if key in _JSON_FIELDS:
                value = dumps_strict(value)
            elif key not in _PLAIN_FIELDS:
                raise ValueError(f"runs have no field {key!r}")
            if key == "status" and value not in RUN_STATUSES:
                raise ValueError(f"unknown run status {value!r}")
            sets.append(f"{key} = ?")
            params.append(value)
        if sets:
            self._write(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, run_id))

    def append_run_epoch(self, run_id: int, record: dict) -> None:
        """Add one epoch's figures to a run's history (one transaction)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT history FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"There is no run {run_id} in this project.")
            history = json.loads(row[0])
            history.append(record)
            conn.execute("UPDATE runs SET history = ? WHERE id = ?", (dumps_strict(history), run_id))

    def delete_run(self, run_id: int) -> None:
        self.run(run_id)
        self._write("DELETE FROM runs WHERE id = ?", (run_id,))
