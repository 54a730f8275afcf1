"""Very large images: 20000 x 20000 RGB, as JPEG and as PNG, through the tile pyramid.

Measured, each in a fresh child process (so its peak resident memory is its own):
- first paint: ``TilePyramid(...)`` + ``overview(2048)`` on a cold cache (target <= 2 s;
  JPEG uses the codec's 1/8 reduced decode, PNG has no reduced decode and pays a full one),
- reopen: the same on the warm cache (tiles read back from disk),
- full build: ``ensure_built()`` on a cold cache, seconds and peak RSS (target <= 3 GB);
  PNG sources get lossless PNG tiles by default, so the PNG is also built with JPEG tiles,
- thumbnail (128 px) of the JPEG on a cold cache.
The synthetic image (smooth gradients plus noise blocks on a quarter of the area) is written
with cv2 once per run; its generation time is reported too.
Then a 16000 x 12000 image, as JPEG, PNG and TIFF, is imported into a project (a COCO file,
not added through the window) and opened on an offscreen canvas: the time until the first
pixels are painted (target <= 2 s). PNG and TIFF have no reduced decode, so after an import
the window builds their pyramids in the background (`prebuild_pyramids`, timed); the image
is opened once that is done (<= 2 s), and opened before it, the time until the canvas
shows its progress notice (at once). Run alone with
``python -m benchmarks.bench_tiles``; it takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDE = 20_000
ROOT = Path(__file__).resolve().parents[1]


def _max_rss_mb() -> float:
    """Peak resident memory of this process since it started.

    On Linux ru_maxrss survives exec, so a child forked from a big parent would report the
    parent's peak; VmHWM belongs to the new program alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass  # not Linux: ru_maxrss below
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB Linux


def _generate(folder: Path) -> dict:
    import numpy as np

    from studio.core.images import cv2  # sets OpenCV's pixel limit first

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), (SIDE, SIDE),
                     interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 48, (1000, 1000, 3), dtype=np.uint8)
    for by in range(0, SIDE, 2000):
        for bx in range((by // 2000) % 2 * 1000, SIDE, 4000):
            block = img[by:by + 1000, bx:bx + 1000]
            cv2.add(block, noise, dst=block)
    assert cv2.imwrite(str(folder / "big.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert cv2.imwrite(str(folder / "big.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return {"seconds": time.perf_counter() - start}


def _generate_16k(folder: Path) -> dict:
    import numpy as np

    from studio.core.images import cv2

    start = time.perf_counter()
    rng = np.random.default_rng(1)
    img = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (16_000, 12_000),
                     interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(folder / "wide.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert cv2.imwrite(str(folder / "wide.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert cv2.imwrite(str(folder / "wide.tif"), img)
    return {"seconds": time.perf_counter() - start}


def _import_and_open(image: Path, folder: Path) -> dict:
    """Import `image` through a COCO file, then open it on a canvas (see the docstring)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.core.formats import import_dataset
    from studio.core.images import image_info
    from studio.core.project import Project
    from studio.core.tiles import prebuild_pyramids
    from studio.gui.canvas import CanvasView
    from studio.gui.document import LabelDocument

    app = QApplication.instance() or QApplication([])
    info = image_info(image)
    coco = folder / f"{image.stem}_{image.suffix[1:]}.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": image.name, "width": info.width,
                                            "height": info.height}],
                                "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    out: dict = {}

    def open_image(project, image_id) -> tuple[float, float, bool]:
        doc = LabelDocument(project)
        view = CanvasView(doc)
        view.resize(1280, 800)
        view.show()
        app.processEvents()
        start = time.perf_counter()
        doc.set_image(image_id)
        notice = time.perf_counter() - start if not view.notice.isHidden() else float("nan")
        loop = QEventLoop()
        view.image_layer.contentShown.connect(loop.quit)
        QTimer.singleShot(120_000, loop.quit)
        if not view.image_layer.has_content:
            loop.exec()
        shown = view.image_layer.has_content
        view.grab()
        first = time.perf_counter() - start
        view.image_layer.wait_idle(120_000)
        view.close()
        return first, notice, shown

    with Project.create(folder / f"project_{image.suffix[1:]}") as project:
        report = import_dataset(project, "coco", coco, images_dir=image.parent)
        (image_id,) = report.added_ids
        if image.suffix != ".jpg":
            out["before_pyramid_notice_s"] = open_image(project, image_id)[1]
            for item in (project.cache_dir / "tiles").glob("*"):  # undo what that view built
                shutil.rmtree(item)
            start = time.perf_counter()
            prebuild_pyramids(project, report.added_ids)
            out["prebuild_s"] = time.perf_counter() - start
        out["first_paint_s"], out["notice_s"], out["shown"] = open_image(project, image_id)
    return out


def _child(task: str, image: str, cache: str) -> dict:
    """One measurement; runs in its own process."""
    from studio.core.tiles import TilePyramid, thumbnail

    start = time.perf_counter()
    if task == "generate":
        return _generate(Path(image))
    if task == "generate_16k":
        return _generate_16k(Path(image))
    if task == "import_open":
        return _import_and_open(Path(image), Path(cache))
    if task == "paint":
        shape = TilePyramid(image, cache).overview(2048).shape
        return {"seconds": time.perf_counter() - start, "shape": list(shape)}
    if task in ("build", "build_jpg_tiles"):
        pyramid = TilePyramid(image, cache, tile_format="jpg" if task != "build" else "auto")
        assert pyramid.ensure_built()
        return {"seconds": time.perf_counter() - start, "tiles": pyramid.stats["tiles_written"]}
    if task == "thumb":
        shape = thumbnail(image, cache, size=128).shape
        return {"seconds": time.perf_counter() - start, "shape": list(shape)}
    raise ValueError(task)


def _measure(task: str, image: Path, cache: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_tiles", "--child", task, str(image), str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> list[dict]:
    rows: list[dict] = []

    def add(name: str, value: float, unit: str, target: str = "") -> None:
        rows.append({"name": name, "value": float(value), "unit": unit, "target": target})
        print(f"  {name}: {value:.3g} {unit}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_tiles_") as tmp:
        folder = Path(tmp)
        gen = _measure("generate", folder, folder)
        add("generate 20000x20000 test images (JPEG + PNG)", gen["seconds"], "s")
        for fmt in ("jpg", "png"):
            image = folder / f"big.{fmt}"
            label = "JPEG" if fmt == "jpg" else "PNG"
            add(f"{label} file size", image.stat().st_size / 1e6, "MB")
            paint = _measure("paint", image, folder / f"cache_{fmt}_paint")
            add(f"{label} first paint (open + overview 2048), cold cache", paint["seconds"], "s",
                "<= 2 s")
            add(f"{label} first paint peak RSS", paint["max_rss_mb"], "MB")
            again = _measure("paint", image, folder / f"cache_{fmt}_paint")
            add(f"{label} first paint, warm cache", again["seconds"], "s", "<= 2 s")
            build = _measure("build", image, folder / f"cache_{fmt}_build")
            add(f"{label} full pyramid build ({build['tiles']} tiles)", build["seconds"], "s")
            add(f"{label} full pyramid build peak RSS", build["max_rss_mb"], "MB", "<= 3000 MB")
        build = _measure("build_jpg_tiles", folder / "big.png", folder / "cache_png_jpg_tiles")
        add("PNG full pyramid build, JPEG tiles (tile_format='jpg')", build["seconds"], "s")
        thumb = _measure("thumb", folder / "big.jpg", folder / "cache_thumb")
        add("JPEG 128 px thumbnail, cold cache", thumb["seconds"], "s")
    with tempfile.TemporaryDirectory(prefix="bench_tiles_16k_") as tmp:
        _imported_16k(Path(tmp), add)
    return rows


def _imported_16k(folder: Path, add) -> None:
    """Imported 16000 x 12000 JPEG / PNG / TIFF opened on the canvas (see the docstring)."""
    gen = _measure("generate_16k", folder, folder)
    add("generate 16000x12000 test images (JPEG + PNG + TIFF)", gen["seconds"], "s")
    for ext, label in (("jpg", "JPEG"), ("png", "PNG"), ("tif", "TIFF")):
        r = _measure("import_open", folder / f"wide.{ext}", folder)
        if ext != "jpg":
            add(f"16000x12000 {label} imported, opened before its pyramid: progress notice "
                "after", r["before_pyramid_notice_s"] * 1000, "ms", "at once")
            add(f"16000x12000 {label} background pyramid build after the import",
                r["prebuild_s"], "s")
        shown = "" if r["shown"] else " NOT SHOWN"
        add(f"16000x12000 {label} imported: set_image to first paint{shown}",
            r["first_paint_s"], "s", "<= 2 s")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        result = _child(sys.argv[2], sys.argv[3], sys.argv[4])
        result["max_rss_mb"] = _max_rss_mb()
        print(json.dumps(result))
    else:
        for row in run():
            print(f"{row['name']}: {row['value']:.4g} {row['unit']}  {row['target']}")
