"""`studio --self-test`: the application's whole path, offscreen, in under a minute.

Opens the main window offscreen, builds a temporary project from the bundled sample
data, opens it in the window, trains a few steps the way the Train workspace does (a
child process supervised by a thread), predicts an image and post-processes the
unlabelled images into the project (in the window's worker pool), closes the window and
reopens the project to see it intact. One line per check; the exit code is 1 when any
check failed. Nothing of the person's is touched: the project, the settings file and the
run live in a temporary folder that is removed at the end.

A dialog the window would show (an error box, a question) cannot be answered offscreen:
while the self-test runs, any modal dialog is closed at once and fails the check it
appeared in, with its text; so does an unhandled exception.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

TRAIN_CONFIG = {
    "task": "semantic", "image_size": 256, "batch_size": 2, "epochs": 1,
    "samples_per_image": 2, "model_options": {"depth": 2, "width": 8},
    "device": "cpu", "cpu_threads": 1, "num_workers": 0, "seed": 0,
    "early_stopping": {"enabled": False}, "scheduler": {"warmup_epochs": 0},
}
TIMEOUT_S = 120
STATIC_BOXES = ("question", "warning", "information", "critical", "about")


class CheckFailed(Exception):
    """A check's own failure (its message is the row's reason)."""


class SelfTest:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.results: list[tuple[str, bool]] = []
        self.problems: list[str] = []  # dialogs and unhandled errors since the last check
        self.folder = Path(tempfile.mkdtemp(prefix="studio-self-test-"))
        self.window = None
        self.app = None
        self.state: dict = {}

    # --- plumbing ------------------------------------------------------------------------
    def check(self, name: str, fn: Callable[[], str]) -> bool:
        start = time.perf_counter()
        self.problems.clear()
        try:
            detail = fn()
            if self.problems:
                raise CheckFailed("; ".join(self.problems))
            ok = True
        except Exception as exc:  # every failure is a row; later checks may still run
            ok = False
            detail = str(exc) if isinstance(exc, CheckFailed) else \
                f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, CheckFailed):  # a bug: its traceback helps to fix it
                print(traceback.format_exc(), file=sys.stderr)
        self.results.append((name, ok))
        seconds = time.perf_counter() - start
        print(f"{'ok' if ok else 'FAIL':<5} {name:<22} {detail.splitlines()[0] if detail else ''}"
              f" ({seconds:.1f} s)", file=self.out, flush=True)
        return ok

    def wait_for(self, condition: Callable[[], bool], what: str,
                 timeout: float = TIMEOUT_S) -> None:
        """Run the event loop until `condition()` holds."""
        wait_until(self.app, condition, what, timeout, CheckFailed)

    def unhandled(self, exc_type, exc, tb) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        self.problems.append(f"unhandled {exc_type.__name__}: {exc}")
        print(text, file=sys.stderr)

    def box_shown(self, title: str, text: str):
        from PySide6.QtWidgets import QMessageBox

        self.problems.append(f"a message box appeared: {title}: {text}")
        return QMessageBox.StandardButton.Cancel

    def dialog_shown(self, dialog) -> int:
        text = dialog.text() if hasattr(dialog, "text") else dialog.windowTitle()
        info = dialog.informativeText() if hasattr(dialog, "informativeText") else ""
        self.problems.append(f"a dialog appeared: {text} {info}".strip())
        return 0

    # --- the checks ----------------------------------------------------------------------
    def open_window(self) -> str:
        from PySide6.QtWidgets import QApplication

        from studio.gui.main_window import MainWindow
        from studio.gui.settings import Settings

        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        self.window = MainWindow(Settings.at(self.folder / "settings.ini"))
        self.window.show()
        self.wait_for(self.window.isVisible, "the window to show")
        return f"{self.app.platformName()} platform, {len(self.window.menuBar().actions())} menus"

    def make_project(self) -> str:
        from studio.sample import build_sample_project

        folder = self.folder / "sample"
        build_sample_project(folder)
        if not self.window.open_project(folder):
            raise CheckFailed("the window did not open the project")
        project = self.window.project
        self.state["images"] = project.count_images()
        self.state["annotations"] = sum(len(project.annotations(i))
                                        for i in project.image_ids())
        return (f"{self.state['images']} images, {self.state['annotations']} annotations "
                "from the bundled sample")

    def train(self) -> str:
        from studio.gui.train.runner import TrainingRunner

        runner = TrainingRunner(self.window, mode="process", calm=False)
        ends, errors, epochs = [], [], []

        def on_events(events) -> None:
            epochs.extend(events.epochs)
            if events.end is not None:
                ends.append(events.end)
            if events.error is not None:
                errors.append(events.error)

        runner.eventsArrived.connect(on_events)
        runner.start(self.window.project, dict(TRAIN_CONFIG))
        try:
            self.wait_for(lambda: not runner.running, "the training run to end")
        finally:
            if runner.running:
                runner.stop()
                runner.wait(10000)
        if errors:
            raise CheckFailed(f"training failed: {errors[0]}")
        if not ends or ends[-1].get("status") != "finished":
            raise CheckFailed(f"the run ended {ends[-1].get('status') if ends else 'silently'}")
        run_id = int(ends[-1]["run_id"])
        self.state["run"] = run_id
        record = self.window.project.run(run_id)
        if record.status != "finished":
            raise CheckFailed(f"the run is recorded as {record.status}")
        loss = record.history[-1].get("train_loss") if record.history else None
        if loss is None:
            raise CheckFailed(f"run {run_id} recorded no training epoch")
        return f"run {run_id} finished in a child process, train loss {loss:.3f}"

    def predict(self) -> str:
        from studio.ml.predict import predict

        project, run_id = self.window.project, self.state["run"]
        image_id = project.image_ids(split="test")[0]
        results = self.in_worker(predict, project, run_id, [image_id], device="cpu")
        result = results[0]
        rec = project.image(image_id)
        if result.label_map is None or result.label_map.shape != (rec.height, rec.width):
            raise CheckFailed(f"the label map has the wrong shape for {rec.name}")
        share = float((result.label_map == 1).mean())
        return f"{rec.name} {rec.width}x{rec.height}: {share:.0%} {result.class_names[1]}"

    def postprocess(self) -> str:
        from studio.ml.postprocess.batch import model_source, postprocess_images
        from studio.ml.postprocess.recipe import default_recipe

        project, run_id = self.window.project, self.state["run"]
        recipe = default_recipe("semantic")
        for step in recipe["steps"]:
            if step["op"] in ("morphology", "components", "fill_holes"):
                step["enabled"] = True
        ids = project.image_ids(split="none") or project.image_ids()[-1:]
        summary = self.in_worker(postprocess_images, project, run_id, ids, recipe,
                                 store=True, device="cpu")
        source = model_source(run_id)
        stored = [a for i in ids for a in project.annotations(i) if a.source == source]
        if not stored:
            raise CheckFailed("no post-processed regions were stored")
        self.state["stored"] = len(stored)
        return (f"{summary.images} unlabelled images cleaned and stored as "
                f"{len(stored)} regions")

    def in_worker(self, fn, *args, **kwargs):
        """Run fn in the window's worker pool (as the window does) and wait for it."""
        box: dict = {}
        self.window.workers.submit(fn, *args, on_result=lambda v: box.setdefault("value", v),
                                   on_error=lambda e: box.setdefault("error", e), **kwargs)
        self.wait_for(lambda: bool(box), f"{fn.__name__} in the worker pool")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def close(self) -> str:
        from studio.core.project import Project

        folder = self.window.project.root
        self.window.close()
        self.wait_for(lambda: not self.window.isVisible(), "the window to close")
        if self.window.project is not None:
            raise CheckFailed("the window kept its project open")
        with Project.open(folder) as project:
            images = project.count_images()
            runs = [r.status for r in project.runs()]
            notes = sum(len(project.annotations(i)) for i in project.image_ids())
        expected = self.state.get("annotations", 0) + self.state.get("stored", 0)
        trained = "run" in self.state
        if images != self.state.get("images") or notes != expected or (
                trained and "finished" not in runs):
            raise CheckFailed(f"the project changed: {images} images, {notes} annotations, "
                              f"runs {runs}")
        return f"reopened: {images} images, {notes} annotations, runs {runs}"

    # --- all -----------------------------------------------------------------------------
    def run(self) -> int:
        from PySide6.QtWidgets import QDialog, QMessageBox

        previous_hook = sys.excepthook
        patched = [(cls, "exec", cls.__dict__["exec"]) for cls in (QDialog, QMessageBox)
                   if "exec" in cls.__dict__]
        patched += [(QMessageBox, name, QMessageBox.__dict__[name]) for name in STATIC_BOXES]
        sys.excepthook = self.unhandled
        for cls, _name, _original in patched[:-len(STATIC_BOXES)]:
            cls.exec = lambda dialog, *_args: self.dialog_shown(dialog)
        for name in STATIC_BOXES:  # QMessageBox.question(parent, title, text, ...)
            setattr(QMessageBox, name, staticmethod(
                lambda _parent, title, text, *_args, **_kw: self.box_shown(title, text)))
        start = time.perf_counter()
        try:
            steps = [("window opens", self.open_window), ("sample project", self.make_project),
                     ("training", self.train), ("prediction", self.predict),
                     ("post-processing", self.postprocess), ("close and reopen", self.close)]
            failed = None
            for name, fn in steps:
                if failed is not None and name != "close and reopen":
                    self.check(name, lambda f=failed: _not_run(f))  # it needs what failed
                elif not self.check(name, fn):
                    failed = name
                    if name in ("window opens", "sample project"):
                        break  # nothing after it can run
        finally:
            for cls, name, original in patched:
                setattr(cls, name, original)
            sys.excepthook = previous_hook
            if self.window is not None and self.window.isVisible():
                self.window.close()
            if self.window is not None:
                self.window.deleteLater()
                self.app.processEvents()
            shutil.rmtree(self.folder, ignore_errors=True)
        failed = [n for n, ok in self.results if not ok]
        print(f"self-test: {len(self.results) - len(failed)} of {len(self.results)} checks "
              f"passed in {time.perf_counter() - start:.0f} s"
              + (f"; failed: {', '.join(failed)}" if failed else ""), file=self.out, flush=True)
        return 1 if failed or len(self.results) < 6 else 0


def wait_until(app, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S,
               error: type[Exception] = CheckFailed) -> None:
    """Run `app`'s event loop until `condition()` holds; `error` after `timeout` seconds
    (the self-test and the guide's screenshot script drive the window this way)."""
    from PySide6.QtCore import QEventLoop

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def _not_run(failed: str) -> str:
    raise CheckFailed(f"not run: needs the {failed} check, which failed")


def run_self_test(out: TextIO = sys.stdout) -> int:
    """Run the self-test offscreen; returns the process exit code."""
    prepare_offscreen()
    return SelfTest(out).run()


def prepare_offscreen() -> None:
    """Qt reads its platform when the application starts: offscreen, unless one runs."""
    if "PySide6.QtWidgets" not in sys.modules or \
            sys.modules["PySide6.QtWidgets"].QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
