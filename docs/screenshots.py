"""`make screenshots`: the user guide's pictures, taken from the real application.

Runs offscreen (QT_QPA_PLATFORM=offscreen). Builds a temporary project from the bundled
sample (studio.sample), opens the real MainWindow with settings kept in the temporary
folder (a person's own settings and recent projects are never read or changed), and
walks through it the way a person would: the start page, the Label workspace with an
image and its objects, the Train workspace with a tiny run trained to the end in a child
process (the Live curves and the Summary), and the Inspect workspace with that run open
and its overlays. Each picture is saved under docs/images/ as a palette PNG (at most
200 KB), at 1366 x 768 (a laptop) and one (Inspect) at 1920 x 1080.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py [--out docs/images] [--only NAME...]

The whole run takes a few minutes on a small CPU; nothing is left in the temporary folder.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

LAPTOP = (1366, 768)
DESKTOP = (1920, 1080)
IMAGES = Path(__file__).resolve().parent / "images"
# A tiny run: a few epochs of a small U-Net on the sample's 512 x 512 images, on the CPU.
TINY_RUN = {
    "task": "semantic", "image_size": 256, "batch_size": 2, "epochs": 20,
    "samples_per_image": 2, "model_options": {"depth": 2, "width": 8},
    "device": "cpu", "cpu_threads": 1, "num_workers": 0, "seed": 0,
    "early_stopping": {"enabled": False}, "scheduler": {"warmup_epochs": 0},
}
TIMEOUT_S = 240
SETUP_WIDTH = 600  # px of the Train setup column (the divider dragged); the curves get the rest
BUDGET_BYTES = 200_000
# (scale, colours) tried in turn until a picture fits the budget
ENCODINGS = ((1, 256), (1, 128), (1, 64), (1, 32), (0.8, 64), (0.8, 32), (0.6, 32))

# name -> what it shows (the guide's pages refer to these files)
SHOTS = {
    "start": "the start page of a first start",
    "label": "the Label workspace: an image of the sample with its objects",
    "train-live": "the Train workspace after a tiny run: the Live curves",
    "train-summary": "the Train workspace: the run's Summary",
    "train-history": "the Train workspace: the History of runs",
    "inspect": "the Inspect workspace with the run open: difference overlay",
    "inspect-split": "the Inspect workspace: labels and post-processed prediction, split view",
    "inspect-1080": "the Inspect workspace at 1920 x 1080: prediction and cleaned side by side",
}
NEED_RUN = ("train-live", "train-summary", "train-history", "inspect", "inspect-split",
            "inspect-1080")
# the cleaning steps the Inspect pictures tick (op -> settings)
CLEANING = {"components": {"enabled": True, "min_size": 64},
            "fill_holes": {"enabled": True, "max_area": 64}}


class ShotError(RuntimeError):
    """A step of the walk-through did not reach the state its picture needs."""


def save_png(image, path: Path, budget: int = BUDGET_BYTES) -> int:
    """Save a QImage as an optimised palette PNG of at most `budget` bytes when it can be
    (screens quantise well; noisy micrographs need fewer colours or a smaller picture):
    256 colours, then fewer, then scaled down. Returns the bytes written."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    picture = Image.open(io.BytesIO(bytes(data))).convert("RGB")
    encoded = b""
    for scale, colours in ENCODINGS:
        scaled = picture if scale == 1 else picture.resize(
            (round(picture.width * scale), round(picture.height * scale)), Image.Resampling.LANCZOS)
        quantised = scaled.quantize(colors=colours, method=Image.Quantize.MEDIANCUT,
                                    dither=Image.Dither.NONE)
        out = io.BytesIO()
        quantised.save(out, format="PNG", optimize=True)
        encoded = out.getvalue()
        if len(encoded) <= budget:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(encoded)
    os.replace(temp, path)
    return len(encoded)


class Walk:
    """The application opened offscreen on a temporary copy of the sample project."""

    def __init__(self, out: Path, only: set[str] | None = None) -> None:
        self.out = out
        self.only = only
        self.folder = Path(tempfile.mkdtemp(prefix="studio-screenshots-"))
        self.app = None
        self.window = None
        self.run_id: int | None = None
        self.saved: list[tuple[str, int]] = []

    # --- plumbing ------------------------------------------------------------------------
    def wait_for(self, condition: Callable[[], bool], what: str,
                 timeout: float = TIMEOUT_S) -> None:
        from studio.gui.selftest import wait_until

        wait_until(self.app, condition, what, timeout, ShotError)

    def settle(self, seconds: float = 0.5) -> None:
        """Let queued events, debounced timers and repaints run."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def wanted(self, name: str) -> bool:
        return self.only is None or name in self.only

    def shoot(self, name: str) -> None:
        if not self.wanted(name):
            return
        self.settle()
        size = save_png(self.window.grab().toImage(), self.out / f"{name}.png")
        self.saved.append((name, size))
        print(f"{name}.png  {size // 1024} KB  ({SHOTS[name]})", flush=True)

    # --- the walk ------------------------------------------------------------------------
    def open_window(self, size: tuple[int, int]) -> None:
        from PySide6.QtWidgets import QApplication

        from studio.gui.main_window import MainWindow
        from studio.gui.settings import Settings

        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        self.window = MainWindow(Settings.at(self.folder / "settings.ini"))
        self.window.resize(*size)
        self.window.show()
        self.wait_for(self.window.isVisible, "the window to show")
        self.settle()

    def make_project(self) -> Path:
        from studio.sample import build_sample_project

        project = self.folder / "projects" / "membranes"
        build_sample_project(project)
        return project

    def label(self, project: Path, name: str = "label") -> None:
        window = self.window
        if window.project is None and not window.open_project(project):
            raise ShotError("the window did not open the sample project")
        window.workspaces.switch_to("label")
        doc = window.doc
        self.wait_for(lambda: doc.image_id is not None, "the first image on the canvas")
        shown = window.project.image_ids(split="train")[0]  # an image with its labels
        doc.set_image(shown)
        cells = [a.id for a in window.project.annotations(shown)
                 if window.project.class_record(a.class_id).name == "cell"]
        self.settle(1.0)
        doc.select(cells[:1])  # its cell region selected, as after a click
        window.statusBar().clearMessage()  # it names the temporary folder
        self.shoot(name)

    def train(self) -> None:
        window = self.window
        window.workspaces.switch_to("train")
        train = window.train
        self.wait_for(lambda: train.backend is not None, "the training engine to load")
        train.set_config(dict(TINY_RUN))
        self.settle(1.0)
        train.start()
        self.wait_for(lambda: train.runner.running, "the run to start", 60)
        self.wait_for(lambda: not train.runner.running, "the run to finish")
        run = window.project.runs()[-1]
        if run.status != "finished":
            raise ShotError(f"the tiny run ended {run.status}")
        self.run_id = run.id
        # the run's summary is evaluated after the last epoch: wait for it to show
        self.wait_for(lambda: not train.workers.busy, "the run's summary", 120)
        split = train.setup_tabs.parentWidget().parentWidget()  # setup | results
        split.setSizes([SETUP_WIDTH, self.window.width() - SETUP_WIDTH])
        train.show_setup(train.training_panel)
        train.result_tabs.setCurrentWidget(train.live)
        self.shoot("train-live")
        train.show_setup(train.data_panel)
        train.result_tabs.setCurrentIndex(1)  # Summary
        self.shoot("train-summary")
        train.show_setup(train.model_panel)
        train.result_tabs.setCurrentIndex(2)  # History
        self.shoot("train-history")

    def open_in_inspect(self):
        """Switch to Inspect and open the tiny run on the validation split; returns the
        workspace once the predictions and the split's readouts are in."""
        window = self.window
        window.workspaces.switch_to("inspect")
        inspect = window.inspect.build()
        self.wait_for(lambda: inspect.run_bar.run.findData(self.run_id) >= 0,
                      "the run in Inspect's list", 60)
        inspect.run_bar.run.setCurrentIndex(inspect.run_bar.run.findData(self.run_id))
        inspect.run_bar.split.setCurrentIndex(inspect.run_bar.split.findData("val"))
        inspect.run_bar.open.click()
        self.wait_for(lambda: inspect.result is not None, "the run's first prediction", 120)
        self.wait_for(lambda: not inspect.pool.busy, "the split's readouts", 120)
        return inspect

    def clean(self, inspect) -> None:
        """Turn on cleaning steps, as a person would tick them: small specks removed and
        small holes filled; the readouts then show before and after."""
        recipe = inspect.recipe_panel.recipe()
        for step in recipe["steps"]:
            step.update(CLEANING.get(step["op"], {}))
        inspect.recipe_panel.set_recipe(recipe)
        self.settle(1.0)
        self.wait_for(lambda: not inspect.pool.busy, "the cleaned masks", 120)
        ops = [step["op"] for step in recipe["steps"]]
        group = inspect.recipe_panel.step_group(ops.index("components"))
        scroll = group.parentWidget()
        while scroll is not None and not hasattr(scroll, "ensureWidgetVisible"):
            scroll = scroll.parentWidget()
        if scroll is not None:  # the ticked steps in view
            scroll.ensureWidgetVisible(group, 0, 0)

    def inspect(self) -> None:
        inspect = self.open_in_inspect()
        self.clean(inspect)
        bar = inspect.view_bar
        bar.first.setCurrentIndex(bar.first.findData("diff_post"))
        self.wait_for(lambda: not inspect.pool.busy, "the difference overlay", 60)
        self.shoot("inspect")
        bar.first.setCurrentIndex(bar.first.findData("gt"))
        bar.second.setCurrentIndex(bar.second.findData("post"))
        bar.mode.setCurrentIndex(bar.mode.findData("split"))
        self.wait_for(lambda: not inspect.pool.busy, "the split view", 60)
        self.shoot("inspect-split")

    def inspect_desktop(self, project: Path) -> None:
        if not self.window.open_project(project):
            raise ShotError("the window did not open the sample project again")
        inspect = self.open_in_inspect()
        self.clean(inspect)
        bar = inspect.view_bar
        bar.first.setCurrentIndex(bar.first.findData("pred"))
        bar.second.setCurrentIndex(bar.second.findData("post"))
        bar.mode.setCurrentIndex(bar.mode.findData("side"))
        self.wait_for(lambda: not inspect.pool.busy, "the side-by-side view", 60)
        self.window.statusBar().clearMessage()
        self.shoot("inspect-1080")

    def close_window(self) -> None:
        if self.window is None:
            return
        self.window.close()
        self.window.deleteLater()
        self.app.processEvents()
        self.window = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            project = self.make_project()
            self.open_window(LAPTOP)
            self.shoot("start")
            self.label(project)
            if any(self.wanted(n) for n in NEED_RUN):
                self.train()
                if self.wanted("inspect") or self.wanted("inspect-split"):
                    self.inspect()
            self.close_window()
            if self.wanted("inspect-1080"):
                self.open_window(DESKTOP)
                self.inspect_desktop(project)
                self.close_window()
        finally:
            self.close_window()
            shutil.rmtree(self.folder, ignore_errors=True)
        total = sum(size for _n, size in self.saved)
        print(f"{len(self.saved)} pictures, {total // 1024} KB, in "
              f"{time.perf_counter() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNGs")
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS), help="only these pictures")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        Walk(args.out, set(args.only) if args.only else None).run()
    except ShotError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this tree's studio
    raise SystemExit(main())
