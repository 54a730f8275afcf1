"""`fit` in a child process, for a window that must stay responsive while it trains.

    python -m studio.ml.fit_child   (stdin: one JSON job line, then commands)

The job is {"project": folder, "config": {...}, "resume": run id | path | null,
"nice": n, "report": split | null}; with n > 0 the child lowers its scheduling priority by
n (a window beside it stays quick); with "report", a finished run is evaluated on that
split and the report kept in the run's folder (studio.ml.evaluation.stored_report). The
child opens the project beside its parent (which holds the project's lock and waits for
the child) and calls the one training loop, `studio.ml.fit.fit`. Each callback becomes
one JSON line {"kind": "batch" | "epoch" | "log" | "end" | "memory" | "error", "data": ...}
on stdout; a line "stop" on stdin stops the run after the current batch. A parent that
died (its end of stdin closed without "stop", or its end of stdout gone) stops the run
too, and the run is recorded "interrupted" (resumable), never failed by the broken pipe:
events that cannot be delivered are dropped. Anything else the libraries print goes to
stderr, so stdout carries only events.
"""

from __future__ import annotations

import errno as errno_mod
import json
import logging
import os
import sys
import threading
import time

MEMORY_EVERY_S = 1.0
log = logging.getLogger(__name__)  # records reach stderr, which the parent keeps


PARENT_GONE = ("The window that started it closed while it trained; resume it from its "
               "last checkpoint.")


class EventWriter:
    """Callbacks for `fit` that write JSON lines to a file object. When the reader is gone
    (a broken pipe), `on_broken` is called once and later events are dropped."""

    def __init__(self, out, on_broken=None) -> None:
        self.out = out
        self.on_broken = on_broken
        self.lock = threading.Lock()
        self.last_memory = 0.0
        self.broken = False

    def emit(self, kind: str, data) -> None:
        line = json.dumps({"kind": kind, "data": data}, default=str)
        with self.lock:
            if self.broken:
                return
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (OSError, ValueError):  # the parent is gone: nobody reads events
                self.broken = True
                try:
                    self.out.close()
                except (OSError, ValueError):
                    pass  # closing flushes the undeliverable line again
        if self.broken and self.on_broken is not None:
            self.on_broken()

    def on_batch(self, info: dict) -> None:
        self.emit("batch", info)
        now = time.monotonic()
        if now - self.last_memory >= MEMORY_EVERY_S:
            self.last_memory = now
            self.emit("memory", memory_in_use())

    def on_epoch(self, info: dict) -> None:
        self.emit("epoch", info)

    def on_log(self, text: str) -> None:
        self.emit("log", text)

    def on_end(self, summary: dict) -> None:
        self.emit("end", summary)


def memory_in_use() -> int | None:
    """Bytes of CUDA memory allocated, else this process's resident memory."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.memory_allocated())
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def describe_error(exc: BaseException) -> dict:
    """Type name, message, (for an OS error anywhere in the chain) its errno and (for a
    ConfigError) the path of the field it is about."""
    from studio.core.errors import ConfigError

    code = None
    seen, err = set(), exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno_mod.ENOSPC, errno_mod.ENOENT):
            code = err.errno
            break
        err = err.__cause__ or err.__context__
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
            "errno": code, "path": exc.path if isinstance(exc, ConfigError) else None}


def report(project, run_id: int, split: str, device: str, writer: EventWriter,
           stop: threading.Event) -> None:
    """Evaluate the finished run on `split` and keep the report in its folder, so the window
    shows it without running the model in its own process. Optional: a split without
    labels, or any failure, is a log line; a stop ends the process at once (the run is
    saved; the report is written atomically or not at all)."""
    from studio.core.errors import StudioError
    from studio.ml.evaluation import evaluate_and_store

    done = threading.Event()

    def end_on_stop() -> None:
        while not done.is_set():
            if stop.wait(0.2) and not done.is_set():
                os._exit(0)

    watcher = threading.Thread(target=end_on_stop, daemon=True)
    watcher.start()
    writer.on_log(f"Evaluating the run on the '{split}' split for its summary...")
    try:
        report = evaluate_and_store(project, run_id, split, "best", device)
        for note in report.get("notes", []):  # kept in the stored report too
            writer.on_log(f"Note: {note}")
    except StudioError as exc:
        writer.on_log(f"No '{split}' report: {exc}")
    except Exception as exc:  # noqa: BLE001 - optional: the finished run must not fail
        writer.on_log(f"No '{split}' report ({type(exc).__name__}: {exc}); the window "
                      "evaluates the run itself.")
    finally:
        done.set()
        watcher.join()


def command_stream():
    """The parent's commands as a file of its own; `sys.stdin` becomes the null device.

    The watcher thread blocks in a read of the commands, holding that file's lock. A
    DataLoader worker forked meanwhile closes `sys.stdin` as it starts (multiprocessing
    does), which waited forever for the lock no thread of the worker would release: the
    run hung before its first batch with num_workers >= 1. The worker now closes the null
    device, whose lock is free, and never touches the commands."""
    commands = os.fdopen(os.dup(sys.stdin.fileno()), "r", encoding="utf-8")
    null = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    os.dup2(null.fileno(), sys.stdin.fileno())  # fd 0 too: nothing else reads the commands
    sys.stdin = null
    return commands


def main() -> int:
    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # stray prints must not break the event stream
    commands = command_stream()
    job = json.loads(commands.readline())
    if job.get("nice") and hasattr(os, "nice"):
        try:
            os.nice(int(job["nice"]))
        except OSError as exc:  # not fatal: the run only keeps its priority
            log.warning("could not lower the training priority: %s", exc)
    stop, parent_gone = threading.Event(), threading.Event()

    def lose_parent() -> None:
        parent_gone.set()
        stop.set()

    def watch_stdin() -> None:
        for line in commands:
            if line.strip() == "stop":
                stop.set()
        if not stop.is_set():
            lose_parent()  # stdin closed without "stop": the parent is gone

    threading.Thread(target=watch_stdin, daemon=True).start()
    writer = EventWriter(events_out, on_broken=lose_parent)
    from studio.core.project import Project
    from studio.ml.config import HardwareConfig
    from studio.ml.fit import fit

    try:
        project = Project.open_for_child(job["project"])
        try:
            result = fit(project, job["config"], callbacks=writer, stop=stop,
                         resume=job.get("resume"))
            if parent_gone.is_set() and result.status == "stopped":
                project.update_run(result.run_id, status="interrupted", error=PARENT_GONE)
            elif job.get("report") and result.status == "finished" and not stop.is_set():
                report(project, result.run_id, str(job["report"]),
                       str(job["config"].get("device", HardwareConfig.device)), writer, stop)
        finally:
            project.close()
    except BaseException as exc:  # reported to the parent, which shows it
        writer.emit("error", describe_error(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
