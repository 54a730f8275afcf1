"""The Inspect workspace, GUI side (offscreen Qt): from a slider move to the updated
readout, as a person sees it (debounce excluded: the panel is flushed at once).

- one 1024 x 1024 image, 3 classes: slider move -> mask, readout and overlays redrawn
  (target <= 100 ms);
- 30 images of 512 x 512: slider move -> split-wide readouts and the Dice chart updated
  (target <= 1 s);
- a detection run, one 640 x 480 image with 300 cached raw detections and 60 ground-truth
  boxes: score-slider move -> kept detections refiltered (NMS), matched, the objects list
  and the boxes on the canvas redrawn (no target in the issue; the network is not run).

The probability maps are synthetic (ellipses of 3 classes, noisy softmax) and come from
a stand-in for the run's predictor, so only the workspace's own path is measured.
Median of a few moves. Run alone with ``python -m benchmarks.bench_inspect_gui``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.bench_postprocess import scene

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
CLASSES = 3


class _Predictor:
    """Answers predict_array with the synthetic maps of each file."""

    def __init__(self, maps: dict[str, np.ndarray]) -> None:
        self.maps = maps
        self.meta = {"task": "semantic", "class_ids": [], "class_names": [],
                     "channels": 3}

    def predict_array(self, image, name: str = "", image_id=None):
        from studio.ml.predict import PredictionResult

        probs = self.maps[Path(name).name]
        return PredictionResult(name, image_id, "semantic", self.meta["class_names"], probs,
                                probs.argmax(0).astype(np.uint8))


def _project(root: Path, sizes: list[int]):
    from studio.core.geometry import MaskGeom
    from studio.core.project import Project

    project = Project.create(root / "proj", name="bench")
    ids = [project.get_or_add_class(n) for n in ("background", "a", "b")]
    maps = {}
    for i, size in enumerate(sizes):
        target, image, probs = scene(size, CLASSES, i, noise=1.6, strength=2.0)
        path = root / f"im{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        image_id, _ = project.add_image(path, split="val")
        for c, cid in enumerate(ids):
            if (target == c).any():
                project.add_annotation(image_id, cid, "mask", MaskGeom.from_full(target == c))
        maps[path.name] = probs
    predictor = _Predictor(maps)
    predictor.meta["class_ids"] = ids
    predictor.meta["class_names"] = ["background", "a", "b"]
    return project, predictor


def _wait_for(app, signal, action, timeout: float = 30.0) -> None:
    fired = []
    signal.connect(lambda *a: fired.append(1))
    action()
    end = time.perf_counter() + timeout
    while not fired and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.0005)
    signal.disconnect()
    if not fired:
        raise TimeoutError("the workspace did not answer")


def _measure(sizes: list[int], which: str) -> tuple[float, float, int]:
    from PySide6.QtWidgets import QApplication

    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace
    from studio.ml.inspect.opening import open_session

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project, predictor = _project(Path(tmp), sizes)
        try:
            ws = InspectWorkspace(device="cpu")
            ws.resize(1400, 800)
            ws.show()
            ws.set_document(LabelDocument(project))
            session = open_session(project, 0, "val", predictor=predictor)
            signal = ws.imageShown if which == "image" else ws.splitUpdated
            _wait_for(app, signal, lambda: ws.show_session(session))
            ws.pool.wait()
            panel = ws.recipe_panel
            steps = panel.recipe()["steps"]
            opening = next(i for i, s in enumerate(steps) if s.get("operation") == "open")
            comps = next(i for i, s in enumerate(steps) if s["op"] == "components")
            _wait_for(app, signal, lambda: (panel.step_group(opening).setChecked(True),
                                            panel.step_group(comps).setChecked(True),
                                            panel.flush()))
            ws.pool.wait()
            times, cpu = [], []
            moves = [("threshold", "min_confidence", 0.4), ("threshold", "min_confidence", 0.0),
                     ("components", "min_size", 50), ("components", "min_size", 200),
                     ("morphology", "kernel_size", 5), ("morphology", "kernel_size", 3),
                     ("components", "min_size", 20)]
            for op, key, value in moves:
                idx = opening if op == "morphology" else next(
                    i for i, s in enumerate(steps) if s["op"] == op)
                editor = panel.editor(idx, key)
                start, start_cpu = time.perf_counter(), time.process_time()
                _wait_for(app, signal, lambda e=editor, v=value: (e.setValue(v), panel.flush()))
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                ws.pool.wait()
            ws.shutdown()
            ws.set_document(None)
            ws.deleteLater()
            app.processEvents()
        finally:
            project.close()
    return statistics.median(times), statistics.median(cpu), len(times)


class _Detector:
    """Answers detect with 300 planted raw detections around 60 ground-truth boxes."""

    def __init__(self, class_ids: list[int], truth: list[tuple[int, tuple]]) -> None:
        self.truth = truth
        self.meta = {"task": "detection", "class_ids": class_ids, "class_names": ["a", "b"],
                     "channels": 3, "config": {"detection": {"score_threshold": 0.5,
                                                             "nms_iou": 0.5}}}

    def detect(self, image, name="", image_id=None, **_thresholds):
        from studio.ml.tasks.detection.predict import Detections

        rng = np.random.default_rng(1)
        boxes, scores, classes = [], [], []
        for k in range(300):
            c, (x, y, w, h) = self.truth[k % len(self.truth)]
            j = rng.normal(0, 0.08 * (1 + k // 60), 4) * [w, h, w, h]
            boxes.append([x + j[0], y + j[1], x + w + j[2], y + h + j[3]])
            scores.append(rng.uniform(0.02, 1.0))
            classes.append(c if rng.random() > 0.1 else 1 - c)
        h, w = image.shape[:2]
        boxes = np.clip(np.asarray(boxes, np.float32), 0, [w, h, w, h])
        return Detections(name, image_id, ["a", "b"], boxes, np.asarray(scores, np.float32),
                          np.asarray(classes, np.int64), None, w, h)


def _measure_detection() -> tuple[float, float, int, int]:
    from PySide6.QtWidgets import QApplication

    from studio.core.project import Project
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace
    from studio.ml.inspect.detections import open_detection_session

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "proj", name="bench")
        try:
            ids = [project.get_or_add_class(n) for n in ("a", "b")]
            image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            path = Path(tmp) / "det.png"
            cv2.imwrite(str(path), image)
            image_id, _ = project.add_image(path, split="val")
            truth = []
            for k in range(60):
                w, h = (int(v) for v in rng.integers(20, 70, 2))
                x, y = int(rng.integers(0, 640 - w)), int(rng.integers(0, 480 - h))
                truth.append((k % 2, (x, y, w, h)))
                project.add_annotation(image_id, ids[k % 2], "box", (x, y, w, h))
            detector = _Detector(ids, truth)
            ws = InspectWorkspace(device="cpu")
            ws.resize(1400, 800)
            ws.show()
            ws.set_document(LabelDocument(project))
            session = open_detection_session(project, 0, "val", predictor=detector)
            _wait_for(app, ws.imageShown, lambda: ws.show_session(session))
            ws.pool.wait()
            panel = ws.detection.panel
            times, cpu, rows = [], [], 0
            for value in (0.3, 0.05, 0.6, 0.1, 0.45, 0.02, 0.7):
                start, start_cpu = time.perf_counter(), time.process_time()
                _wait_for(app, ws.imageShown, lambda v=value: (panel.score.setValue(v),
                                                               panel.flush()))
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                rows = max(rows, panel.row_count())
                ws.pool.wait()
            assert session.network_calls == 1
            ws.shutdown()
            ws.set_document(None)
            ws.deleteLater()
            app.processEvents()
        finally:
            project.close()
    return statistics.median(times), statistics.median(cpu), len(times), rows


def run() -> list[dict]:
    one, one_cpu, n1 = _measure([1024], "image")
    split, split_cpu, n2 = _measure([512] * 30, "split")
    det, det_cpu, n3, rows = _measure_detection()
    return [
        {"name": f"slider move -> image readout + overlays, 1024^2, 3 classes (median of {n1})",
         "value": one, "unit": "ms", "target": "<= 100"},
        {"name": "  the same, CPU time of the process (all threads)", "value": one_cpu,
         "unit": "ms", "target": ""},
        {"name": f"slider move -> split-wide readout, 30 x 512^2 (median of {n2})",
         "value": split, "unit": "ms", "target": "<= 1000"},
        {"name": "  the same, CPU time of the process (all threads)", "value": split_cpu,
         "unit": "ms", "target": ""},
        {"name": f"detection score-slider move -> objects list + boxes, 300 cached "
                 f"detections, up to {rows} rows (median of {n3})",
         "value": det, "unit": "ms", "target": ""},
        {"name": "  the same, CPU time of the process (all threads)", "value": det_cpu,
         "unit": "ms", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.1f} {row['unit']} (target {row['target']})")
