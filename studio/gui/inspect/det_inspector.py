"""The Inspect workspace's detection side: joins a `DetectionSession` (raw detections
cached per image), the `DetectionPanel` (sliders, objects list, readouts, accept) and the
boxes drawn on the view. Every slider move refilters in the workspace's WorkerPool (the
current image first, then the split; the newest request supersedes older ones) and
never runs the network."""

from __future__ import annotations

import math

from PySide6.QtCore import QObject

from studio.core.errors import ActionError, StudioError
from studio.gui.inspect.accept import push_plan
from studio.gui.inspect.det_overlay import DetectionLayer, instance_overlay
from studio.gui.inspect.det_panel import DetectionPanel
from studio.ml.inspect.accept import plan_accept_objects
from studio.ml.inspect.detections import DetectionParams, DetectionResult, DetectionSession
from studio.ml.tasks import task_kinds


class DetectionInspector(QObject):
    """Owned by the workspace (`ws`): reads its document, pool, view and browser, and
    emits its `imageShown` / `splitUpdated` as the semantic side does."""

    def __init__(self, ws) -> None:
        super().__init__(ws)
        self.ws = ws
        self.panel = DetectionPanel()
        self.layer = DetectionLayer(ws.view.left.scene())
        self.session: DetectionSession | None = None
        self.result: DetectionResult | None = None
        self.rows: list = []
        self.split: dict | None = None
        self.colors: list[tuple[int, int, int]] = []  # class colours, read per image shown
        self._split_task = None
        self._split_pending = False
        p = self.panel
        p.paramsChanged.connect(self._on_params)
        p.displayChanged.connect(self._on_display)
        p.objectSelected.connect(self.select)
        p.accept_all.clicked.connect(lambda: self.accept(selected=False))
        p.accept_selected.clicked.connect(lambda: self.accept(selected=True))
        p.undo.clicked.connect(ws.undo_last)
        ws.view.left.clicked.connect(self._on_canvas_click)

    # --- session ----------------------------------------------------------------------------
    def start(self, session: DetectionSession, split: bool = True) -> None:
        """A detection session opened: sliders at the run's thresholds, split figures
        (`split` False: its images are still being predicted; `split_ready` follows)."""
        self.session, self.result, self.rows, self.split = session, None, [], None
        self.panel.set_kinds(["box", "mask"] if session.masks else ["box"])
        self.panel.set_params(session.default_params)
        self.panel.set_run_figures(session.run_metrics)
        self.panel.set_objects([], session.class_names)
        view = self.ws.view
        view.set_mode("overlay")
        view.set_opacity(1.0)  # the masks carry their own transparency
        self._split_pending = False
        if split:
            self._request_split()

    def split_ready(self) -> None:
        """Every image of the split is predicted: its figures (and the browser's F1)."""
        if self.session is not None:
            self._on_params(self.params())

    def clear(self) -> None:
        if self._split_task is not None:
            self._split_task.cancel()
        self.session, self.result, self.rows, self.split = None, None, [], None
        self.layer.selected = None
        self.layer.clear()
        self.panel.set_objects([], [])
        self.panel.set_image_figures(None)
        self.panel.set_split_figures(None)
        self.panel.set_run_figures(None)
        self.panel.set_updating(False)
        self.panel.set_params(DetectionParams())  # no run's thresholds, no split sliders

    def params(self) -> DetectionParams:
        return self.panel.params()

    # --- the current image --------------------------------------------------------------------
    def show_image(self, image_id: int) -> None:
        self.colors = self.ws.class_colors()  # a class may have been recoloured meanwhile
        if self.result is not None and self.result.image_id != image_id:
            self.result, self.rows = None, []
            self.layer.selected = None
            self.layer.clear()
            self.panel.set_objects([], self.session.class_names)
            self.panel.set_image_figures(None)
        self._request_image()

    def _request_image(self) -> bool:
        s, image_id = self.session, self.ws.image_id
        if s is None or image_id is None:
            return False
        params, colors = self.params(), list(self.colors)
        display = self.panel.display()

        def job(token):
            result = s.image_result(image_id, params)
            token.check()
            result.overlay = instance_overlay(result, colors, display["color_by"],
                                              display["truth"])
            return result

        def failed(exc: BaseException) -> None:
            self._then_split()
            self.ws.report_error(exc)

        self.ws.pool.submit(job, with_token=True, key="inspect-image", on_result=self._on_image,
                            on_error=failed)
        return True

    def _on_image(self, result: DetectionResult | None) -> None:
        self._then_split()
        if result is None or self.session is None or result.image_id != self.ws.image_id:
            return
        keep = self.layer.selected
        self.result = result
        self.rows = result.rows()
        self.panel.set_objects(self.rows, self.session.class_names)
        self.panel.set_image_figures(result.figures)
        listed = {(r.source, r.index) for r in self.rows}
        self.layer.selected = keep if keep in listed or (
            keep is not None and keep[0] == "ground truth") else None
        self.render()
        if keep in listed:
            self.panel.select_key(keep)  # the list shows the same selection again
        f = result.figures
        e = self.session.entry(result.image_id)
        name = e.name if e is not None else str(result.image_id)
        waiting = "; its objects are a model's, waiting for review: left out of the split " \
            "figures" if result.image_id in self.session.pending else ""
        self.ws.set_status(f"{name}: {len(result.matching.kept)} detection(s) kept, "
                           f"{f['tp']} matched, {f['fp']} false positive(s), {f['fn']} "
                           f"missed{waiting}")
        self.ws.imageShown.emit(result.image_id)

    def render(self) -> None:
        r = self.result
        names = self.session.class_names if self.session is not None else []
        self.layer.show(r, self.rows, names, self.colors, **self.panel.display())
        self.ws.view.set_overlays(None if r is None else r.overlay, None)

    def _on_display(self) -> None:
        if self.session is not None and self.session.masks:
            self._request_image()  # the mask picture is drawn in the worker
        else:
            self.render()

    def select(self, source: str, index: int) -> None:
        """Emphasise one object; centre the view on it unless all of it is in sight."""
        rect = self.layer.select((source, int(index)))
        if rect is None:
            return
        canvas = self.ws.view.left
        seen = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
        if not seen.contains(rect):
            canvas.centerOn(rect.center())
            canvas.auto_fit = False

    def _on_canvas_click(self, x: float, y: float) -> None:
        """A click on the image selects the smallest listed object under it."""
        if self.session is None or not self.rows:
            return
        under = [r for r in self.rows if r.box[0] <= x <= r.box[2] and r.box[1] <= y <= r.box[3]]
        if under:
            best = min(under, key=lambda r: (r.box[2] - r.box[0]) * (r.box[3] - r.box[1]))
            self.panel.select_key((best.source, best.index))

    # --- sliders -> worker -> readouts --------------------------------------------------------
    def _on_params(self, _params: DetectionParams) -> None:
        if self.session is None:
            return
        self.panel.set_updating(True)
        self._split_pending = True
        if self._split_task is not None:
            self._split_task.cancel()  # its figures are for older thresholds: never shown
        if not self._request_image():
            self._then_split()

    def _then_split(self) -> None:
        if self._split_pending:
            self._split_pending = False
            self._request_split()

    def _request_split(self) -> None:
        s = self.session
        if s is None:
            return
        params = self.params()
        self.panel.set_updating(True)

        def job(token):
            out = s.split_figures(params, cancelled=lambda: token.cancelled)
            token.check()
            return out

        self._split_task = self.ws.pool.submit(job, with_token=True, key="inspect-split",
                                               on_result=self._on_split,
                                               on_error=self.ws.report_error)

    def _on_split(self, figures: dict | None) -> None:
        s = self.session
        if figures is None or s is None:
            return
        self.split = figures
        self.panel.set_split_figures(figures)
        box = figures["map"].get("box", {})
        self.panel.set_updating(False, f"Split: {figures['images']} image(s); F1 "
                                       f"{_num(figures['f1'])}; box mAP@0.5 "
                                       f"{_num(box.get('map50'))} (mAPs at this NMS, "
                                       f"any score)")
        f1: dict = {i: math.nan for i in s.pending}  # no ground truth: no figure
        errors: dict = {i: "–" for i in s.pending}
        for image_id, (value, n) in figures["per_image"].items():
            e = s.entry(image_id)
            f1[image_id] = value if e is not None and e.labelled else math.nan
            errors[image_id] = int(n)
        browser = self.ws.browser
        browser.set_values(2, errors)
        browser.set_values(1, f1, resort=True)
        self.ws.splitUpdated.emit()

    # --- accept -------------------------------------------------------------------------------
    def accept(self, selected: bool = False) -> None:
        """The kept detections (or the selected one) into the image's labels."""
        r, s, doc = self.result, self.session, self.ws.doc
        try:
            if r is None or s is None or doc is None:
                raise ActionError("Open a run and an image first.")
            if selected:
                row = self.panel.selected_row()
                if row is None or row.source != "prediction":
                    raise ActionError("Select a detection in the objects list first.")
                indices = [row.index]
            else:
                indices = r.kept_objects()
            raw = r.raw
            objects = []
            for i in indices:
                if raw.masks is not None:
                    objects.append((int(raw.classes[i]), "mask", raw.masks[i],
                                    float(raw.scores[i])))
                else:
                    x1, y1, x2, y2 = (float(v) for v in raw.boxes[i])
                    objects.append((int(raw.classes[i]), "box", (x1, y1, x2 - x1, y2 - y1),
                                    float(raw.scores[i])))
            plan = plan_accept_objects(doc.project, r.image_id, objects, s.class_ids,
                                       s.run_id, None if selected else task_kinds(s.task))
            cmd = push_plan(doc, plan, self.ws.confirm)
        except StudioError as exc:
            self.ws.show_error(str(exc))
            return
        if cmd is None:
            self.ws.set_status("Not accepted: the image keeps its labels.")
            return
        self.ws.history.record([cmd])
        what = "the selected detection" if selected else f"{len(objects)} detection(s)"
        self.ws.set_status(f"Accepted {what} into the labels (marked for review).")

    def annotations_changed(self, image_id: int) -> None:
        """An image's objects changed (accept, undo, labelling): its ground truth is read
        again and the figures follow."""
        s = self.session
        if s is None or image_id not in s.raw and s.entry(image_id) is None:
            return

        def refreshed(_=None) -> None:
            if self.session is s:
                self._on_params(self.params())

        self.ws.pool.submit(s.refresh_ground_truth, image_id, key=("inspect-target", image_id),
                            on_result=refreshed, on_error=self.ws.report_error)


def _num(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.3f}"
