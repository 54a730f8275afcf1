"""Render the application's icon (drawn in code by studio.gui.icons) to PNG files.

`python packaging/make_icon.py OUT_FOLDER` writes vision-studio.png (256 px, for the
Linux .desktop entry) and vision-studio.ico (Windows; several sizes). macOS wants an
.icns: make one from the PNG with `iconutil` (see packaging/README.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(out: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from studio.gui.icons import icon_pixmap

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - Qt needs it
    out.mkdir(parents=True, exist_ok=True)
    if not icon_pixmap("app", 256).save(str(out / "vision-studio.png")):
        raise SystemExit(f"error: could not write {out / 'vision-studio.png'}")
    icon_pixmap("app", 256).save(str(out / "vision-studio.ico"))  # Qt's ico plugin, if any


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python packaging/make_icon.py OUT_FOLDER")
    main(Path(sys.argv[1]))
