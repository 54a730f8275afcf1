"""The safety net: no error ends in a dead window or a lost traceback.

`install_safety_net()` routes every error nobody handled — raised in a Qt slot on the GUI
thread (sys.excepthook), in a Python thread (threading.excepthook), or in a background
task of the worker mechanism that has no error handler (studio.gui.workers) — to one
place, which

1. writes the error with its traceback to the log file (studio.core.logs: one file per
   day in the user log folder), and
2. shows a dialog with the message, what to do next and the log's path.

The project needs no rescue: every edit is its own committed transaction, so the dialog
only says so. A StudioError (a problem with input, already worded for a person) gets the
usual warning box instead of the "bug" dialog; it is logged too. While a dialog is open,
further errors are logged but not shown (a failing paint would otherwise stack dialogs).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from studio.core.errors import StudioError
from studio.core.logs import close_log_file, configure_logging, current_log_file, flush_logs
from studio.gui import workers
from studio.gui.errors import show_error

log = logging.getLogger(__name__)

WHAT_TO_DO = ("Your project is safe: every change was saved as you made it. You can keep "
              "working; if something looks wrong, close and reopen the project. If this "
              "happens again, use Help > Report a problem and send the file it makes.")


def crash_dialog(exc: BaseException, details: str, log_file: Path | None,
                 parent: QWidget | None = None) -> QMessageBox:
    """The dialog for an unexpected error (not shown yet)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Vision Studio: unexpected error",
                      f"Something went wrong: {type(exc).__name__}: {exc}",
                      QMessageBox.StandardButton.Ok, parent)
    where = (f"\n\nThe details are in the log:\n{log_file}" if log_file is not None
             else "\n\nThe log folder could not be written; the details are below.")
    box.setInformativeText(WHAT_TO_DO + where)
    box.setDetailedText(details)
    box.setObjectName("crashDialog")
    if log_file is not None:
        folder = box.addButton("Open log folder", QMessageBox.ButtonRole.ActionRole)
        folder.clicked.connect(lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(log_file.parent))))
    return box


class SafetyNet(QObject):
    """Receives unhandled errors from any thread and reports them on the GUI thread."""

    _arrived = Signal(object, str)  # exception, traceback text (queued to the GUI thread)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file: Path | None = None
        self.showing = False
        self.reported: list[BaseException] = []
        self._previous = (sys.excepthook, threading.excepthook)
        self._arrived.connect(self._report_on_gui_thread)

    # --- hooks (any thread) ---------------------------------------------------------------
    def excepthook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous[0](exc_type, exc, tb)
            return
        self.report(exc, "".join(traceback.format_exception(exc_type, exc, tb)))

    def thread_excepthook(self, args) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                  args.exc_traceback))
        self.report(args.exc_value, f"In thread {name}:\n{text}")

    def worker_error(self, exc: BaseException) -> None:
        self.report(exc, getattr(exc, "__traceback_text__", None) or "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def report(self, exc: BaseException, details: str) -> None:
        """Log now (from whatever thread), show on the GUI thread."""
        if isinstance(exc, StudioError):
            log.warning("Unhandled %s: %s\n%s", type(exc).__name__, exc, details)
        else:
            log.error("Unhandled error: %s: %s\n%s", type(exc).__name__, exc, details)
        flush_logs()
        app = QApplication.instance()
        if app is None:
            return
        if threading.current_thread() is threading.main_thread():
            self._report_on_gui_thread(exc, details)
        else:
            self._arrived.emit(exc, details)

    # --- GUI thread ------------------------------------------------------------------------
    def _report_on_gui_thread(self, exc: BaseException, details: str) -> None:
        self.reported.append(exc)
        if self.showing:  # logged already; one dialog at a time
            return
        self.showing = True
        try:
            parent = QApplication.activeWindow()
            if isinstance(exc, StudioError):
                show_error(parent, exc)
            else:
                crash_dialog(exc, details, self.log_file, parent).exec()
        finally:
            self.showing = False

    def uninstall(self) -> None:
        """Put the previous hooks back (tests; a second window keeps the first net)."""
        if sys.excepthook == self.excepthook:
            sys.excepthook = self._previous[0]
        if threading.excepthook == self.thread_excepthook:
            threading.excepthook = self._previous[1]
        if workers.unhandled_error_handler() == self.worker_error:
            workers.set_unhandled_error_handler(None)


_NET: SafetyNet | None = None


def install_safety_net() -> SafetyNet:
    """Start logging to today's file and catch every unhandled error (idempotent; call
    once a QApplication exists)."""
    global _NET
    if _NET is not None:
        _NET.uninstall()
    net = SafetyNet(QApplication.instance())
    net.log_file = configure_logging()
    sys.excepthook = net.excepthook
    threading.excepthook = net.thread_excepthook
    workers.set_unhandled_error_handler(net.worker_error)
    _NET = net
    log.info("Vision Studio started; log file %s", net.log_file or "(none)")
    return net


def uninstall_safety_net() -> None:
    """Take the hooks down and stop writing the log file (tests, the application's end)."""
    global _NET
    if _NET is not None:
        _NET.uninstall()
        _NET = None
    close_log_file()


def safety_net() -> SafetyNet | None:
    """The installed net, if any."""
    return _NET


def log_file() -> Path:
    """The file errors are written to."""
    return current_log_file()
