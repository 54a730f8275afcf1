"""Opening a run in the Inspect workspace, and keeping it current.

A run of any task is shown as soon as its model is loaded and the split listed: the
first labelled image is predicted first and shown at once, the others stream in (their
score fills the browser as each lands: Dice, p(label) and the predicted class, or F1 and
the errors); when all are in, the split readouts follow (the confusion matrix of a
classification run, the figures of a detection run) and the browser ranks the images
worst first, moving to the worst one unless the person chose another meanwhile. An open session
whose run saved a newer checkpoint (training went on, ended, resumed) is said to be stale,
with Refresh beside it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from studio.core.errors import ActionError
from studio.gui.inspect.task_views import views_for

STALE_CHECK_MS = 3000  # how often an open session asks whether its checkpoint changed


class SessionOpener(QObject):
    """Owned by the workspace (`ws`): opens runs in its pool, streams predictions into it,
    watches the run's checkpoint."""

    def __init__(self, ws) -> None:
        super().__init__(ws)
        self.ws = ws
        self.task = None
        self.auto_image: int | None = None  # the image shown before the ranking was known
        self.stale_timer = QTimer(self)
        self.stale_timer.setInterval(STALE_CHECK_MS)
        self.stale_timer.timeout.connect(self.check_stale)

    # --- opening ----------------------------------------------------------------------------
    def open_run(self, run_id: int, split: str) -> None:
        """Predict the split with the run in the background, showing it as it comes."""
        ws = self.ws
        if ws.project is None:
            raise ActionError("Open a project first.")
        ws.close_session()
        project, device, budget = ws.project, ws.device, ws.budget

        def job(token):  # the run's task picks its session (an unknown run: an error shown)
            views = views_for(project.run(run_id).task)
            prepare, stream, finish = views.stages()
            session = prepare(project, run_id, split, budget, device)
            token.progress(("session", session))
            names = session.class_names

            def landed(entry, done, total) -> None:  # in the worker: figures for the list
                values = {1: entry.score}
                if entry.probabilities is not None:  # classification: the predicted class
                    values[2] = names[int(entry.probabilities.argmax())]
                errors = getattr(session, "errors", {}).get(entry.image_id)
                if errors is not None:  # detection: false positives + missed
                    values[2] = int(errors)
                token.progress(("image", entry.image_id, values, done, total))

            stream(session, token.check, landed)
            return finish(session)

        ws.run_bar.show_progress(f"Predicting the {split} split with run {run_id}…")
        self.auto_image = None
        self.task = ws.jobs.start(job, self._on_opened, "Predicting", key="inspect-open",
                                  on_news=self._on_news)

    def _on_news(self, news: tuple) -> None:
        ws = self.ws
        if news[0] == "session":  # listed, nothing predicted: show it, first image first
            session = news[1]
            ws.show_session(session, complete=False)
            first = next((e.image_id for e in session.images if e.labelled), None)
            if first is not None:
                self.auto_image = first
                ws.show_image(first)
        elif news[0] == "image" and ws.session is not None:
            _tag, image_id, values, _done, _total = news
            for column, value in values.items():
                ws.browser.set_values(column, {image_id: value})

    def _on_opened(self, session) -> None:
        ws = self.ws
        if ws.session is not session:  # shown and refilled meanwhile (another run opened)
            return
        views = ws.views
        classification = views.left_tab == "confusion"
        ws.browser.fill(session.images, classification, session.class_names,
                        views.browser_headers)
        ranked = ws.browser.image_ids()
        if ranked and ws.image_id in (None, self.auto_image):
            ws.show_image(ranked[0])  # the worst, now that it is known
        elif ws.image_id is not None:
            ws.browser.select_image(ws.image_id)
        ws.set_status(session_text(session))
        if classification:  # the confusion matrix, now that every image is in
            ws.jobs.show_confusion(session)
            if ws.left_tabs.currentWidget() is ws.browser:  # unless another tab was chosen
                ws.left_tabs.setCurrentWidget(ws.confusion)
        if views.detection:
            ws.browser.set_values(2, dict(session.errors))
            ws.detection.split_ready()  # the split figures, now that the split is in
        else:
            ws.request_updates()  # the split readouts, now that the split is in
        ws.sessionOpened.emit()

    # --- staleness --------------------------------------------------------------------------
    def start_watching(self) -> None:
        self.ws.run_bar.show_stale(None)
        self.stale_timer.start()

    def stop_watching(self) -> None:
        self.stale_timer.stop()
        self.ws.run_bar.show_stale(None)

    def check_stale(self) -> bool:
        """Say so when the run saved a newer checkpoint than the one the predictions
        shown come from (training went on, ended or resumed), with Refresh beside it."""
        s, project = self.ws.session, self.ws.project
        if s is None or project is None or project.closed:  # nothing open to go stale
            self.stop_watching()
            return False
        stale = s.is_stale()
        self.ws.run_bar.show_stale(
            f"Stale: these predictions come from run {s.run_id}'s checkpoint of epoch "
            f"{s.epoch}; the run has saved a newer one since. Refresh to predict again."
            if stale else None)
        if stale:
            self.stale_timer.stop()  # said once; Refresh (or another run) starts it again
            self.ws.refresh_runs()  # the run's status in the list too (finished, stopped)
        return stale

    def refresh(self) -> None:
        """Open the same run and split again (the run's current checkpoint)."""
        s = self.ws.session
        if s is not None:
            self.open_run(s.run_id, s.split)


def session_text(session) -> str:
    """The status line of an opened session: its run, split and images."""
    n_lab = sum(e.labelled for e in session.images)
    text = (f"Run {session.run_id}, {session.split}: {n_lab} labelled and "
            f"{len(session.images) - n_lab} unlabelled image(s)")
    if session.budget_skipped:
        text += (f"; split figures cover {n_lab - session.budget_skipped} (memory budget "
                 f"reached)")
    return text
