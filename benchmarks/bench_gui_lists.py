"""The labelling window's image list and image switching, offscreen.

Measured:
- opening a project of 100,000 images in the window: Project.open, document, panels, the
  virtual image list and the first page painted (target <= 1 s); Project.open alone,
- scrolling the image list from top to bottom in 25 steps: ms per step, and how many
  rows were loaded from the store compared with the total (only visible pages load),
- "next image" for a 4000 x 3000 JPEG: from the key action until the canvas has painted
  the new image, with the neighbour prefetched (warm) and with the cache emptied (cold)
  (target <= 100 ms warm).
Run alone with `python -m benchmarks.bench_gui_lists`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

N_IMAGES = 100_000
REAL_FILES = 40  # the first rows point at real files (thumbnails, the first image shown)
SCROLL_STEPS = 25


def _app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _pump(app, seconds: float = 0.0) -> None:
    end = time.perf_counter() + seconds
    app.processEvents()
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def _big_project(root: Path) -> Path:
    import cv2
    import numpy as np

    from studio.core.project import Project

    files = root / "files"
    files.mkdir(parents=True)
    tile = (np.indices((64, 64)).sum(axis=0) * 2 % 256).astype(np.uint8)
    for i in range(REAL_FILES):
        cv2.imwrite(str(files / f"img_{i:06d}.png"), np.roll(tile, i, axis=0))
    with Project.create(root / "project") as p, p.transaction() as conn:
        conn.executemany(
            "INSERT INTO images(path, width, height, channels, sha256, split, status, added_at,"
            " updated_at) VALUES (?, 64, 64, 1, ?, ?, ?, 0, 0)",
            [(str(files / f"img_{i:06d}.png"), f"{i:064x}", ("train", "val", "test", "none")[i % 4],
              "new" if i % 3 else "done") for i in range(N_IMAGES)])
        cid = conn.execute("INSERT INTO classes(name, color, hotkey, position) VALUES"
                           " ('cell', '#ff0000', 1, 0)").lastrowid
        conn.executemany(
            "INSERT INTO annotations(image_id, class_id, kind, geometry, bbox_x, bbox_y, bbox_w,"
            " bbox_h, area, created_at, updated_at) VALUES (?, ?, 'box', '[1, 1, 5, 5]', 1, 1, 5,"
            " 5, 25, 0, 0)", [(i, cid) for i in range(1, N_IMAGES + 1, 7)])
    return root / "project"


def _window(settings_dir: Path):
    from studio.gui.main_window import MainWindow
    from studio.gui.settings import Settings

    win = MainWindow(Settings.at(settings_dir / "settings.ini"))
    win.resize(1400, 900)
    win.show()
    return win


def bench_list(root: Path) -> list[dict]:
    from studio.core.project import Project

    app = _app()
    folder = _big_project(root)
    t = time.perf_counter()
    Project.open(folder).close()
    store_open = time.perf_counter() - t
    win = _window(root)
    _pump(app)
    t = time.perf_counter()
    win.open_project(folder)
    view = win.images_panel.view
    view.viewport().repaint()  # the first page painted
    opened = time.perf_counter() - t
    model = win.images_panel.model
    loaded_after_open = model.loaded_rows
    bar = view.verticalScrollBar()
    steps = []
    for k in range(1, SCROLL_STEPS + 1):
        t = time.perf_counter()
        bar.setValue(bar.maximum() * k // SCROLL_STEPS)
        view.viewport().repaint()
        app.processEvents()
        steps.append(time.perf_counter() - t)
    win.thumb_workers.wait()
    rows = [
        dict(name=f"open {N_IMAGES:,}-image project in the window", value=opened, unit="s",
             target="<= 1 s"),
        dict(name="Project.open alone, first open (integrity check)", value=store_open, unit="s",
             target=""),
        dict(name="rows loaded after opening", value=float(loaded_after_open), unit="rows",
             target=f"<< {N_IMAGES:,}"),
        dict(name=f"scroll to the end, {SCROLL_STEPS} steps: median step",
             value=statistics.median(steps) * 1000, unit="ms", target="<= 50 ms"),
        dict(name="  slowest step", value=max(steps) * 1000, unit="ms", target=""),
        dict(name="rows held after scrolling to the end", value=float(model.loaded_rows),
             unit="rows", target=f"<< {N_IMAGES:,}"),
        dict(name="rows of the list", value=float(model.rowCount()), unit="rows", target=""),
    ]
    win.close()
    return rows


def _big_jpegs(folder: Path, n: int = 4) -> list[Path]:
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3000, 0:4000]
    base = ((np.sin(xx / 90.0) + np.cos(yy / 70.0)) * 60 + 128).astype(np.uint8)
    paths = []
    for i in range(n):
        img = np.dstack([base, np.roll(base, 500 * i, axis=1), base[::-1]])
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 20, img.shape), 0, 255)
        path = folder / f"photo_{i}.jpg"
        cv2.imwrite(str(path), img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def bench_next_image(root: Path) -> list[dict]:
    from PySide6.QtGui import QPixmap

    from studio.core.project import Project
    from studio.gui.pixels import qimage_view

    app = _app()
    paths = _big_jpegs(root / "jpegs")
    with Project.create(root / "photos") as p:
        for path in paths:
            p.add_image(path)
    win = _window(root)
    win.open_project(root / "photos")
    _pump(app, 0.2)
    prefetch = win.prefetcher  # the window's cache of decoded neighbours

    def step(warm: bool) -> float:
        if warm:
            prefetch.wait_idle()
        else:
            prefetch.clear()
        t = time.perf_counter()
        win.actions.next_image.trigger()
        win.canvas.viewport().repaint()
        app.processEvents()
        return time.perf_counter() - t

    warm, cold = [], []
    win.doc.set_image(1)
    for _ in range(3):  # 1 -> 2 -> 3 -> 4, then back to the start
        warm.append(step(True))
    win.doc.set_image(1)
    for _ in range(3):
        cold.append(step(False))
    hits = prefetch.stats["hits"]
    handoff = []
    for path in paths[:3]:  # what showing a prefetched image costs on the GUI thread
        prefetch.prefetch([path])
        prefetch.wait_idle()
        t = time.perf_counter()
        array = prefetch.load(path)
        pixmap = QPixmap.fromImage(qimage_view(prefetch.get_display(path)))
        handoff.append(time.perf_counter() - t)
        assert pixmap.width() == array.shape[1]
    win.close()
    return [
        dict(name="next image 4000x3000 JPEG, neighbour prefetched (median)",
             value=statistics.median(warm) * 1000, unit="ms", target="<= 100 ms"),
        dict(name="next image 4000x3000 JPEG, cold cache (median)",
             value=statistics.median(cold) * 1000, unit="ms", target=""),
        dict(name="prefetch cache hits by the canvas", value=float(hits), unit="", target=""),
        dict(name="prefetched 4000x3000 image to a QPixmap (GUI-thread part)",
             value=statistics.median(handoff) * 1000, unit="ms", target=""),
    ]


def run() -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="bench_gui_lists_"))
    try:
        return bench_list(root / "list") + bench_next_image(root / "next")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.4g} {row['unit']} (target {row['target']})")
