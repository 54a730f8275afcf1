"""Background jobs and side panels of the Inspect workspace: recipe files, applying the
recipe to a split (label maps to a folder), pre-labelling unlabelled images with the
run, accepting or rejecting pre-labels (undoable), review queues and the confusion
matrix. Every long job runs in the workspace's WorkerPool with progress and Cancel."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import ActionError, StudioError
from studio.gui.inspect.accept import accept_prelabels, reject_prelabels
from studio.gui.inspect.queues import QueueList
from studio.ml.inspect.session import confusion, top_k
from studio.ml.postprocess import load_recipe, save_recipe, save_run_recipe
from studio.ml.postprocess.batch import model_source, postprocess_images
from studio.ml.review import label_error_queue, next_to_label_queue, unlabelled_images
from studio.ml.tasks import task_of


class InspectJobs(QObject):
    """Owned by the workspace (`ws`); reads its session, project, pool and recipe."""

    def __init__(self, ws) -> None:
        super().__init__(ws)
        self.ws = ws
        self.task = None
        self.title = ""
        self.summary = None
        self.queues = {q: QueueList(q) for q in ("label-errors", "next-to-label")}
        for q in self.queues.values():
            q.computeRequested.connect(self.compute_queue)
            q.imageActivated.connect(self._open_from_queue)
        self.prelabels = QWidget()
        self.prelabel_list = QTreeWidget()
        self.prelabel_list.setRootIsDecorated(False)
        self.prelabel_list.setHeaderLabels(["Image", "Status", "Objects"])
        for signal in (self.prelabel_list.itemClicked, self.prelabel_list.itemActivated):
            signal.connect(lambda it, _c=0: ws.show_image(int(it.data(0, Qt.ItemDataRole.UserRole))))
        self.accept_button = QPushButton("Accept")
        self.reject_button = QPushButton("Reject")
        self.accept_button.clicked.connect(lambda: self.decide(True))
        self.reject_button.clicked.connect(lambda: self.decide(False))
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_prelabels)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Take back Inspect's last edit (an accept or a reject)")
        self.undo_button.clicked.connect(ws.undo_last)
        row = QGridLayout()  # two a row: the left column stays narrow on a laptop
        for i, b in enumerate((self.accept_button, self.reject_button, self.undo_button,
                               refresh)):
            row.addWidget(b, i // 2, i % 2)
        pl = QVBoxLayout(self.prelabels)
        pl.setContentsMargins(0, 0, 0, 0)
        about = QLabel("Images holding this run's pre-labels (model annotations). "
                       "Accept marks them done; Reject removes them. Undo takes either "
                       "back.")
        about.setWordWrap(True)  # a long line would widen the whole window
        pl.addWidget(about)
        pl.addLayout(row)
        pl.addWidget(self.prelabel_list)

    def tabs(self) -> list[tuple[str, QWidget]]:
        """(short title, panel): five tabs fit the left column of a 1366 px window."""
        return [("Errors", self.queues["label-errors"]),
                ("To label", self.queues["next-to-label"]), ("Pre-labels", self.prelabels)]

    TAB_TIPS = {"Errors": "Likely label errors of the split's labelled images",
                "To label": "Next to label: the project's unlabelled images, most uncertain "
                            "first",
                "Pre-labels": "Images holding this run's pre-labels: accept or reject them"}

    def recipe_box(self, panel) -> QWidget:
        box = QWidget()
        grid = QGridLayout()
        buttons = [("Load…", self.load_recipe_file), ("Save…", self.save_recipe_file),
                   ("Store with run", self.store_with_run), ("Reset", self.reset_recipe),
                   ("Apply to split → folder…", self.apply_to_split),
                   ("Pre-label all unlabelled", lambda: self.prelabel(selected=False)),
                   ("Pre-label selected", lambda: self.prelabel(selected=True))]
        self.buttons = {}
        for i, (text, slot) in enumerate(buttons):
            b = QPushButton(text)
            b.clicked.connect(slot)
            self.buttons[text] = b
            grid.addWidget(b, i // 3, i % 3)  # three a row: the column stays narrow
        self.buttons["Pre-label all unlabelled"].setToolTip(
            "Predict every unlabelled image of the project (all splits), apply the recipe "
            "and store the masks as this run's pre-labels, marked for review")
        self.buttons["Pre-label selected"].setToolTip(
            "The same for the unlabelled images selected in the image list")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Post-processing</b> (sliders never re-run the network)"))
        layout.addWidget(panel, 1)
        layout.addLayout(grid)
        return box

    # --- running jobs ------------------------------------------------------------------------
    def start(self, fn, on_result, title: str, key: str = "inspect-job", on_news=None):
        """Run fn(token) in the pool behind the run bar's progress and Cancel.

        fn reports (done, total), a line of text, or news: a tuple whose first item is a
        tag, given to `on_news` (its last two items counted as done, total)."""
        bar = self.ws.run_bar
        bar.show_progress(f"{title}…")

        def progress(value) -> None:
            if isinstance(value, str):  # a line of news, no count
                bar.show_progress(f"{title}: {value}")
                return
            if isinstance(value[0], str):
                if on_news is not None:
                    on_news(value)
                if len(value) < 3:
                    return
                value = value[-2:]
            done, total = value
            bar.show_progress(f"{title}: {done}/{total}", done, total)

        def done(value) -> None:
            bar.show_progress(None)
            self.ws.set_status(f"{title}: done.")
            on_result(value)

        self.task = self.ws.pool.submit(fn, with_token=True, key=key, on_result=done,
                                        on_error=self.ws.report_error, on_progress=progress)
        self.title = title
        return self.task

    def cancel(self) -> None:
        """Stop the running job (it stops between images); nothing it did is lost."""
        if self.task is not None and not self.task.done:
            self.task.cancel()
            self.ws.run_bar.show_progress(None)
            self.ws.set_status(f"{self.title}: cancelled.")

    def _need_session(self):
        s = self.ws.session
        if s is None:
            raise ActionError("Open a run and a split first (Open, top left).")
        return s

    def _guard(fn):  # noqa: N805 (decorator inside the class)
        def wrapper(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except StudioError as exc:
                self.ws.show_error(str(exc))
        return wrapper

    # --- recipe files ------------------------------------------------------------------------
    @_guard
    def load_recipe_file(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.ws, "Load recipe", "", "Recipe (*.json)")
        if path:
            self.ws.recipe_panel.set_recipe(load_recipe(path))

    @_guard
    def save_recipe_file(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.ws, "Save recipe", "recipe.json",
                                                  "Recipe (*.json)")
        if path:
            save_recipe(self.ws.recipe_panel.recipe(), path)
            self.ws.set_status(f"Saved the recipe to {path}.")

    @_guard
    def store_with_run(self) -> None:
        s = self._need_session()
        path = save_run_recipe(s.project, s.run_id, self.ws.recipe_panel.recipe())
        self.ws.set_status(f"Stored the recipe with run {s.run_id} ({path.name}); the CLI's "
                           f"postprocess uses it by default.")

    def reset_recipe(self) -> None:
        from studio.ml.postprocess import default_recipe

        self.ws.recipe_panel.set_recipe(default_recipe())

    # --- batch jobs --------------------------------------------------------------------------
    @_guard
    def apply_to_split(self, folder: str | None = None) -> None:
        s = self._need_session()
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.ws, "Folder for the label maps")
        if not folder:
            return
        ids = s.project.image_ids(split=s.split)
        self._batch(ids, out=folder, store=False, title=f"Applying the recipe to {s.split}")

    @_guard
    def prelabel(self, selected: bool = False, image_ids: list[int] | None = None) -> None:
        """Pre-label `image_ids`, the selected unlabelled images of the list, or (default)
        every unlabelled image of the project, whichever split it is in."""
        s = self._need_session()
        if image_ids is None and selected:
            # the session's entries know which images of the split have no labels
            unlabelled = {e.image_id for e in s.images if not e.labelled}
            image_ids = [i for i in self.ws.browser.selected_ids() if i in unlabelled]
            if not image_ids:
                raise ActionError("No unlabelled images among the selected ones.")
        if image_ids is None:
            project, task, class_ids = s.project, s.task, s.class_ids
            image_ids = lambda: [r.id for r in unlabelled_images(  # noqa: E731 (in the worker)
                project, task, class_ids, None)]
            title = f"Pre-labelling the project's unlabelled images with run {s.run_id}"
        else:
            title = f"Pre-labelling with run {s.run_id}"
        self._batch(image_ids, out=None, store=True, title=title)

    def _batch(self, ids, out, store: bool, title: str) -> None:
        s = self._need_session()
        if not task_of(s.task).label_map:
            raise ActionError("Recipes and pre-labels apply to semantic segmentation runs.")
        project, run_id, recipe, device = s.project, s.run_id, self.ws.recipe_panel.recipe(), \
            self.ws.device

        def job(token):
            todo = ids() if callable(ids) else ids
            if not todo:
                raise ActionError("Every image of the project has labels; nothing to "
                                  "pre-label.")
            return postprocess_images(project, run_id, todo, recipe, out=out, store=store,
                                      device=device,
                                      progress=lambda d, t: token.progress((d, t)),
                                      stop=lambda: token.cancelled)

        self.start(job, lambda summary: self._batch_done(summary, title), title)

    def _batch_done(self, summary, title: str) -> None:
        doc = self.ws.doc
        for image_id in summary.stored:
            if doc is not None:
                doc.annotationsChanged.emit(int(image_id))  # views of the store refresh
        parts = [f"{title}: {summary.images} image(s)"]
        if summary.written:
            parts.append(f"{len(summary.written)} label map(s) written")
        if summary.stored:
            parts.append(f"{len(summary.stored)} pre-labelled (marked for review)")
        if summary.skipped_labelled:
            parts.append(f"{len(summary.skipped_labelled)} with labels left alone")
        if summary.cancelled:
            parts.append("cancelled")
        self.ws.set_status("; ".join(parts) + ".")
        self.summary = summary
        self.refresh_prelabels()

    # --- pre-labels: accept / reject -------------------------------------------------------------
    def refresh_prelabels(self) -> None:
        s = self.ws.session
        self.prelabel_list.clear()
        if s is None:
            return
        for image_id, n in s.project.source_counts(model_source(s.run_id)).items():
            rec = s.project.image(image_id)
            item = QTreeWidgetItem([rec.name, rec.status, str(n)])
            item.setData(0, Qt.ItemDataRole.UserRole, rec.id)
            self.prelabel_list.addTopLevelItem(item)

    @_guard
    def decide(self, accept: bool, image_ids: list[int] | None = None) -> None:
        s, doc = self._need_session(), self.ws.doc
        if image_ids is None:
            image_ids = [it.data(0, Qt.ItemDataRole.UserRole)
                         for it in self.prelabel_list.selectedItems()]
        if not image_ids:
            raise ActionError("Select pre-labelled images in the list first.")
        done = []
        try:
            for image_id in image_ids:
                done.append((accept_prelabels if accept else reject_prelabels)(
                    doc, image_id, s.run_id))
        finally:  # those done are one step of Inspect's Undo, even if a later one failed
            self.ws.history.record(done)
            self.refresh_prelabels()
        self.ws.set_status(f"{'Accepted' if accept else 'Rejected'} the pre-labels of "
                           f"{len(done)} image(s) (Undo takes it back).")

    # --- review queues ----------------------------------------------------------------------------
    @_guard
    def compute_queue(self, queue: str) -> None:
        s = self._need_session()
        panel = self.queues[queue]
        project, run_id, split, device = s.project, s.run_id, s.split, self.ws.device
        options = panel.options()

        def job(token):
            if queue == "label-errors":
                news = {"on_epoch": lambda info: token.progress(
                    f"cross-validation fold model, epoch {info['epoch']}")}
                return label_error_queue(project, run_id, split, folds=options["folds"],
                                         epochs=options["epochs"], device=device,
                                         callbacks=news, stop=lambda: token.cancelled)
            return next_to_label_queue(project, run_id, None, device=device)  # every split

        panel.set_busy("Computing… (label errors may train cross-validation fold models)"
                       if queue == "label-errors" else
                       "Computing… (every unlabelled image of the project)")

        def done(result) -> None:
            panel.set_queue(result)
            self.ws.left_tabs.setCurrentWidget(panel)

        self.start(job, done, f"Review queue {queue}", key=f"inspect-queue-{queue}")

    def _open_from_queue(self, image_id: int, queue: str) -> None:
        self.ws.show_image(image_id, overlay="diff_post" if queue == "label-errors" else "heatmap")

    # --- classification ---------------------------------------------------------------------------
    def show_confusion(self, session) -> None:
        counts, cells = confusion(session)
        names = session.class_names
        rows = {}
        for e in session.images:
            if e.probabilities is not None:
                top = ", ".join(f"{n} {p:.2f}" for n, p in top_k(e.probabilities, names, 3))
                rows[e.image_id] = (e.name, names[e.given] if e.given >= 0 else "–", top)
        self.ws.confusion.set_data(counts, cells, names, rows)
