"""Starting, stopping and resuming the Train workspace's runs, and following them.

`RunControl` checks the settings before a run (`preflight`, in a worker), hands the run to
the workspace's `TrainingRunner` (a child process supervised by a thread), routes the
child's events to the Live panel and the History, and, when the run ends, selects it,
shows its summary and explains a failure. It owns which run the workspace is following
(`current_run`) and the last error the child reported.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from studio.core.errors import ConfigError, DataError, StudioError
from studio.core.relink import changed_images
from studio.gui.errors import show_error
from studio.gui.train.failures import explain_failure

CHECKED_SPLITS = ("train", "val")  # the images a run reads


class ImagesChangedError(DataError):
    """Images a run would read changed size on disk since import (named in the message)."""


def preflight(backend, cfg: dict, project) -> dict:
    """The engine's checks before a run: its config validation, building the model with
    these options without weights (the builders reject bad model options), and the train
    and val images' files against their recorded sizes (the run would refuse them)."""
    checked = backend.validate_config(cfg, project)
    n_classes = max(2, len(project.classes())) if project is not None else 2
    backend.check_model(checked["model"], n_classes, 3, options=checked["model_options"])
    if project is not None:
        records = [r for split in CHECKED_SPLITS for r in project.images(split=split)]
        changed = changed_images(project, records)
        if changed:
            shown = "; ".join(c.describe() for c in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            raise ImagesChangedError(
                f"Cannot train on {len(changed)} image(s) changed on disk since they were "
                f"imported: {shown}{more}. Check their annotations, then press 'Re-read "
                "changed images' on the Data tab (or put the original files back).")
    return checked


class RunControl:
    """Start, stop and resume runs of `workspace` (a TrainWorkspace) and follow them."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.current_run: int | None = None
        self.last_error: BaseException | None = None
        self._history_shows_start = True

    def reset(self) -> None:
        """Another project: no run is followed, no error is pending."""
        self.current_run, self.last_error = None, None

    def start(self) -> None:
        """Check the settings, then train a new run with them."""
        ws = self.ws
        if ws.project is None or ws.runner.running:
            return
        ws.validate(then=self._start_checked)

    def _start_checked(self, cfg: dict) -> None:
        if self.ws.runner.running:
            return
        self._begin(cfg, None, [])

    def resume(self, run_id: int | None) -> None:
        """Continue run `run_id` from its last checkpoint (epochs and device from the panels)."""
        ws = self.ws
        if ws.project is None or ws.runner.running:
            return
        runs = ws.project.runs()
        if run_id is None:
            run_id = runs[-1].id if runs else None
        if run_id is None:
            show_error(ws, StudioError("There is no run to resume yet: start one first."))
            return
        run = ws.project.run(run_id)
        if not run.checkpoints.get("last"):
            show_error(ws, StudioError(f"{run.name} has no last checkpoint to resume from."))
            return
        panel = ws.config()
        done = max((h.get("epoch", 0) for h in run.history), default=0)
        if run.status == "finished":  # train further: the panel says up to which epoch
            if not isinstance(panel["epochs"], int) or panel["epochs"] <= done:
                ws.show_config_error(ConfigError(
                    f"{run.name} finished {done} epochs: set 'epochs' above {done} to train "
                    "it further.", path="epochs"))
                return
        # what a resume may change is the engine's rule (fit applies the same one)
        cfg, _kept = ws.backend.resume_overrides(run.config, panel)
        self._begin(cfg, run_id, list(run.history))

    def _begin(self, cfg: dict, resume: int | None, history: list[dict]) -> None:
        ws = self.ws
        self.last_error = None
        self.current_run = resume
        ws.history.busy_run = resume
        self._history_shows_start = False  # until the run's record says "running"
        ws.live.begin(int(cfg.get("epochs", 1)),
                      list(ws.backend.METRICS.get(cfg.get("task", ws.task), ())),
                      history, run_id=resume)
        ws.result_tabs.setCurrentWidget(ws.live)
        ws.runner.start(ws.project, cfg, resume=resume)

    def stop(self) -> None:
        self.ws.runner.stop()
        self.ws.live.set_state("Stopping after this batch...")

    def on_events(self, events) -> None:
        ws = self.ws
        if self.current_run is None and (events.batches or events.epochs):
            running = [r for r in ws.project.runs() if r.status == "running"]
            if running:
                self.current_run = running[-1].id
                ws.history.busy_run = self.current_run
                ws.live.run_id = self.current_run
        if not self._history_shows_start and (events.batches or events.epochs):
            self._history_shows_start = True  # the record says "running" by now
            ws.history.refresh()
        if self.current_run is None and events.end and events.end.get("run_id") is not None:
            self.current_run = events.end["run_id"]
        ws.live.show_events(events)
        if events.error is not None:
            self.last_error = events.error
        end = events.end
        if end is not None and self.current_run is not None and ws.project is not None:
            # the run's whole training time, over every session (not this one's part)
            total = ws.project.run(self.current_run).duration_s
            end = {**end, "duration_s": total if total is not None else end.get("duration_s")}
        if end is not None or events.error is not None:
            ws.live.end(end, events.error)

    def on_running_changed(self, running: bool) -> None:
        ws = self.ws
        ws.controls.set_enabled(ws.project is not None, running)
        ws.history.set_running(running)
        if running:
            return
        ws.history.busy_run = None
        if ws.project is None:
            return
        ws.history.refresh()
        if self.current_run is None and ws.project.runs():
            self.current_run = ws.project.runs()[-1].id
        if self.current_run is not None:
            ws.history.select_run(self.current_run)
            ws.summary.show_run(ws.project, self.current_run)
        if self.last_error is not None:
            title, text = explain_failure(self.last_error)
            box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                              QMessageBox.StandardButton.Ok, ws)
            box.exec()
        ws.runFinished.emit({"run_id": self.current_run,
                             "status": "failed" if self.last_error else "ended"})
