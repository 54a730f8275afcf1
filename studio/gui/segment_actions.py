"""The Label workspace's click-to-segment commands: the model dialog, boxes to masks (this
image or the whole project) as a background job with progress and Cancel, and taking the
last such job back (it spans many images, so it is reverted as one job rather than through
an image's undo history)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from studio.core.errors import StudioError
from studio.gui.errors import show_error
from studio.gui.segment_settings import SEGMENT, SegmentModelDialog
from studio.gui.workers import run_with_progress
from studio.ml.segment.batch import boxes_to_masks, images_with_boxes, last_job, revert_job
from studio.ml.segment.engine import load_model


def _job(token, project, name, device, ids):
    model = load_model(name, device)
    return boxes_to_masks(project, model, ids, progress=lambda d, t: token.progress((d, t)),
                          cancelled=lambda: token.cancelled)


class SegmentActions:
    """Connects the segment actions of `Actions` to the workspace's document and canvas."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.loaded = False
        self.last_job = None
        a = workspace.actions
        a.segment_model.triggered.connect(self.show_model_dialog)
        a.boxes_to_masks.triggered.connect(self.ask_boxes_to_masks)
        a.revert_boxes_to_masks.triggered.connect(self.revert_last)

    def _settings(self):
        return getattr(self.ws.window(), "settings", None)

    def load_settings(self) -> None:
        """Read the saved segment settings once (the window's settings, when it has any)."""
        settings = self._settings()
        if not self.loaded and settings is not None:
            self.loaded = True
            SEGMENT.load(settings)

    def attach(self, canvas) -> None:
        tool = canvas.tool_named("segment")
        tool.on_missing_model = lambda _name: self.show_model_dialog()

    def show_model_dialog(self) -> SegmentModelDialog | None:
        if self.ws.doc is None:
            return None
        dialog = SegmentModelDialog(self._settings(), self.ws)
        dialog.open()
        return dialog

    def ask_boxes_to_masks(self) -> None:
        doc = self.ws.doc
        if doc is None or self.ws.canvas is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Boxes to masks",
                          f"Turn every box into a mask object with {SEGMENT.config.model}? "
                          "The boxes stay; the masks are marked for review and the job can "
                          "be taken back as a whole (Tools > Revert boxes to masks).",
                          parent=self.ws)
        this = box.addButton("This image", QMessageBox.ButtonRole.AcceptRole)
        whole = box.addButton("Whole project", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is this and doc.image_id is not None:
            self.run_boxes_to_masks([doc.image_id])
        elif box.clickedButton() is whole:
            self.run_boxes_to_masks(None)

    def run_boxes_to_masks(self, image_ids):
        """Start the job (None: every image with a box); returns the worker task."""
        doc, canvas = self.ws.doc, self.ws.canvas
        ids = images_with_boxes(doc.project) if image_ids is None else list(image_ids)
        if not ids:
            self.ws.message.emit("No image with boxes to segment.", 5000)
            return None
        c = SEGMENT.config
        return run_with_progress(self.ws, canvas.workers, f"Boxes to masks ({c.model})...",
                                 _job, doc.project, c.model, c.device, ids,
                                 on_result=self._done, cancellable=True)

    def _done(self, job) -> None:
        self.last_job = job
        self._refresh()
        self.ws.message.emit(
            f"{job.masks} mask(s) from {job.boxes} box(es) in {job.images_done} image(s), "
            f"marked for review; Tools > Revert boxes to masks takes the job back.", 10000)

    def _refresh(self) -> None:
        doc = self.ws.doc
        if doc is not None:
            doc.reload_image()
            self.ws.images_panel.refresh()

    def revert_last(self) -> int:
        doc = self.ws.doc
        if doc is None:
            return 0
        try:
            job = last_job(doc.project)
            removed = revert_job(doc.project, job)
        except StudioError as exc:
            show_error(self.ws, exc)
            return 0
        self._refresh()
        self.ws.message.emit(f"Boxes to masks taken back: {removed} mask(s) removed.", 5000)
        return removed
