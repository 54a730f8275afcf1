"""Click-to-segment: responsiveness of the canvas tool and speed of the models.

Measured (one row each):
- the GUI thread's longest stall (a 10 ms timer's worst lateness) while an image is
  embedded on the canvas worker and while prompts are decoded (target <= 50 ms),
- prompt to preview with the embedding ready: median over clicks (target <= 50 ms),
- first click after opening an image (embedding included) until its preview,
- embedding time per image (1024 px long side) for each installed model,
- boxes to masks over BCCD (bccd_voc, 364 images; skipped with a line when absent):
  images per second.
Real weights are used where osam's folder holds them; nothing is downloaded. Without the
default model's weights a row says "weights absent" and the figures are those of the
tests' tiny ONNX model (no learned weights: it measures our plumbing, not SAM).
Run alone with `python -m benchmarks.bench_segment`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CLICKS = 20


def _image_1024(folder: Path) -> Path:
    """A 1024 x 768 photo-like test image (a BCCD image scaled, else a synthetic one)."""
    import cv2
    import numpy as np

    src = sorted((DATASETS / "bccd_voc" / "BCCD" / "JPEGImages").glob("*.jpg"))[:1]
    if src:
        img = cv2.resize(cv2.imread(str(src[0])), (1024, 768), interpolation=cv2.INTER_CUBIC)
    else:
        rng = np.random.default_rng(0)
        img = cv2.GaussianBlur(rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8), (0, 0), 3)
        cv2.circle(img, (512, 384), 150, (230, 230, 230), -1)
    path = folder / "img1024.png"
    cv2.imwrite(str(path), img)
    return path


def _models(tmp: Path):
    """(installed real models, the model the GUI figures use, label of that choice)."""
    from studio.ml.segment import DEFAULT_MODEL, list_models
    from studio.ml.segment.weights import is_installed

    real = [s.name for s in list_models() if is_installed(s)]
    if DEFAULT_MODEL in real:
        return real, DEFAULT_MODEL, f"{DEFAULT_MODEL} (real weights)"
    from studio.ml.segment.engine import load_model
    from studio.ml.segment.tiny import TINY_NAME, install_tiny_model

    os.environ["HOME"] = str(tmp / "home")  # the tiny files go to a throwaway osam folder
    install_tiny_model(tmp / "tiny")
    load_model(TINY_NAME)
    return real, TINY_NAME, f"{TINY_NAME} (weights absent: {DEFAULT_MODEL} not installed)"


def _embedding_rows(names: list[str], image: Path) -> list[dict]:
    from studio.ml.segment import image_for_embedding, load_model

    rows = []
    for name in names:
        model = load_model(name)
        img = image_for_embedding(image, 1024, 768)
        model.embed(img)  # warm-up (first run allocates)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model.embed(img)
            times.append((time.perf_counter() - t) * 1000)
        rows.append({"name": f"embedding of a 1024 x 768 image, {name}",
                     "value": statistics.median(times), "unit": "ms"})
    return rows


def _gui_rows(model: str, label: str, image: Path, tmp: Path) -> list[dict]:
    from PySide6.QtWidgets import QApplication

    from benchmarks.bench_canvas import StallMeter
    from studio.core.project import Project
    from studio.gui.canvas import CanvasView
    from studio.gui.document import LabelDocument
    from studio.gui.segment_settings import SEGMENT

    app = QApplication.instance() or QApplication([])
    SEGMENT.update(model=model, device="cpu", disk_mb=0)
    rows = []
    with Project.create(tmp / "gui") as project:
        import cv2

        ids = [project.add_image(image)[0]]
        second = tmp / "second.png"
        cv2.imwrite(str(second), cv2.flip(cv2.imread(str(image)), 1))
        ids.append(project.add_image(second)[0])
        project.add_class("object")
        doc = LabelDocument(project)
        doc.set_image(ids[0])
        view = CanvasView(doc)
        view.resize(1000, 750)
        view.show()
        tool = view.tool_named("segment")
        try:
            with StallMeter() as meter:
                view.set_tool("segment")
                _run_until(lambda: tool.service.embedding() is not None)
            rows.append(_row(f"max GUI-thread stall while embedding, {label}", meter))
            times = []
            with StallMeter() as meter:
                for i in range(CLICKS):
                    tool.cancel()
                    t = time.perf_counter()
                    tool.add_point(300 + 20 * i, 300 + 10 * i, 1)
                    _run_until(lambda: tool.preview is not None and not tool.decoding, 30, 0)
                    times.append((time.perf_counter() - t) * 1000)
            rows.append(_row(f"max GUI-thread stall while decoding {CLICKS} prompts, {label}",
                             meter))
            rows.append({"name": f"prompt to preview, embedding ready (median), {label}",
                         "value": statistics.median(times), "unit": "ms",
                         "target": "<= 50 ms"})
            tool.cancel()
            t = time.perf_counter()
            doc.set_image(ids[1])
            tool.add_point(500, 400, 1)
            _run_until(lambda: tool.preview is not None and not tool.decoding, 120, 0)
            rows.append({"name": f"first click after opening an image until its preview, "
                                 f"{label}", "value": (time.perf_counter() - t) * 1000,
                         "unit": "ms"})
        finally:
            view.shutdown()
            view.deleteLater()
            app.processEvents()
    return rows


def _row(what: str, meter) -> dict:
    return {"name": f"{what} (its GUI-thread CPU {meter.worst_cpu:.0f} ms)",
            "value": meter.worst, "unit": "ms", "target": "<= 50 ms"}


def _run_until(condition, timeout_s: float = 60.0, settle_ms: int = 20) -> None:
    from PySide6.QtTest import QTest

    end = time.perf_counter() + timeout_s
    while not condition() and time.perf_counter() < end:
        QTest.qWait(1)
    if settle_ms:
        QTest.qWait(settle_ms)


def _bccd_rows(model_name: str, label: str, tmp: Path) -> list[dict]:
    from studio.core.formats import import_dataset
    from studio.core.project import Project
    from studio.ml.segment.batch import boxes_to_masks
    from studio.ml.segment.engine import load_model

    source = DATASETS / "bccd_voc" / "BCCD"
    if not source.is_dir():
        return [{"name": "boxes to masks over BCCD", "value": float("nan"),
                 "unit": "skipped: bccd_voc not present"}]
    with Project.create(tmp / "bccd") as project:
        import_dataset(project, "voc", source)
        t = time.perf_counter()
        job = boxes_to_masks(project, load_model(model_name))
        seconds = time.perf_counter() - t
    return [{"name": f"boxes to masks over BCCD ({job.images_done} images, {job.masks} masks "
                     f"from {job.boxes} boxes), {label}",
             "value": job.images_done / seconds, "unit": "images/s"}]


def run() -> list[dict]:
    home = os.environ.get("HOME")
    try:
        return _run()
    finally:  # _models may point osam's folder at a throwaway one for the tiny model
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home


def _run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        real, model, label = _models(tmp)
        rows = [{"name": "real weights installed", "value": ", ".join(real) or "none "
                 "(weights absent; nothing is downloaded)", "unit": ""}]
        image = _image_1024(tmp)
        rows += _embedding_rows(sorted(set(real) | {model}), image)
        rows += _gui_rows(model, label, image, tmp)
        rows += _bccd_rows(model, label, tmp)
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row.get('unit', '')} {row.get('target', '')}")
