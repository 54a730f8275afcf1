"""Opening a run in the Inspect workspace (offscreen Qt), as a person sees it: 7 images of
512 x 512 in the split, the default U-Net (256 px tiles), CPU.

A real run is trained for one short epoch first (its weights do not matter: the cost
of a prediction does), then the workspace opens it, from the call to:

- the first image's prediction drawn over it (target <= 2 s; before the workspace
  streamed, nothing showed until every image of the split was predicted);
- every image predicted and ranked (sessionOpened): what the first sight used to cost;
- the split readouts shown.

Run alone with ``python -m benchmarks.bench_inspect_open``.
"""

from __future__ import annotations

import os
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


def _train(project) -> int:
    from studio.ml.fit import fit

    config = {"task": "semantic", "epochs": 1, "samples_per_image": 1, "batch_size": 2,
              "device": "cpu", "early_stopping": {"enabled": False},
              "scheduler": {"warmup_epochs": 0}}
    return fit(project, config).run_id


def _until(app, flag: list, timeout: float = 600.0) -> float:
    end = time.perf_counter() + timeout
    while not flag and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    if not flag:
        raise TimeoutError("the workspace did not answer")
    return flag[0]


def _measure() -> tuple[float, float, float, float, int]:
    from PySide6.QtWidgets import QApplication

    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp))
        try:
            run_id = _train(project)
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


def run() -> list[dict]:
    import torch

    t_first, cpu_first, t_all, t_split, n = _measure()
    return [
        {"name": f"open a run -> first prediction shown, {n} x {SIZE}^2, U-Net, CPU",
         "value": t_first, "unit": "s", "target": "<= 2"},
        {"name": f"  the same, CPU time of the process (all threads; torch uses "
                 f"{torch.get_num_threads()})",
         "value": cpu_first, "unit": "s", "target": ""},
        {"name": "  -> every image predicted and ranked (the old first sight)",
         "value": t_all, "unit": "s", "target": ""},
        {"name": "  -> split readouts shown", "value": t_split, "unit": "s", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.2f} {row['unit']} (target {row['target']})")
