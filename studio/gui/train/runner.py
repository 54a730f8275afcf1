"""One training run off the GUI thread: the engine's `fit`, events back as queued signals.

Two ways, the same loop: mode "process" (the default) has a QThread supervise a child
process that runs `fit` (studio.ml.fit_child) and reads its events line by line; mode
"thread" calls `fit` in the QThread itself. Under load, a training thread in the GUI's
process makes the window stall for hundreds of milliseconds (the GIL changes hands at
the mercy of the scheduler), a child process does not (benchmarks/bench_train_gui.py).

The thread only appends the engine's callbacks to a buffer and wakes the GUI with a
queued signal, at most every `BATCH_INTERVAL_S` for batches (epochs, log lines and the
end wake it at once), so plotting and signal plumbing cost the training loop next to
nothing. Stop is cooperative (a threading.Event the engine checks between batches): the
run ends "stopped" with a usable last checkpoint. Errors end the run as "failed" and come
back as the exception, for a dialog.

The supervising thread watches the child itself, not only its output: when the child dies
(killed, crashed) the thread sees it at once (a data-loading process it started may keep
the pipe open) and records the run's true state ("interrupted" after a signal, "failed"
after a crash exit), then reports the reason.

Training runs at a lower scheduling priority (nice), so a person labelling during training
keeps a quick window: the child process lowers its own; in mode "thread" the training
thread lowers its own and, where the machine has more than one core, keeps off the core
the GUI runs on (torch's worker threads inherit both).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from studio.core.errors import StudioError, TrainingError
from studio.ml.fit_child import memory_in_use

log = logging.getLogger(__name__)

BATCH_INTERVAL_S = 1 / 15  # batches reach the GUI at most 15 times a second
POLL_S = 0.2  # how often the supervising thread checks that the child still lives
TRAIN_NICE = 5
SUMMARY_SPLIT = "val"  # the child evaluates a finished run on it, for the summary panel


@dataclass
class RunEvents:
    """What arrived since the last delivery."""

    batches: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    end: dict | None = None
    error: BaseException | None = None
    memory: int | None = None  # bytes of device memory in use (CUDA) or process RSS


def calm_this_thread(gui_core: int | None = 0) -> None:
    """Lower this thread's priority and keep it off the GUI's core (best effort, Linux)."""
    tid = threading.get_native_id()
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, TRAIN_NICE)
        except OSError as exc:
            log.debug("could not lower the training thread's priority: %s", exc)
    if gui_core is not None and hasattr(os, "sched_getaffinity"):
        cores = os.sched_getaffinity(0)
        others = cores - {gui_core}
        if others and len(cores) > 1:
            try:
                os.sched_setaffinity(tid, others)
            except OSError as exc:
                log.debug("could not move the training thread off the GUI core: %s", exc)


def _error_from(info: dict) -> BaseException:
    """The child's error as an exception of our own (its OS error kept as the cause)."""
    from studio.core import errors

    kind = getattr(errors, str(info.get("type")), None)
    message = str(info.get("message") or "training failed")
    if isinstance(kind, type) and issubclass(kind, errors.StudioError):
        exc: BaseException = kind(message)
    else:
        exc = errors.TrainingError(f"Training failed: {info.get('type')}: {message}")
    if info.get("errno"):
        exc.__cause__ = OSError(int(info["errno"]), os.strerror(int(info["errno"])))
    return exc


def death_message(code: int) -> str:
    """How a training process that ended without reporting its end ended."""
    if code < 0:
        try:
            name = f", {signal.Signals(-code).name}"
        except ValueError:
            name = ""
        return f"The training process ended unexpectedly (killed by signal {-code}{name})"
    return f"The training process ended unexpectedly (exit code {code})"


class _ProcessThread(QThread):
    """Starts `python -m studio.ml.fit_child`, feeds it the job, relays its events."""

    def __init__(self, runner: TrainingRunner, project, config: dict, resume) -> None:
        super().__init__()
        self.runner, self.project = runner, project
        self.job = {"project": str(project.root), "config": config, "resume": resume,
                    "nice": TRAIN_NICE if runner.calm else 0, "report": SUMMARY_SPLIT}
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _send(self, text: str) -> None:
        self.process.stdin.write(text.encode("utf-8"))
        self.process.stdin.flush()

    def request_stop(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                try:
                    self._send("stop\n")
                except (OSError, ValueError):  # it is ending already
                    log.debug("the training process is gone")

    def run(self) -> None:  # the supervising thread
        import studio

        runner = self.runner
        env = dict(os.environ)
        package_root = str(Path(studio.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root,
                                                        env.get("PYTHONPATH")) if p)
        errors_file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        try:
            with self._lock:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "studio.ml.fit_child"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=errors_file, env=env, bufsize=0)
                self._send(json.dumps(self.job) + "\n")
                if runner.stop_event.is_set():
                    self._send("stop\n")
            reported = self._relay(runner)
            code = self.process.wait()
            if not reported:
                errors_file.seek(0)
                self._record_death(runner, code, errors_file.read()[-600:].strip())
        except OSError as exc:
            runner.push_error(TrainingError(f"Cannot start the training process: {exc}"))
        finally:
            errors_file.close()
            if self.process is not None:
                for stream in (self.process.stdin, self.process.stdout):
                    try:
                        stream.close()
                    except OSError:
                        log.debug("closing a pipe of the training process failed")

    def _record_death(self, runner: TrainingRunner, code: int, tail: str) -> None:
        """The child ended without reporting its end: record the run's true state now
        (not at the next opening of the project) and report the reason."""
        from studio.core.errors import StudioError

        message = death_message(code)
        status = "interrupted" if code <= 0 else "failed"
        ids: list[int] = []
        try:
            ids = self.project.end_runs_of_process(
                self.process.pid, status, f"{message}; resume it from its last checkpoint.")
        except StudioError as exc:  # e.g. the project was closed meanwhile
            log.warning("could not record how the training process ended: %s", exc)
        if code == 0 and not ids:
            return  # it ended cleanly after its run was recorded (e.g. stopped in a report)
        runs = ", ".join(f"run {i}" for i in ids)
        text = message + (f"; {runs} {'is' if len(ids) == 1 else 'are'} marked '{status}'"
                          if ids else "") + (f". Its last messages: {tail}" if tail else ".")
        runner.push_error(TrainingError(text), end={
            "run_id": ids[-1] if ids else None, "status": status, "error": text, "best": {}})

    def _lines(self):
        """The child's stdout line by line, until it closes or the child has ended (then
        what it wrote is still read; a process it started may hold the pipe open)."""
        out = self.process.stdout
        if os.name == "nt":  # pragma: no cover - pipes cannot be polled there
            for raw in out:
                yield raw.decode("utf-8", "replace")
            return
        fd, buffer = out.fileno(), b""
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                *lines, buffer = (buffer + chunk).split(b"\n")
                for raw in lines:
                    yield raw.decode("utf-8", "replace")
            elif self.process.poll() is not None:
                break
        if buffer:
            yield buffer.decode("utf-8", "replace")

    def _relay(self, runner: TrainingRunner) -> bool:
        """Pass events on until the child closes stdout or ends; True when it reported
        its end or an error."""
        reported = False
        for line in self._lines():
            try:
                event = json.loads(line)
                kind, data = event["kind"], event["data"]
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    runner.on_log(line.rstrip())
                continue
            if kind == "batch":
                runner.on_batch(data)
            elif kind == "epoch":
                runner.on_epoch(data)
            elif kind == "log":
                runner.on_log(data)
            elif kind == "end":
                reported = True
                runner.on_end(data)
            elif kind == "memory":
                runner.memory = data
            elif kind == "error":
                reported = True
                runner.push_error(_error_from(data))
        return reported

    def kill(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()


class _FitThread(QThread):
    def __init__(self, runner: TrainingRunner, project, config: dict, resume) -> None:
        super().__init__()
        self.runner, self.project, self.config, self.resume = runner, project, config, resume
        self.result = None

    def run(self) -> None:  # the training thread
        from studio.gui.train.backend import fit

        runner = self.runner
        if runner.calm:
            calm_this_thread()
        try:
            self.result = fit(self.project, self.config, callbacks=runner,
                              stop=runner.stop_event, resume=self.resume)
        except BaseException as exc:  # delivered to the GUI thread, never dropped
            runner.push_error(exc)

    def request_stop(self) -> None:
        """The runner's stop event is what `fit` checks: nothing more to do."""

    def kill(self) -> None:
        """A thread cannot be killed; `fit` stops at the next batch."""


class TrainingRunner(QObject):
    """Start, stop and watch one run at a time."""

    eventsArrived = Signal(object)  # RunEvents, on the GUI thread
    runningChanged = Signal(bool)
    _wake = Signal()

    def __init__(self, parent: QObject | None = None, mode: str = "process",
                 calm: bool = True) -> None:
        super().__init__(parent)
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")
        self.mode = mode
        self.calm = calm
        self.memory: int | None = None  # reported by a child process
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._pending = RunEvents()
        self._last_wake = 0.0
        self._thread: _FitThread | None = None
        self._wake.connect(self._deliver)

    # --- GUI thread -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, project, config: dict, resume=None) -> None:
        """Run `fit(project, config, resume=resume)` in a new thread."""
        if self._thread is not None:
            raise RuntimeError("a run is already training")
        self.stop_event.clear()
        self._pending = RunEvents()
        self.memory = None
        kind = _ProcessThread if self.mode == "process" else _FitThread
        self._thread = kind(self, project, config, resume)
        self._thread.finished.connect(self._on_finished)
        self._thread.start()
        self.runningChanged.emit(True)

    @property
    def thread(self) -> QThread | None:
        return self._thread

    def stop(self) -> None:
        """Ask the run to stop after the current batch."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.request_stop()

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the run ends (closing, tests); then deliver what it left. A child
        process that does not stop in time is killed (its last checkpoint stays)."""
        thread = self._thread
        if thread is None:
            return True
        done = thread.wait(msecs)
        if not done:
            thread.kill()
            done = thread.wait(10000)
        if done:
            self._on_finished()
        return done

    def _deliver(self) -> None:
        with self._lock:
            events, self._pending = self._pending, RunEvents()
        if events.batches or events.epochs or events.logs or events.end or events.error:
            events.memory = self.memory if self.mode == "process" else memory_in_use()
            self.eventsArrived.emit(events)

    def _on_finished(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        thread.wait()
        self._deliver()
        thread.deleteLater()
        self.runningChanged.emit(False)

    # --- the training thread: the engine's callbacks ------------------------------------
    def _wake_gui(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_wake >= BATCH_INTERVAL_S:
            self._last_wake = now
            self._wake.emit()

    def on_batch(self, info: dict) -> None:
        with self._lock:
            self._pending.batches.append(info)
        self._wake_gui(False)

    def on_epoch(self, info: dict) -> None:
        with self._lock:
            self._pending.epochs.append(info)
        self._wake_gui(True)

    def on_log(self, text: str) -> None:
        with self._lock:
            self._pending.logs.append(text)
        self._wake_gui(True)

    def on_end(self, summary: dict) -> None:
        with self._lock:
            self._pending.end = summary
        self._wake_gui(True)

    def push_error(self, exc: BaseException, end: dict | None = None) -> None:
        """The run failed with `exc` (with `end`: the summary of how it ended, delivered
        together with the error)."""
        log.warning("Training run failed: %s", exc, exc_info=not isinstance(exc, StudioError))
        with self._lock:
            self._pending.error = exc
            if end is not None:
                self._pending.end = end
        self._wake_gui(True)
