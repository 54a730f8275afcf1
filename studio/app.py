"""The GUI entry point: `studio [PROJECT] [--sample]` (also `python main.py`);
`studio --version`, and `studio --self-test` (studio.gui.selftest).

With no project the window reopens the last one; the first start (no last project, or
it is gone) lands on the start page, which offers the recent projects, the sample, a new
project from a folder and an import. `--sample` (or the project name `sample`) asks for
the bundled sample project at once: it is built in the user's data folder on first use
and opened.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio", description="Vision Studio: label images, "
                                     "train a model by clicking, inspect segmentations.")
    parser.add_argument("project", nargs="?", help="project folder to open ('sample' for the "
                        "bundled sample project)")
    parser.add_argument("--sample", action="store_true",
                        help="open the bundled sample project (built on first use)")
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--self-test", action="store_true", help="check the installation: "
                        "open the window offscreen, train, predict and post-process on the "
                        "bundled sample; one line per check, exit code 1 on a failure")
    return parser.parse_args(argv)


def version_text() -> str:
    """`studio --version`: the studio's version (no torch or Qt loaded for it)."""
    import platform

    import studio

    return f"Vision Studio {studio.__version__} (Python {platform.python_version()})"


def main(argv: Sequence[str] | None = None) -> int:
    """Start the labelling window; returns the application's exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from studio.gui.selftest import run_self_test

        return run_self_test()
    from studio.platform_check import check_gui_platform

    problem = check_gui_platform()  # Qt itself would abort with a generic plugin message
    if problem is not None and running_qapplication() is None:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from studio.gui import gcpolicy
    from studio.gui.icons import app_icon
    from studio.gui.main_window import MainWindow
    from studio.gui.safety import install_safety_net
    from studio.gui.settings import APPLICATION, ORGANIZATION, Settings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    install_safety_net()  # unhandled errors: logged to today's file and shown
    window = MainWindow(Settings())
    window.show()
    gcpolicy.install(window)
    if args.sample or args.project == "sample":
        window.open_sample()
    elif args.project:
        window.open_project(Path(args.project))
    else:
        last = window.settings.last_project
        if last and (Path(last) / "project.db").is_file():
            window.open_project(last)
    return int(app.exec())


def running_qapplication():
    """The running QApplication, if some code made one already (then Qt has its platform)."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    return widgets.QApplication.instance() if widgets is not None else None


if __name__ == "__main__":
    raise SystemExit(main())
