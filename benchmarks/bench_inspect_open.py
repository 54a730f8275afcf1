"""Opening a run in the Inspect workspace (offscreen Qt), as a person sees it: 7 images of
512 x 512 in the split, CPU; a semantic run (the default U-Net, 256 px tiles) and a
detection run (the default detection model, 10 boxes an image).

A real run is trained for one short epoch first (its weights do not matter: the cost
of a prediction does), then the workspace opens it, from the call to:

- the first image's prediction drawn over it (target <= 2 s; before the workspace
  streamed, nothing showed until every image of the split was predicted);
- every image predicted and ranked (sessionOpened): what the first sight used to cost;
- the split readouts shown (the detection figures with their mAPs for a detection run).

Run alone with ``python -m benchmarks.bench_inspect_open [semantic] [detection]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.bench_postprocess import scene

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
IMAGES, SIZE = 7, 512


def _project(root: Path):
    from studio.core.geometry import MaskGeom
    from studio.core.project import Project

    project = Project.create(root / "proj", name="bench")
    ids = [project.get_or_add_class(n) for n in ("background", "cell")]
    splits = ["train", "train", "val"] + ["test"] * IMAGES
    for i, split in enumerate(splits):
        target, image, _probs = scene(SIZE, 2, i)
        path = root / f"im{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        image_id, _ = project.add_image(path, split=split)
        for c, cid in enumerate(ids):
            if (target == c).any():
                project.add_annotation(image_id, cid, "mask", MaskGeom.from_full(target == c))
    return project


def _detection_project(root: Path):
    """The same split sizes; 10 bright boxes of class "cell" on noise per image."""
    import numpy as np

    from studio.core.project import Project

    project = Project.create(root / "proj", name="bench")
    cell = project.get_or_add_class("cell")
    splits = ["train", "train", "val"] + ["test"] * IMAGES
    for i, split in enumerate(splits):
        rng = np.random.default_rng(i)
        image = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
        boxes = []
        for _ in range(10):
            w, h = (int(v) for v in rng.integers(20, 80, 2))
            x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
            image[y:y + h, x:x + w] = (220, 200, 60)
            boxes.append((x, y, w, h))
        path = root / f"im{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        image_id, _ = project.add_image(path, split=split)
        for box in boxes:
            project.add_annotation(image_id, cell, "box", box)
    return project


def _train(project, task: str = "semantic") -> int:
    from studio.ml.fit import fit

    config = {"task": task, "epochs": 1, "batch_size": 2, "device": "cpu",
              "early_stopping": {"enabled": False}, "scheduler": {"warmup_epochs": 0}}
    if task == "semantic":
        config["samples_per_image"] = 1
    return fit(project, config).run_id


def _until(app, flag: list, timeout: float = 600.0) -> float:
    end = time.perf_counter() + timeout
    while not flag and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    if not flag:
        raise TimeoutError("the workspace did not answer")
    return flag[0]


def _measure(task: str = "semantic") -> tuple[float, float, float, float, int]:
    from PySide6.QtWidgets import QApplication

    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project = (_project if task == "semantic" else _detection_project)(Path(tmp))
        try:
            run_id = _train(project, task)
            ws = InspectWorkspace(device="cpu")
            ws.resize(1366, 768)
            ws.show()
            ws.set_document(LabelDocument(project))
            first, opened, split = [], [], []
            ws.imageShown.connect(lambda _i: first or first.append(
                (time.perf_counter(), time.process_time())))
            ws.sessionOpened.connect(lambda: opened.append(time.perf_counter()))
            ws.splitUpdated.connect(lambda: split or split.append(time.perf_counter()))
            start, start_cpu = time.perf_counter(), time.process_time()
            ws.open_run(run_id, "test")
            at, cpu = _until(app, first)
            t_first, cpu_first = at - start, cpu - start_cpu
            t_all = _until(app, opened) - start
            t_split = _until(app, split) - start
            shown = sum(1 for e in ws.session.images if e.labelled)
            ws.pool.wait()
            ws.shutdown()
            ws.set_document(None)
            ws.deleteLater()
            app.processEvents()
        finally:
            project.close()
    return t_first, cpu_first, t_all, t_split, shown


MODELS = {"semantic": "U-Net", "detection": "default detection model"}


def run(tasks=("semantic", "detection")) -> list[dict]:
    import torch

    rows = []
    for task in tasks:
        t_first, cpu_first, t_all, t_split, n = _measure(task)
        rows += [
            {"name": f"open a {task} run -> first prediction shown, {n} x {SIZE}^2, "
                     f"{MODELS[task]}, CPU",
             "value": t_first, "unit": "s", "target": "<= 2"},
            {"name": f"  the same, CPU time of the process (all threads; torch uses "
                     f"{torch.get_num_threads()})",
             "value": cpu_first, "unit": "s", "target": ""},
            {"name": "  -> every image predicted and ranked (the old first sight)",
             "value": t_all, "unit": "s", "target": ""},
            {"name": "  -> split readouts shown", "value": t_split, "unit": "s", "target": ""},
        ]
    return rows


if __name__ == "__main__":
    for row in run(tuple(sys.argv[1:]) or ("semantic", "detection")):
        print(f"{row['name']}: {row['value']:.2f} {row['unit']} (target {row['target']})")
