"""The Help menu: keyboard shortcuts (F1), About with the versions and the GPU found,
"Report a problem" (the logs and system information zipped into a file the person
chooses) and the log folder.

`install_help_menu(window)` completes the window's Help menu (or makes one): it keeps a
shortcuts action the window already has, takes over its About action, and adds the rest.
Reading the system information may initialise CUDA (a second or more), so it runs in the
window's worker pool when the window has one, once per session.
"""

from __future__ import annotations

import html
import logging
import time
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from studio.core.logs import current_log_file, write_problem_report
from studio.gui.dialogs import CheatSheetDialog
from studio.gui.errors import show_error
from studio.gui.icons import app_icon
from studio.gui.workers import run_with_progress
from studio.ml.sysinfo import format_system_info, system_info

log = logging.getLogger(__name__)

ABOUT_KEYS = ("Vision Studio", "Qt", "torch", "CUDA (torch build)", "GPU", "Python",
              "Operating system")


@lru_cache(maxsize=1)
def cached_system_info() -> tuple[tuple[str, str], ...]:
    """`system_info()` once per session (versions and GPUs do not change meanwhile)."""
    return tuple(system_info().items())


def about_html(info: dict[str, str]) -> str:
    short = {**info, "Python": info.get("Python", "?").split(" (")[0]}  # no install path
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td>"
                   f"<td>{html.escape(short.get(k, '?'))}</td></tr>" for k in ABOUT_KEYS)
    return ("<h3>Vision Studio</h3><p>Label images, train a model by clicking, inspect "
            f"and clean segmentations.</p><table>{rows}</table>")


def about_box(info: dict[str, str], parent: QWidget | None = None) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle("About Vision Studio")
    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setText(about_html(info))
    box.setObjectName("aboutBox")
    return box


def _with_system_info(window: QMainWindow, title: str, then) -> None:
    """Call then(info) on the GUI thread, reading the information in a worker first."""
    if cached_system_info.cache_info().currsize:
        then(dict(cached_system_info()))
        return
    pool = getattr(window, "workers", None)
    if pool is None:  # a window without a pool: read it here (tests, bare windows)
        then(dict(cached_system_info()))
        return
    run_with_progress(window, pool, title, cached_system_info,
                      on_result=lambda info: then(dict(info)))


def show_about(window: QMainWindow) -> None:
    _with_system_info(window, "Reading versions...",
                      lambda info: about_box(info, window).exec())


def default_report_name() -> str:
    return f"vision-studio-report-{time.strftime('%Y%m%d-%H%M')}.zip"


def report_problem(window: QMainWindow) -> None:
    """Ask where to save, then zip the logs and system information there (in a worker)."""
    path, _ = QFileDialog.getSaveFileName(
        window, "Save a problem report", str(Path.home() / default_report_name()),
        "Zip archives (*.zip)")
    if not path:
        return

    def write(info: dict[str, str]) -> None:
        text = format_system_info(info)
        pool = getattr(window, "workers", None)
        if pool is None:
            try:
                saved(write_problem_report(path, text))
            except Exception as exc:  # shown like a worker's error would be
                show_error(window, exc)
            return
        run_with_progress(window, pool, "Writing the problem report...",
                          write_problem_report, path, text, on_result=saved)

    def saved(dest: Path) -> None:
        log.info("Problem report written to %s", dest)
        box = QMessageBox(QMessageBox.Icon.Information, "Problem report saved",
                          f"The report is in {dest}.", QMessageBox.StandardButton.Ok, window)
        box.setInformativeText("Send this file with a description of what you did. It "
                               "holds the logs and the versions; no images or annotations.")
        box.setObjectName("reportSavedBox")
        box.exec()

    _with_system_info(window, "Reading versions...", write)


def open_log_folder() -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(current_log_file().parent)))


def window_shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(keys, what, menu) for every action of the window that has a shortcut."""
    rows = []
    for act in window.findChildren(QAction):
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                         for s in act.shortcuts())
        if keys and act.text():
            rows.append((keys, act.text().replace("&", "").rstrip("."), "Window"))
    return sorted(set(rows))


def user_guide() -> Path | None:
    """The guide's index (docs/README.md beside the package in a source tree or a
    packaged build), or None where it was not installed (a wheel carries no docs)."""
    import studio

    for root in (Path(studio.__file__).resolve().parents[1], Path(studio.__file__).parent):
        index = root / "docs" / "README.md"
        if index.is_file():
            return index
    return None


def open_user_guide(window: QWidget) -> bool:
    """Open the guide in the system's viewer for Markdown (or say where to find it)."""
    index = user_guide()
    if index is None:
        QMessageBox.information(
            window, "User guide", "The user guide is not installed with this copy. It is the "
            "docs/ folder of the Vision Studio source (docs/README.md), one page per "
            "workflow.")
        return False
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(index))):
        QMessageBox.information(window, "User guide", f"Open {index} in a text or Markdown "
                                "viewer: no program is set to open it on this system.")
        return False
    return True


def _help_menu(window: QMainWindow) -> QMenu:
    for act in window.menuBar().actions():
        if act.menu() is not None and act.text().replace("&", "") == "Help":
            return act.menu()
    return window.menuBar().addMenu("&Help")


def install_help_menu(window: QMainWindow) -> QMenu:
    """Complete the window's Help menu; call once, after the window connected its own
    actions (its About action is taken over)."""
    menu = _help_menu(window)
    acts = menu.actions()
    if not any(QKeySequence("F1") in a.shortcuts() for a in acts):
        shortcuts = QAction("&Keyboard shortcuts", window)
        shortcuts.setShortcut(QKeySequence("F1"))
        shortcuts.triggered.connect(
            lambda: CheatSheetDialog(window_shortcut_rows(window), window).show())
        if acts:
            menu.insertAction(acts[0], shortcuts)
        else:
            menu.addAction(shortcuts)
        window.addAction(shortcuts)  # the key works while the menu bar is hidden too
    guide = QAction("&User guide", window)
    guide.setObjectName("userGuideAction")
    guide.setStatusTip("Open the user guide: one page per workflow, with pictures")
    guide.triggered.connect(lambda: open_user_guide(window))
    menu.insertAction(menu.actions()[0] if menu.actions() else None, guide)
    about = next((a for a in acts if "about" in a.text().lower()), None)
    if about is None:
        about = menu.addAction("&About Vision Studio")
    about.triggered.connect(lambda: show_about(window))
    menu.addSeparator()
    report = menu.addAction("&Report a problem...")
    report.setObjectName("reportProblemAction")
    report.setStatusTip("Save the logs and system information (no images or annotations) "
                        "to a file you can send")
    report.triggered.connect(lambda: report_problem(window))
    folder = menu.addAction("Open the &log folder")
    folder.triggered.connect(open_log_folder)
    return menu
