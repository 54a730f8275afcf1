"""The application's log: one file per day in the user's log folder, rotated.

Every module logs through `logging.getLogger(__name__)`; `configure_logging` (called once
by the GUI's entry point) sends the records to the console and to `studio.log` in the
log folder, which rolls over at midnight and keeps `KEEP_DAYS` older files
(`studio.log.2026-12-05`, ...). The folder is platformdirs' user log folder, or the one
named by the environment variable VISION_STUDIO_LOG_DIR (tests, portable installs).

No Qt and no torch here: the CLI and the training child process may use it too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
import zipfile
from pathlib import Path

from studio.core.errors import ActionError
from studio.core.fileio import atomic_path, disk_full_error, is_disk_full

LOG_DIR_ENV = "VISION_STUDIO_LOG_DIR"
LOG_NAME = "studio.log"
KEEP_DAYS = 14
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
_HANDLER_MARK = "_vision_studio_file"


def log_dir() -> Path:
    """Where the log files live (not created here)."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_log_dir

    return Path(user_log_dir("vision-studio", appauthor=False))


def current_log_file() -> Path:
    """Today's log file (the one `configure_logging` writes to)."""
    handler = _file_handler()
    return Path(handler.baseFilename) if handler is not None else log_dir() / LOG_NAME


def log_files() -> list[Path]:
    """Today's log and the kept older days, oldest first."""
    folder = current_log_file().parent
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(LOG_NAME + "*") if p.is_file())


def _file_handler() -> logging.handlers.TimedRotatingFileHandler | None:
    for handler in logging.getLogger().handlers:
        if getattr(handler, _HANDLER_MARK, False):
            return handler  # type: ignore[return-value]
    return None


def configure_logging(level: int = logging.INFO, console: bool = True,
                      keep_days: int = KEEP_DAYS) -> Path | None:
    """Log to the console and to today's file; returns the file, or None when the log
    folder cannot be written (then a warning says so and only the console logs).

    Calling it again (a second window, a test) replaces the file handler, so records are
    never written twice and a changed VISION_STUDIO_LOG_DIR takes effect."""
    root = logging.getLogger()
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    formatter = logging.Formatter(FORMAT)
    has_console = any(type(h) is logging.StreamHandler for h in root.handlers)
    if console and not has_console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.setLevel(level)
        root.addHandler(stream)
    old = _file_handler()
    if old is not None:
        root.removeHandler(old)
        old.close()
    folder = log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.TimedRotatingFileHandler(
            folder / LOG_NAME, when="midnight", backupCount=max(1, keep_days),
            encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "Cannot write the log folder %s (%s): logging to the console only. Set %s to a "
            "writable folder to keep a log.", folder, exc.strerror or exc, LOG_DIR_ENV)
        return None
    handler.setFormatter(formatter)
    handler.setLevel(logging.DEBUG)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    return Path(handler.baseFilename)


def flush_logs() -> None:
    """Write buffered records to disk (before a dialog points at the file)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def close_log_file() -> None:
    """Stop writing the log file (tests; the window's end)."""
    handler = _file_handler()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


REPORT_README = """Vision Studio problem report
Made {when}. It holds the application's log files (what it did and the errors with their
tracebacks) and system.txt (versions of Vision Studio, Python, Qt, torch, CUDA, the GPU
and the operating system). It holds no images, annotations or project files.
"""


def write_problem_report(dest: str | os.PathLike, system_text: str,
                         logs: list[Path] | None = None) -> Path:
    """Zip the log files and `system_text` into `dest` (written whole or not at all);
    returns the path. Never includes images or annotations: only the files named here."""
    flush_logs()
    dest = Path(dest).expanduser()
    if dest.suffix.lower() != ".zip":
        dest = dest.with_name(dest.name + ".zip")
    logs = log_files() if logs is None else logs
    try:
        with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("README.txt", REPORT_README.format(
                when=time.strftime("%Y-%m-%d %H:%M:%S %z")))
            zf.writestr("system.txt", system_text + "\n")
            for path in logs:
                try:
                    zf.write(path, f"logs/{path.name}")
                except FileNotFoundError:  # rolled over while zipping
                    continue
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(dest.parent, "write the problem report into") from exc
        raise ActionError(f"Cannot write the problem report to {dest} "
                          f"({exc.strerror or exc}); choose another folder.") from exc
    return dest
