"""The Inspect workspace: choose a run and a split, browse its images worst first, see
ground truth, prediction, difference and probability overlays, tune a post-processing
recipe with sliders whose readouts (image and split) follow, and accept the result into
the labels. Review queues, pre-labelling and batch jobs live in `jobs.InspectJobs`;
detection and instance runs in `det_inspector.DetectionInspector`; which panels a run's
task gets is decided in `task_views`.

Hooks for the window's workspace frame: set_document, workspace_entered,
workspace_left, confirm_close, shutdown.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.gui.inspect.accept import InspectHistory
from studio.gui.inspect.colorbar import ColorBar
from studio.gui.inspect.det_inspector import DetectionInspector
from studio.gui.inspect.editing import OverlayEditing
from studio.gui.inspect.fit import fit_on_first_show, fit_panels, fit_tabs
from studio.gui.inspect.jobs import InspectJobs
from studio.gui.inspect.opener import SessionOpener, session_text
from studio.gui.inspect.queues import ConfusionPanel
from studio.gui.inspect.readout_panel import DiceChart, ReadoutTable, split_summary
from studio.gui.inspect.recipe_panel import RecipePanel
from studio.gui.inspect.task_views import TASK_VIEWS, TaskViews, views_for
from studio.gui.inspect.toolbar import ImageBrowser, RunBar, ViewBar
from studio.gui.inspect.view import CompareView
from studio.gui.workers import WorkerPool
from studio.ml.inspect import overlays as ov
from studio.ml.inspect.session import DEFAULT_BUDGET, ImageResult, InspectSession, top_k
from studio.ml.postprocess import load_run_recipe
from studio.ml.tasks import task_of


class InspectWorkspace(OverlayEditing, QWidget):
    """A run's predictions of a split, overlays, post-processing and readouts."""

    sessionOpened = Signal()
    imageShown = Signal(int)  # an image's overlays are drawn (after each recipe change too)
    splitUpdated = Signal()  # the split-wide readouts caught up with the recipe
    errorShown = Signal(str)  # a message the user was shown

    def __init__(self, parent: QWidget | None = None, device: str = "auto",
                 budget: int = DEFAULT_BUDGET, pool: WorkerPool | None = None) -> None:
        super().__init__(parent)
        self.device, self.budget = device, budget
        self.pool = pool or WorkerPool(max_threads=2, parent=self)
        self._own_pool = pool is None
        self.doc = None
        self.session: InspectSession | None = None
        self.result: ImageResult | None = None
        self.image_id: int | None = None
        self.component: np.ndarray | None = None
        self._split_pending = False
        self._split_task = None
        self.views: TaskViews = views_for("semantic")
        self.history = InspectHistory()  # what Inspect's Undo takes back
        self._build()

    # --- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.run_bar = RunBar()
        self.view_bar = ViewBar()
        self.view = CompareView()
        self.colorbar = ColorBar()
        self.colorbar.hide()
        self.browser = ImageBrowser()
        self.confusion = ConfusionPanel()
        self.recipe_panel = RecipePanel()
        self.readouts = ReadoutTable()
        self.chart = DiceChart()
        self.jobs = InspectJobs(self)
        self.opener = SessionOpener(self)
        self.left_tabs = QTabWidget()
        self.left_tabs.addTab(self.browser, "Images")
        for title, w in self.jobs.tabs():
            self.left_tabs.setTabToolTip(self.left_tabs.addTab(w, title),
                                         self.jobs.TAB_TIPS[title])
        confusion = self.left_tabs.addTab(self.confusion, "Confusion")
        self.left_tabs.setTabVisible(confusion, False)  # classification runs only
        fit_tabs(self.left_tabs)  # every tab in sight, never behind a scroll arrow
        centre = QWidget()
        row = QHBoxLayout()
        row.addWidget(self.view, 1)
        row.addWidget(self.colorbar)
        cl = QVBoxLayout(centre)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.view_bar)
        cl.addLayout(row, 1)
        right = self.right_panel = QSplitter(Qt.Orientation.Vertical)
        right.setChildrenCollapsible(False)
        right.addWidget(self.jobs.recipe_box(self.recipe_panel))
        readout_box = QWidget()
        rl = QVBoxLayout(readout_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.readouts, 1)
        rl.addWidget(self.chart)
        right.addWidget(readout_box)
        right.setStretchFactor(0, 1)  # a taller window gives the recipe more, not the table
        right.setStretchFactor(1, 0)
        self.detection = DetectionInspector(self)  # the panel of detection / instance runs
        right.addWidget(self.detection.panel)
        self.detection.panel.hide()
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(self.left_tabs)
        main.addWidget(centre)
        main.addWidget(right)
        main.setChildrenCollapsible(False)
        main.setStretchFactor(1, 1)
        main.setSizes([300, 620, 480])
        self.main_splitter = main
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_bar)
        layout.addWidget(main, 1)

        self.run_bar.open.clicked.connect(self.open_selected)
        self.run_bar.run.currentIndexChanged.connect(self._preview_views)
        self.run_bar.cancel.clicked.connect(self.jobs.cancel)
        self.run_bar.refresh.clicked.connect(self.opener.refresh)
        self.browser.currentItemChanged.connect(self._on_browser_item)
        self.chart.imageClicked.connect(self.show_image)
        self.confusion.imageActivated.connect(self.show_image)
        self.recipe_panel.recipeChanged.connect(self._on_recipe_changed)
        vb = self.view_bar
        for combo in (vb.first, vb.second, vb.heat_class):
            combo.currentIndexChanged.connect(self.render_overlays)
        vb.mode.currentIndexChanged.connect(self._on_mode)
        vb.classesChanged.connect(self._on_classes_shown)
        vb.opacity.valueChanged.connect(lambda v: self.view.set_opacity(v / 100.0))
        vb.brush.toggled.connect(self._on_brush_toggled)
        vb.pick.toggled.connect(lambda on: on and vb.brush.setChecked(False))
        vb.accept_all.clicked.connect(lambda: self.accept(region=False))
        vb.accept_region.clicked.connect(lambda: self.accept(region=True))
        vb.undo.clicked.connect(self.undo_last)
        for canvas in self.view.canvases():
            canvas.brushed.connect(self._on_brushed)
            canvas.strokeFinished.connect(self.request_updates)
            canvas.clicked.connect(self._on_clicked)
        self.view.set_opacity(vb.opacity.value() / 100.0)
        fit_on_first_show(self, lambda: self._arrange(self.views))

    # --- workspace hooks ----------------------------------------------------------------------
    def set_document(self, doc) -> None:
        if self.doc is not None:
            self.doc.annotationsChanged.disconnect(self._on_annotations_changed)
        self.doc = doc
        self.history.clear()
        self.close_session()
        self._reset_views()
        if doc is not None:
            doc.annotationsChanged.connect(self._on_annotations_changed)
        self.refresh_runs()

    def _reset_views(self) -> None:
        """The project changed: nothing of the last one's runs stays on screen (confusion
        matrix, pre-labels, review queues, classes, readout rows, panels of its task)."""
        self.confusion.set_data(np.zeros((0, 0), np.int64), {}, [], {})
        self.jobs.prelabel_list.clear()
        for queue in self.jobs.queues.values():
            queue.tree.clear()
            queue.info.setText("")
        self.view_bar.set_classes([])
        self.readouts.set_classes([])
        self.views = views_for("semantic")
        self._arrange(self.views)
        self.set_status("Choose a run and a split.")

    def workspace_entered(self) -> None:
        self.refresh_runs()
        self.check_stale()

    def workspace_left(self) -> None:
        self.recipe_panel.flush()

    def confirm_close(self) -> bool:
        """A running job (prediction, pre-labelling, review queue) is stopped only if the
        person agrees; everything else is saved already (edits go to the store)."""
        task = self.jobs.task
        if task is None or task.done:
            return True
        answer = QMessageBox.question(self, "Inspect", f"{self.jobs.title} is still running. "
                                      "Stop it and close?")
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.jobs.cancel()
        self.pool.wait(10000)
        return True

    def shutdown(self) -> None:
        self.jobs.cancel()
        self.pool.clear_pending()
        if self._own_pool:
            self.pool.shutdown()
        self.pool.wait(10000)
        for canvas in self.view.canvases():
            canvas.image_layer.wait_idle(5000)
            canvas.image_layer.clear()

    # --- run and split ------------------------------------------------------------------------
    @property
    def project(self):
        return None if self.doc is None else self.doc.project

    def refresh_runs(self) -> None:
        runs = [] if self.project is None else [
            r for r in self.project.runs() if r.task in TASK_VIEWS]
        self.run_bar.set_runs(runs)

    def _preview_views(self) -> None:
        """Before a run is opened, the panels and list headers of the chosen run's task."""
        task = self.run_bar.chosen_task()
        if self.session is None and task is not None:
            self.views = views_for(task)
            self._arrange(self.views)
            self.browser.setHeaderLabels(list(self.views.browser_headers))

    def open_selected(self) -> None:
        run_id = self.run_bar.run.currentData()
        if run_id is None:
            self.show_error("There is no trained run to inspect; train one in the Train "
                            "workspace first.")
            return
        self.open_run(int(run_id), self.run_bar.split.currentData())

    def check_stale(self) -> bool:
        return self.opener.check_stale()

    def refresh_session(self) -> None:
        self.opener.refresh()

    def open_run(self, run_id: int, split: str) -> None:
        """Predict the split with the run in the background, showing it as it comes."""
        self.opener.open_run(run_id, split)

    def show_session(self, session, complete: bool = True) -> None:
        """Show a session (`InspectSession`, or `DetectionSession` for detection and
        instance runs) opened in the background by open_run (`complete` False: its
        predictions are still streaming in; the opener shows its first image)."""
        self.session = session
        self.opener.start_watching()
        views = self.views = views_for(session.task)
        names = session.class_names
        self.view_bar.set_classes(names)
        self.readouts.set_classes(names)
        classification = views.left_tab == "confusion"
        self.browser.fill(session.images, classification, names, views.browser_headers)
        self._arrange(views)
        self.set_status(session_text(session) if complete else
                        f"Run {session.run_id}, {session.split}: predicting "
                        f"{sum(e.labelled for e in session.images)} labelled image(s)…")
        if classification and complete:
            self.jobs.show_confusion(session)
            self.left_tabs.setCurrentWidget(self.confusion)
        elif classification:  # the matrix when every image is in; the list fills meanwhile
            self.confusion.set_data(np.zeros((0, 0), np.int64), {}, [], {})
            self.left_tabs.setCurrentWidget(self.browser)
        elif views.semantic_tools:
            stored = None
            try:
                stored = load_run_recipe(session.project, session.run_id)
            except StudioError as exc:
                self.show_error(f"The recipe saved with run {session.run_id} was not "
                                 f"loaded: {exc}")
            self.recipe_panel.set_recipe(stored or self.recipe_panel.recipe())
        if views.detection:
            self.detection.start(session, split=complete)
        if not complete:
            return
        ids = self.browser.image_ids()
        self.sessionOpened.emit()
        if ids:
            self.show_image(ids[0])

    def _arrange(self, views: TaskViews) -> None:
        """Show the panels `views` names, hide the others."""
        detection, semantic = views.detection, views.semantic_tools
        for i in (0, 1):  # recipe, pixel readouts
            self.right_panel.widget(i).setVisible(semantic)
        self.detection.panel.setVisible(detection)
        self.right_panel.setVisible(semantic or detection)
        self.view_bar.setVisible(semantic)  # overlays: a classification run has none
        queue_tabs = {id(w) for _t, w in self.jobs.tabs()}
        for i in range(self.left_tabs.count()):
            w = self.left_tabs.widget(i)
            if id(w) in queue_tabs:
                self.left_tabs.setTabVisible(i, views.queues)
            elif w is self.confusion:
                self.left_tabs.setTabVisible(i, views.left_tab == "confusion")
        if views.left_tab == "images":
            self.left_tabs.setCurrentWidget(self.browser)
        if semantic:  # the view as its bar says (a detection run may have changed it)
            self.view.set_opacity(self.view_bar.opacity.value() / 100.0)
            self.view.set_mode(self.view_bar.mode.currentData())
        fit_panels(self.main_splitter, self.right_panel, semantic or detection,
                   self.readouts.sizeHint().height() + self.chart.sizeHint().height() + 8
                   if semantic else None)

    def close_session(self) -> None:
        """Forget the open session: its views are cleared, its background work dropped."""
        self.pool.clear_pending()
        self.opener.stop_watching()
        self.run_bar.show_progress(None)
        self.session, self.result, self.image_id, self.component = None, None, None, None
        self.browser.clear()
        self.readouts.set_image(None)
        self.readouts.set_split(None)
        self.chart.set_values([], [], [])
        self.detection.clear()
        for canvas in self.view.canvases():
            canvas.clear()

    # --- images -------------------------------------------------------------------------------
    def _on_browser_item(self, item, _previous=None) -> None:
        if item is not None:
            self.show_image(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def show_image(self, image_id: int, overlay: str | None = None) -> None:
        """Show an image of the project (predicted on first sight) with its overlays."""
        if self.session is None or self.project is None:
            return
        changed = image_id != self.image_id
        self.image_id = image_id
        self.component = None
        self.view_bar.accept_region.setEnabled(False)
        if changed:
            self.result = None  # the old image's overlays must not show over the new one
            self.view.set_overlays(None, None)
            rec = self.project.image(image_id)
            try:
                self.view.load_image(rec.abs_path, rec.width, rec.height,
                                     self.project.cache_dir, rec.sha256)
            except StudioError as exc:
                self.show_error(str(exc))
            self.browser.select_image(image_id)
            self.chart.mark(image_id)
        if overlay is not None:
            self.view_bar.first.setCurrentIndex(self.view_bar.first.findData(overlay))
        if task_of(self.session.task).image_label:
            self._show_classification(image_id)
        elif self.views.detection:
            self.detection.show_image(image_id)
        else:
            self._request_image()

    def _show_classification(self, image_id: int) -> None:
        """The image with its labelled class and top-3 predicted (predicted in the worker
        on first sight, e.g. an unlabelled image)."""
        session = self.session
        for canvas in self.view.canvases():
            canvas.set_overlay(None)

        def shown(probs) -> None:
            if self.session is not session or self.image_id != image_id:
                return
            e = session.entry(image_id)
            top = ", ".join(f"{n} {p:.2f}" for n, p in top_k(probs, session.class_names))
            given = session.class_names[e.given] if e is not None and e.given >= 0 else "–"
            name = e.name if e is not None else self.project.image(image_id).name
            self.set_status(f"{name}: labelled {given}; predicted {top}")
            self.imageShown.emit(image_id)

        self.pool.submit(session.classify, image_id, key="inspect-image", on_result=shown,
                         on_error=self.report_error)

    # --- recipe → worker → readouts --------------------------------------------------------------
    def _on_recipe_changed(self, _recipe: dict) -> None:
        self.request_updates()

    def request_updates(self) -> None:
        """A recipe or brush change: the image first (it is what the person looks at),
        then the split (shown as updating until it catches up)."""
        if self.session is None or self.session.readout is None:
            self._request_image()
            return
        self.readouts.set_updating(True)
        self._split_pending = True
        if self._split_task is not None:
            self._split_task.cancel()  # its figures are for an older recipe: never shown
        if not self._request_image():
            self._request_split()

    def _overlay_spec(self) -> dict:
        vb = self.view_bar
        kinds = [vb.first.currentData()]
        if self.view.mode != "overlay":
            kinds.append(vb.second.currentData())
        return {"kinds": kinds, "colors": self.class_colors(),
                "hidden": self.view_bar.hidden_classes(),
                "heat_class": max(vb.heat_class.currentData() or 0, 0)}

    def _request_image(self) -> bool:
        if (self.session is None or self.image_id is None
                or not task_of(self.session.task).label_map):
            return False
        session, image_id, recipe = self.session, self.image_id, self.recipe_panel.recipe()
        spec = self._overlay_spec()

        def job(token):
            out = session.image_result(image_id, recipe, cancelled=lambda: token.cancelled)
            token.check()
            for kind in spec["kinds"]:  # drawn here, not on the GUI thread
                out.overlays[(kind, spec["heat_class"])] = ov.overlay_for(
                    kind, out.raw, out.mask, out.prediction.target,
                    out.prediction.probabilities, spec["colors"], spec["hidden"],
                    spec["heat_class"])
            return out

        def failed(exc: BaseException) -> None:
            self._then_split()
            self.report_error(exc)

        self.pool.submit(job, with_token=True, key="inspect-image", on_result=self._on_image,
                         on_error=failed)
        return True

    def _then_split(self) -> None:
        if self._split_pending:
            self._split_pending = False
            self._request_split()

    def _request_split(self) -> None:
        if self.session is None or self.session.readout is None:
            return
        session, recipe = self.session, self.recipe_panel.recipe()
        self.readouts.set_updating(True)

        def job(token):
            out = session.split_figures(recipe, cancelled=lambda: token.cancelled)
            token.check()
            return out

        self._split_task = self.pool.submit(job, with_token=True, key="inspect-split",
                                            on_result=self._on_split,
                                            on_error=self.report_error)

    def _on_image(self, result: ImageResult | None) -> None:
        self._then_split()
        if result is None or self.session is None or result.image_id != self.image_id:
            return
        self.result = result
        self.readouts.set_image(result.figures)
        self.render_overlays()
        self.imageShown.emit(result.image_id)

    def _on_split(self, figures: dict | None) -> None:
        if figures is None or self.session is None:
            return
        self.readouts.set_split(figures)
        self.readouts.set_updating(False, split_summary(figures))
        ids = figures["image_ids"]
        after = dict(zip(ids, figures["dice_after"], strict=True))
        before = dict(zip(ids, figures["dice_before"], strict=True))
        order = [i for i in self.browser.image_ids() if i in after]
        self.chart.set_values(order, [before[i] for i in order], [after[i] for i in order])
        self.chart.mark(self.image_id)
        self.browser.set_after(after)
        self.splitUpdated.emit()

    # --- errors -------------------------------------------------------------------------------
    def report_error(self, exc: BaseException) -> None:
        self.run_bar.show_progress(None)
        self.show_error(str(exc) if isinstance(exc, StudioError) else
                         f"Inspect failed: {type(exc).__name__}: {exc}")
        if not isinstance(exc, StudioError):
            logging.getLogger(__name__).error("inspect task failed: %s",
                                              getattr(exc, "__traceback_text__", exc))

    def confirm(self, question: str) -> bool:
        """Ask the person a yes/no question (No is the default)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Inspect", question,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def show_error(self, message: str) -> None:
        self.set_status(message, error=True)
        self.errorShown.emit(message)

    def set_status(self, text: str, error: bool = False) -> None:
        self.run_bar.status.setText(text)
        self.run_bar.status.setStyleSheet("color: #c02020" if error else "")
        self.run_bar.status.setToolTip(text)
