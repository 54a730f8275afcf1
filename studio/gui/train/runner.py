"""One training run off the GUI thread: the engine's `fit` in a QThread, events back as
queued signals.

The thread only appends the engine's callbacks to a buffer and wakes the GUI with a
queued signal, at most every `BATCH_INTERVAL_S` for batches (epochs, log lines and the
end wake it at once), so plotting and signal plumbing cost the training loop next to
nothing. Stop is cooperative (a threading.Event the engine checks between batches): the
run ends "stopped" with a usable last checkpoint. Errors end the run as "failed" and come
back as the exception, for a dialog.

The thread lowers its own scheduling priority (Linux: per-thread nice) and, where the
machine has more than one core, keeps off the core the GUI runs on, so a person
labelling during training keeps a quick window; torch's worker threads inherit both.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger(__name__)

BATCH_INTERVAL_S = 1 / 15  # batches reach the GUI at most 15 times a second
TRAIN_NICE = 5


@dataclass
class RunEvents:
    """What arrived since the last delivery."""

    batches: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    end: dict | None = None
    error: BaseException | None = None
    memory: int | None = None  # bytes of device memory in use (CUDA) or process RSS


def _memory_in_use(device: str) -> int | None:
    try:
        import torch

        if torch.cuda.is_available() and device != "cpu":
            return int(torch.cuda.memory_allocated())
    except (ImportError, RuntimeError):
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


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


class TrainingRunner(QObject):
    """Start, stop and watch one run at a time."""

    eventsArrived = Signal(object)  # RunEvents, on the GUI thread
    runningChanged = Signal(bool)
    _wake = Signal()

    def __init__(self, parent: QObject | None = None, calm: bool = True) -> None:
        super().__init__(parent)
        self.calm = calm
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._pending = RunEvents()
        self._last_wake = 0.0
        self._thread: _FitThread | None = None
        self.device = "auto"
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
        self.device = str(config.get("device", "auto"))
        self._thread = _FitThread(self, project, config, resume)
        self._thread.finished.connect(self._on_finished)
        self._thread.start()
        self.runningChanged.emit(True)

    def stop(self) -> None:
        """Ask the run to stop after the current batch."""
        self.stop_event.set()

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the thread ends (closing, tests); then deliver what it left."""
        thread = self._thread
        if thread is None:
            return True
        done = thread.wait(msecs)
        if done:
            self._on_finished()
        return done

    def _deliver(self) -> None:
        with self._lock:
            events, self._pending = self._pending, RunEvents()
        if events.batches or events.epochs or events.logs or events.end or events.error:
            events.memory = _memory_in_use(self.device)
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

    def push_error(self, exc: BaseException) -> None:
        with self._lock:
            self._pending.error = exc
        self._wake_gui(True)
