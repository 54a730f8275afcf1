"""The Train workspace: set up a run in panels, train it off the GUI thread, watch the
curves, look at the results and the history of runs.

The panels are built from the engine (its tasks, models, augmentation spec, device list)
once the engine is imported, which happens in a worker so torch never loads on the GUI
thread. The config being edited is `base` (options no panel shows, e.g. from a loaded
file) overlaid with the panels' fields; the engine's `validate_config` checks it (in a
worker, shortly after each change and again before a run starts) and its message is put
next to the field it names.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import ConfigError, StudioError
from studio.core.fileio import atomic_write_text
from studio.gui.errors import show_error
from studio.gui.train.controls import Controls
from studio.gui.train.form import ConfigForm
from studio.gui.train.run_control import ImagesChangedError, RunControl, preflight
from studio.gui.train.runner import TrainingRunner
from studio.gui.workers import WorkerPool
from studio.gui.workspaces import scroll_page

VALIDATE_MS = 300
LAPTOP_WIDTH = 1366  # px: the smallest window the default divider is made for


def _load_backend():
    import studio.gui.train.backend as backend

    return backend, backend.list_devices()


class TrainWorkspace(QWidget):
    """Set up, run and review training runs of the open project."""

    ready = Signal()  # the engine is loaded and the panels are built
    projectDataChanged = Signal()  # e.g. a split was made: other views should refresh
    runFinished = Signal(dict)  # the engine's end summary (or {"status": "failed", ...})

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = WorkerPool(2, self)
        self.runner = TrainingRunner(self)
        self.form = ConfigForm(self)
        self.backend = None
        self.doc = None
        self.project = None
        self.base: dict = {}
        self.runs = RunControl(self)
        self.loading = QLabel("Loading the training engine...")
        layout = QVBoxLayout(self)
        layout.addWidget(self.loading)
        self.validate_timer = QTimer(self)
        self.validate_timer.setSingleShot(True)
        self.validate_timer.setInterval(VALIDATE_MS)
        self.validate_timer.timeout.connect(self.validate)
        self._loading_backend = False
        self.setup_split: QSplitter | None = None  # setup panels | results
        self.divider_moved = False  # by the person: fit_setup leaves it alone

    def load_engine(self) -> None:
        """Import the engine in a worker (once), then build the panels from it. Done when
        the workspace is first shown, so a person who only labels never loads torch."""
        if self.backend is not None or self._loading_backend:
            return
        self._loading_backend = True
        self.workers.submit(_load_backend, on_result=self._build,
                            on_error=lambda exc: self.loading.setText(
                                f"The training engine cannot be loaded: {exc}"))

    # --- building -----------------------------------------------------------------------
    def _build(self, loaded) -> None:
        from studio.gui.train.augment_panel import AugmentPanel
        from studio.gui.train.data_panel import DataPanel
        from studio.gui.train.history import HistoryPanel
        from studio.gui.train.live_panel import LivePanel
        from studio.gui.train.model_panel import ModelPanel
        from studio.gui.train.summary import SummaryPanel
        from studio.gui.train.training_panel import TrainingPanel

        self.backend, devices = loaded
        self.controls = Controls(self.backend)
        self.data_panel = DataPanel(self.workers)
        self.augment_panel = AugmentPanel(self.form, self.workers)
        self.augment_panel.config_source = self.config
        self.model_panel = ModelPanel(self.form, self.workers)
        self.training_panel = TrainingPanel(self.form)
        self.training_panel.set_devices(devices)
        self.live = LivePanel()
        self.summary = SummaryPanel(self.workers)
        self.history = HistoryPanel(self.workers)
        self.setup_tabs = QTabWidget()
        for widget, title in ((self.data_panel, "Data"), (self.augment_panel, "Augmentation"),
                              (self.model_panel, "Model"), (self.training_panel, "Training")):
            scroll = QScrollArea()  # rows keep their height; a small screen scrolls
            scroll.setWidgetResizable(True)
            scroll.setWidget(widget)
            self.setup_tabs.addTab(scroll, title)
        self.result_tabs = QTabWidget()
        for widget, title in ((self.live, "Live"), (self.summary, "Summary"),
                              (scroll_page(self.history), "History")):  # its wide rows scroll
            self.result_tabs.addTab(widget, title)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.controls)
        column.addWidget(self.setup_tabs, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(scroll_page(self.result_tabs))  # the window never widens for it
        split.setStretchFactor(0, 0)  # a wider window widens the plots
        split.setStretchFactor(1, 1)
        split.splitterMoved.connect(lambda *_a: setattr(self, "divider_moved", True))
        self.setup_split = split
        self.setup_tabs.currentChanged.connect(lambda _i: self.fit_setup())
        for i in range(self.setup_tabs.count()):  # a panel whose fields change re-fits
            tab = self.setup_tabs.widget(i)
            (tab.widget() if isinstance(tab, QScrollArea) else tab).installEventFilter(self)
        self.fit_setup()
        self.layout().removeWidget(self.loading)
        self.loading.deleteLater()
        self.layout().addWidget(split)
        self._connect()
        self.set_config(self.backend.default_config(self.controls.task.value()))
        self._install_project()
        self.ready.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The front setup panel asked for a new layout (fields shown, hidden or rebuilt
        after a task, model or device change): place the divider for its new width."""
        if event.type() == QEvent.Type.LayoutRequest and watched is self.current_setup():
            self.fit_setup()
        return False

    def fit_setup(self) -> None:
        """The divider's default place: the setup side as wide as the panel in front needs
        (and the run's buttons), the curves and tables the rest, so a narrow panel (Data,
        Model) leaves the plots room and no panel is cut at the right. A divider the person
        dragged stays where they put it."""
        if self.divider_moved or self.setup_split is None:
            return
        panel = self.current_setup()
        setup = max(self.controls.minimumSizeHint().width() + 20,
                    panel.minimumSizeHint().width() + 40)  # and a vertical scroll bar
        sizes = self.setup_split.sizes()
        total = sum(sizes) if sum(sizes) > 0 else max(LAPTOP_WIDTH, self.width())
        if sizes[0] != setup:
            self.setup_split.setSizes([setup, max(0, total - setup)])

    def _connect(self) -> None:
        c = self.controls
        c.task.currentIndexChanged.connect(lambda _i: self.change_task(c.task.value()))
        c.start.clicked.connect(self.start)
        c.stop.clicked.connect(self.stop)
        c.resume.clicked.connect(lambda: self.resume(self.history.selected_ids()[0]
                                                     if self.history.selected_ids() else None))
        c.save.clicked.connect(lambda: self.save_config())
        c.load.clicked.connect(lambda: self.load_config())
        c.reset.clicked.connect(self.reset)
        c.recommend.clicked.connect(self.recommend)
        c.mirror.connect_changed(lambda _i: self._on_mirror_answered())
        self.form.changed.connect(lambda _p: self.validate_timer.start())
        self.model_panel.errorFound.connect(self.show_config_error)
        self.data_panel.splitsChanged.connect(self._on_splits_changed)
        self.data_panel.refreshRequested.connect(self.refresh_data)
        self.runner.eventsArrived.connect(self.runs.on_events)
        self.runner.runningChanged.connect(self.runs.on_running_changed)
        self.history.runSelected.connect(lambda rid: self.summary.show_run(self.project, rid))
        self.summary.reportShown.connect(self.live.summary_shown)
        self.history.useConfigRequested.connect(self.use_run_config)
        self.history.resumeRequested.connect(self.resume)

    # --- workspace hooks ------------------------------------------------------------------
    def set_document(self, doc) -> None:
        self.doc = doc
        self.project = doc.project if doc is not None else None
        if self.backend is not None:
            self._install_project()

    def _install_project(self) -> None:
        """The project changed: every view starts afresh from the store (the task its
        labels allow, that task's defaults, no explanations, answers or curves of the last
        project)."""
        project = self.project
        self._show_mirror_answer()
        if not self.runner.running:
            tasks = self.backend.labelled_tasks(project) if project is not None else []
            self.set_config(self.backend.default_config(tasks[0] if tasks
                                                        else self.backend.TASKS[0]))
            self.controls.show_problem("")
            self.runs.reset()
            live = self.live
            live.plots.clear()
            live.log_view.clear()
            live.epoch_bar.reset()
            live.run_bar.reset()
            for label in live.figures.values():
                label.setText("-")
        self.controls.set_enabled(project is not None, self.runner.running)
        self.model_panel.set_task(self.task, project)
        self.model_panel.refresh_model()
        self.form.load(self.base)
        self.history.refresh(project)
        self.summary.show_run(project, None)
        self.augment_panel.set_project(project, self.doc.image_id if self.doc else None)
        self.refresh_data()
        self.validate_timer.start()

    def workspace_entered(self) -> None:
        self.load_engine()
        if self.backend is not None and self.project is not None:
            self.refresh_data()
            self.history.refresh()
            if self.doc is not None and self.doc.image_id is not None:
                self.augment_panel.set_project(self.project, self.doc.image_id)

    def confirm_close(self) -> bool:
        if not self.runner.running:
            return True
        answer = QMessageBox.question(self, "A run is training", "A model is training. Stop "
                                      "the run and close? (It ends 'stopped' and can be "
                                      "resumed later.)")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.stop_and_wait()
        return True

    def stop_and_wait(self, msecs: int = 120000) -> None:
        self.runner.stop()
        self.runner.wait(msecs)

    def shutdown(self) -> None:
        self.stop_and_wait()
        self.workers.shutdown()

    # --- the config ---------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.controls.task.value()

    def config(self) -> dict:
        cfg = copy.deepcopy(self.base)
        self.form.apply(cfg)
        cfg["task"] = self.task
        return cfg

    def set_config(self, cfg: dict) -> None:
        """Show a (possibly partial) config: missing options take the task's defaults."""
        task = cfg.get("task", self.task)
        if task not in self.backend.TASKS:
            raise ConfigError(f"Unknown task {task!r}; use one of: {', '.join(self.backend.TASKS)}.")
        defaults = self.backend.default_config(task)
        if "model_options" not in cfg:  # the options the engine gives the chosen model
            cfg = self.backend.apply_model_options({**cfg, "task": task},
                                                   cfg.get("model", defaults["model"]))
        del defaults["model_options"]  # the config's options, not merged with others
        self.base = self.backend.merge(defaults, cfg)
        self.controls.task.blockSignals(True)
        self.controls.task.set_value(task)
        self.controls.task.blockSignals(False)
        self.augment_panel.set_task(task)
        self.training_panel.set_task(task)
        self.model_panel.set_task(task, self.project)
        self.model_panel.model.blockSignals(True)
        self.model_panel.model.set_value(self.base["model"])
        self.model_panel.model.blockSignals(False)
        self.model_panel.refresh_model()  # once: it reads the project's runs
        self.form.load(self.base)
        self.training_panel.note_amp()  # what mixed precision does for the model shown
        self.form.clear_errors()
        self.form.clear_reasons()
        self.controls.reasons.setText("")
        self.augment_panel.schedule_preview()
        self.validate_timer.start()
        self.fit_setup()  # another task's fields may need another width

    def change_task(self, task: str) -> None:
        self.set_config(self.backend.default_config(task))
        self.refresh_data()

    def reset(self) -> None:
        self.set_config(self.backend.default_config(self.task))

    def save_config(self, path: str | None = None) -> Path | None:
        """Write the config as the JSON the CLI takes (`studio-cli train --config`)."""
        from PySide6.QtWidgets import QFileDialog

        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save config", "run.json", "JSON (*.json)")
        if not path:
            return None
        try:
            atomic_write_text(Path(path), json.dumps(self.config(), indent=2) + "\n")
        except (OSError, TypeError, ValueError) as exc:
            show_error(self, StudioError(f"Cannot write {path}: {exc}"))
            return None
        return Path(path)

    def load_config(self, path: str | None = None) -> bool:
        from PySide6.QtWidgets import QFileDialog

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load config", "",
                                                  "Configs (*.json *.yaml *.yml);;All (*)")
        if not path:
            return False
        try:  # the engine's one reader (JSON or YAML, bounded), as the CLI's --config
            self.set_config(self.backend.load_config_text(Path(path).read_bytes(), str(path)))
        except (OSError, ValueError) as exc:
            show_error(self, ConfigError(f"Cannot read the config {path}: {exc}"))
            return False
        except StudioError as exc:
            show_error(self, exc)
            return False
        return True

    def use_run_config(self, run_id: int) -> None:
        """Start from the config of run `run_id`."""
        self.set_config(self.project.run(run_id).config)
        self.show_setup(self.model_panel)

    def show_setup(self, widget: QWidget) -> None:
        """Bring the setup tab holding `widget` to the front."""
        for i in range(self.setup_tabs.count()):
            tab = self.setup_tabs.widget(i)
            if tab is widget or tab.isAncestorOf(widget):
                self.setup_tabs.setCurrentIndex(i)
                return

    def current_setup(self) -> QWidget:
        """The panel on the front setup tab (inside its scroll area, if any)."""
        tab = self.setup_tabs.currentWidget()
        return tab.widget() if isinstance(tab, QScrollArea) else tab

    # --- checking -----------------------------------------------------------------------
    def validate(self, then=None) -> None:
        """Check the config with the engine (in a worker); `then(cfg)` runs when it is fine.

        The check after an edit and the one before a run have their own keys, so an edit
        never swallows a Start."""
        if self.backend is None:
            return
        cfg = self.config()
        if then is not None:
            self.validate_timer.stop()

        def ok(checked: dict) -> None:
            self.form.clear_errors()
            self.controls.show_problem("")
            if then is not None:
                then(cfg)

        if then is None:
            self.workers.submit(self.backend.validate_config, cfg, self.project,
                                key="validate", on_result=ok, on_error=self.show_config_error)
        else:
            self.workers.submit(preflight, self.backend, cfg, self.project, key="preflight",
                                on_result=ok, on_error=self.show_config_error)

    def show_config_error(self, exc) -> None:
        """An engine's message, next to the field it names (else above the tabs)."""
        message = str(exc)
        if isinstance(exc, BaseException) and not isinstance(exc, StudioError):
            show_error(self, exc)
            return
        if isinstance(exc, ImagesChangedError):  # the Data tab offers to re-read them
            self.controls.show_problem(message)
            self.show_setup(self.data_panel)
            self.refresh_data()
            return
        path = self.form.show_error(exc)
        self.controls.show_problem("" if path else message)
        if path is not None:
            self.show_setup(self.form.fields[path].row)

    # --- running (studio.gui.train.run_control) ------------------------------------------
    @property
    def current_run(self) -> int | None:
        """The run the workspace follows (the one training, else the last one ended)."""
        return self.runs.current_run

    def start(self) -> None:
        """Check the settings, then train a new run with them."""
        self.runs.start()

    def resume(self, run_id: int | None) -> None:
        """Continue run `run_id` from its last checkpoint (epochs and device from the panels)."""
        self.runs.resume(run_id)

    def stop(self) -> None:
        self.runs.stop()

    # --- data -----------------------------------------------------------------------------
    def refresh_data(self) -> None:
        if self.backend is not None:
            self.data_panel.refresh(self.project, self.task)

    def _on_splits_changed(self) -> None:
        self.refresh_data()
        self.validate_timer.start()
        self.projectDataChanged.emit()

    # --- recommended settings ---------------------------------------------------------------
    def recommend(self) -> None:
        if self.project is None:
            return
        mirror = self.controls.mirror.value()
        device = self.config().get("device", "auto")
        self.controls.recommend.setEnabled(False)
        self.workers.submit(self.backend.recommend, self.project, self.task, mirror, device,
                            key="recommend", on_result=self._show_recommendation,
                            on_error=lambda exc: show_error(self, exc),
                            on_finished=lambda: self.controls.recommend.setEnabled(True))

    def _show_recommendation(self, plan) -> None:
        self.set_config(plan.config)
        left = self.form.show_reasons(dict(plan.reasons))
        self.controls.reasons.setText("\n".join(f"{k}: {v}" for k, v in left.items()))
        self.controls.show_mirror_note(" ".join(q.note for q in plan.questions
                                                if q.key == "mirror" and q.note))

    def _show_mirror_answer(self) -> None:
        """The project's answer to the mirror question (kept in its store)."""
        answer = self.project.train_setting("mirror") if self.project is not None else None
        mirror = self.controls.mirror
        mirror.blockSignals(True)
        mirror.set_value(answer if isinstance(answer, bool) else None)
        mirror.blockSignals(False)
        self.controls.show_mirror_note("")

    def _on_mirror_answered(self) -> None:
        """Keep the answer with the project; a note about the previous answer is gone."""
        self.controls.show_mirror_note("")
        if self.project is None:
            return
        try:
            self.project.set_train_setting("mirror", self.controls.mirror.value())
        except StudioError as exc:  # e.g. a read-only project: the answer still counts now
            self.controls.show_problem(f"The mirror answer is not kept: {exc}")
