"""A small worker pool: run a function off the GUI thread, get its result or error back.

Results, errors and progress come back as queued signals on the GUI thread; errors are
never swallowed (a task without an error handler logs the traceback). Cancellation is
cooperative: a function run with `with_token=True` receives a `CancelToken` first and
checks it between steps. Tasks submitted with the same `key` supersede each other: the
older one is cancelled and whatever it returns is dropped, so only the newest request
ever reaches the GUI (used for thumbnails, prefetch, canvas tiles, the canvas assists and
long imports).

This is the one way the GUI runs work off its thread. Every pool belongs to a window or
widget, which calls `shutdown()` when it closes; `live_pools()` lists the pools not shut
down (the test suite fails a test that leaves one running).

Why not superqt's thread workers (`superqt.utils.create_worker` / `thread_worker`, read in
superqt 0.9, a dependency already): they run every worker on
`QThreadPool.globalInstance()`, so a pool cannot have its own thread count (the canvas
writes strokes through a one-thread pool to keep them in order) and cannot be shut down
alone (`WorkerBase.await_workers` asks every worker of the application to quit and waits
for the global pool). A plain function cannot be cancelled (`quit()` sets a flag only
generator workers read between yields) and has no progress channel; there is no
"newest request of this key wins"; an error without an `errored` handler is re-raised
inside a GUI-thread slot with no traceback text kept. And each worker's `run` enters
`warnings.catch_warnings()` and replaces `warnings.showwarning`, process-wide state that
Python documents as not thread-safe, from worker threads running at the same time. Those
gaps are what this module fills over a plain QThreadPool.
"""

from __future__ import annotations

import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

_POOLS: weakref.WeakSet = weakref.WeakSet()
_UNHANDLED: list[Callable[[BaseException], None]] = []  # at most one: the safety net


def set_unhandled_error_handler(handler: Callable[[BaseException], None] | None) -> None:
    """Who hears of a current task that failed without an error handler (on the GUI
    thread; studio.gui.safety logs it and shows a dialog). None: only the log hears."""
    _UNHANDLED[:] = [handler] if handler is not None else []


def unhandled_error_handler() -> Callable[[BaseException], None] | None:
    return _UNHANDLED[0] if _UNHANDLED else None


def live_pools() -> list[WorkerPool]:
    """Pools that exist and were not shut down (tests check none is left running)."""
    return [p for p in list(_POOLS) if not p.is_shut_down]


class Cancelled(Exception):
    """Raised inside a task (by `CancelToken.check`) to stop early; not an error."""


class CancelToken:
    """Shared between the GUI and one task: cancel() here, check() there."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._progress: Callable[[Any], None] | None = None

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `Cancelled` when cancellation was requested."""
        if self._event.is_set():
            raise Cancelled()

    def progress(self, value: Any) -> None:
        """Report progress (delivered on the GUI thread as on_progress(value))."""
        if self._progress is not None:
            self._progress(value)


class Task(QRunnable):
    """One submitted call. Holds its token; `cancel()` asks it to stop."""

    def __init__(self, pool: WorkerPool, fn: Callable, args: tuple, kwargs: dict,
                 with_token: bool, callbacks: dict[str, Callable | None], key: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.token = CancelToken()
        self.token._progress = lambda value: self._emit("progress", value)
        self.key = key
        self.callbacks = callbacks
        self.done = False
        self._pool = pool
        self._fn, self._args, self._kwargs, self._with_token = fn, args, kwargs, with_token

    def cancel(self) -> None:
        self.token.cancel()

    def _emit(self, what: str, payload: Any) -> None:
        try:
            self._pool._relay.emit(self, what, payload)
        except RuntimeError:  # the pool was destroyed (window closed): nobody is listening
            self.token.cancel()
            if what == "error":  # nobody can be told any more; the log keeps it
                log.error("A background task failed after its window closed:\n%s",
                          getattr(payload, "__traceback_text__", repr(payload)))
            else:
                log.debug("dropped %s of a task whose pool is gone", what)
            if what == "progress":
                raise Cancelled() from None

    def run(self) -> None:  # worker thread
        if self.token.cancelled:
            self._emit("cancelled", None)
            return
        try:
            if self._with_token:
                value = self._fn(self.token, *self._args, **self._kwargs)
            else:
                value = self._fn(*self._args, **self._kwargs)
        except Cancelled:
            self._emit("cancelled", None)
        except BaseException as exc:  # delivered to the GUI thread, never dropped here
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._emit("error", exc)
        else:
            self._emit("result", value)


class WorkerPool(QObject):
    """Runs tasks on its own QThreadPool and delivers outcomes on the GUI thread."""

    _relay = Signal(object, str, object)  # task, what, payload (queued across threads)
    busyChanged = Signal(bool)
    failed = Signal(object)  # the exception of every current task that failed (any handler)

    def __init__(self, max_threads: int = 2, parent: QObject | None = None,
                 name: str = "workers") -> None:
        super().__init__(parent)
        self.name = name
        self.is_shut_down = False
        self._threads = QThreadPool(self)
        self._threads.setMaxThreadCount(max(1, max_threads))
        self._tasks: set[Task] = set()
        self._latest: dict[Any, Task] = {}
        self._relay.connect(self._on_relay)
        _POOLS.add(self)

    def submit(self, fn: Callable, *args, on_result: Callable | None = None,
               on_error: Callable | None = None, on_progress: Callable | None = None,
               on_finished: Callable | None = None, key: Any = None, with_token: bool = False,
               **kwargs) -> Task:
        """Run fn(*args, **kwargs) (or fn(token, *args, ...) with_token) on a worker thread.

        on_result(value), on_error(exc), on_progress(value) and on_finished() run on the
        GUI thread. With a `key`, an earlier task of the same key is cancelled and dropped.
        """
        callbacks = dict(result=on_result, error=on_error, progress=on_progress,
                         finished=on_finished)
        task = Task(self, fn, args, kwargs, with_token, callbacks, key)
        if self.is_shut_down:  # the owner closed: nothing starts any more
            task.cancel()
            task.done = True
            return task
        if key is not None:
            older = self._latest.get(key)
            if older is not None:
                older.cancel()
            self._latest[key] = task
        was_idle = not self._tasks
        self._tasks.add(task)
        self._threads.start(task)
        if was_idle:
            self.busyChanged.emit(True)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    @property
    def running(self) -> int:
        """Tasks running on a thread right now."""
        return self._threads.activeThreadCount()

    def is_current(self, task: Task) -> bool:
        return task.key is None or self._latest.get(task.key) is task

    def clear_pending(self) -> None:
        """Cancel everything not started yet and ask running tasks to stop."""
        for task in list(self._tasks):
            task.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until all threads are idle (tests, shutdown); then deliver queued outcomes."""
        from PySide6.QtCore import QCoreApplication

        ok = self._threads.waitForDone(msecs)
        QCoreApplication.processEvents()
        return ok

    def shutdown(self, msecs: int = 5000) -> bool:
        """Cancel everything, wait for running tasks, start nothing more (owner closes)."""
        self.is_shut_down = True
        self.clear_pending()
        self._threads.clear()  # queued tasks never start
        ok = self._threads.waitForDone(msecs)
        self._tasks.clear()
        self._latest.clear()
        return ok

    # --- GUI thread ---------------------------------------------------------------------
    def _on_relay(self, task: Task, what: str, payload: object) -> None:
        if what == "progress":
            cb = task.callbacks.get("progress")
            if cb is not None and not task.token.cancelled:
                cb(payload)
            return
        task.done = True
        self._tasks.discard(task)
        current = self.is_current(task)
        if task.key is not None and current:
            self._latest.pop(task.key, None)
        try:
            if what == "result" and current and not task.token.cancelled:
                cb = task.callbacks.get("result")
                if cb is not None:
                    cb(payload)
            elif what == "error":
                self._deliver_error(task, payload, current)
                if current:
                    self.failed.emit(payload)
            if current:
                cb = task.callbacks.get("finished")
                if cb is not None:
                    cb()
        finally:
            if not self._tasks:
                self.busyChanged.emit(False)

    @staticmethod
    def _deliver_error(task: Task, exc: BaseException, current: bool) -> None:
        cb = task.callbacks.get("error")
        details = getattr(exc, "__traceback_text__", repr(exc))
        if cb is not None and current:
            cb(exc)
        elif current and _UNHANDLED:
            _UNHANDLED[0](exc)  # logs the traceback and tells the person
        elif current:
            log.error("Background task failed without an error handler:\n%s", details)
        else:
            log.warning("A superseded background task failed:\n%s", details)


def run_with_progress(parent, pool: WorkerPool, title: str, fn: Callable, *args,
                      on_result: Callable | None = None, on_error: Callable | None = None,
                      cancellable: bool = False) -> Task:
    """Run fn in `pool` behind a window-modal progress dialog (shown after 0.4 s).

    With `cancellable`, fn gets the CancelToken first and the dialog has a Cancel button;
    fn may report (done, total) through token.progress. on_error defaults to a message box.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QProgressDialog

    from studio.gui.errors import show_error

    progress = QProgressDialog(title, "Cancel" if cancellable else None, 0, 0, parent)
    progress.setWindowModality(Qt.WindowModality.WindowModal)
    progress.setMinimumDuration(400)
    state = {"open": True}

    def finish() -> None:  # after a result or error, and again on_finished: close once
        if state["open"]:
            state["open"] = False
            progress.close()
            progress.deleteLater()

    def done(value) -> None:
        finish()
        if on_result is not None:
            on_result(value)

    def failed(exc: BaseException) -> None:
        finish()
        (on_error or (lambda e: show_error(parent, e)))(exc)

    def step(value) -> None:
        if not state["open"]:
            return
        n, total = value
        progress.setMaximum(total)
        progress.setValue(n)

    task = pool.submit(fn, *args, on_result=done, on_error=failed, on_progress=step,
                       on_finished=finish, with_token=cancellable)
    progress.canceled.connect(task.cancel)
    return task
