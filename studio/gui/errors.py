"""Show errors to the person: our own errors as a plain message, others with details.

A `StudioError` message already says what was wrong and what to do, so it is shown as
is. Anything else is a bug: it gets an "unexpected error" box whose details hold the
traceback. Errors nobody handled reach studio.gui.safety, which logs them and shows its own
dialog.
"""

from __future__ import annotations

import logging
import traceback

from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QWidget

from studio.core.errors import StudioError

log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """The one-line message shown for an error."""
    if isinstance(exc, StudioError):
        return str(exc) or type(exc).__name__
    return f"An unexpected error happened: {type(exc).__name__}: {exc}"


def _details(exc: BaseException) -> str:
    text = getattr(exc, "__traceback_text__", None)
    if text:
        return text
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _status_bar_of(parent: QWidget | None):
    window = parent.window() if parent is not None else None
    if window is None:
        window = QApplication.activeWindow()
    if isinstance(window, QMainWindow):
        return window.statusBar()
    return None


def show_error(parent: QWidget | None, exc: BaseException, title: str | None = None) -> None:
    """Show `exc` in a message box (and the main window's status bar)."""
    text = error_text(exc)
    bar = _status_bar_of(parent)
    if bar is not None:
        bar.showMessage(text.splitlines()[0], 10000)
    if isinstance(exc, StudioError):
        log.warning("Shown to the user: %s", text)
        box = QMessageBox(QMessageBox.Icon.Warning, title or "Vision Studio", text,
                          QMessageBox.StandardButton.Ok, parent)
    else:
        log.error("Unexpected error:\n%s", _details(exc))
        box = QMessageBox(QMessageBox.Icon.Critical, title or "Unexpected error", text,
                          QMessageBox.StandardButton.Ok, parent)
        box.setInformativeText("This is a bug. The details below help to fix it.")
        box.setDetailedText(_details(exc))
    box.exec()
