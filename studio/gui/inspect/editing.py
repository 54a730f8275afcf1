"""Overlays, brush, region picking and accepting of the Inspect workspace (a mixin of
`InspectWorkspace`, which provides the session, the current result, the view and its
bars)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from studio.core.errors import ActionError, StudioError
from studio.gui.inspect.accept import push_plan
from studio.ml.inspect import overlays as ov
from studio.ml.inspect.accept import component_at, plan_accept_mask
from studio.ml.tasks import task_of


class OverlayEditing:
    """What the person sees over the image and does to the post-processed mask."""

    # --- overlays ---------------------------------------------------------------------------------
    def overlay_array(self, kind: str) -> np.ndarray | None:
        """The RGBA picture of one overlay kind for the current image (None: nothing)."""
        r = self.result
        if r is None or self.session is None or kind == "none":
            return None
        heat = max(self.view_bar.heat_class.currentData() or 0, 0)
        out = r.overlays[(kind, heat)]
        if kind == "post" and self.component is not None and out is not None:
            out = out.copy()
            comp = self.component
            if comp.shape != out.shape[:2]:  # a huge image's overlay is shown downscaled
                comp = cv2.resize(comp.view(np.uint8), (out.shape[1], out.shape[0]),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
            out[comp] = (255, 255, 0, 255)
        return out

    def _shown_kinds(self) -> list[str]:
        vb = self.view_bar
        return [vb.first.currentData()] + (
            [vb.second.currentData()] if self.view.mode != "overlay" else [])

    def _mask_changed(self, rect: tuple[int, int, int, int]) -> None:
        """A brush dab changed `rect` (y0, y1, x0, x1) of the mask: the overlays drawn from
        the mask get that rectangle redrawn, in the cache and on the canvas; an overlay
        shown downscaled (a huge image) or with a picked region is dropped and redrawn whole
        in the worker."""
        r = self.result
        if r is None:
            return
        y0, y1, x0, x1 = rect
        colors, hidden = self.class_colors(), self.view_bar.hidden_classes()
        target = r.prediction.target
        patches: dict[str, np.ndarray] = {}
        for key in [k for k in r.overlays if k[0] in ov.MASK_KINDS]:
            rgba = r.overlays[key]
            if rgba is None or rgba.shape[:2] != r.mask.shape or self.component is not None:
                del r.overlays[key]
                continue
            rgba[y0:y1, x0:x1] = patches[key[0]] = ov.mask_patch(
                key[0], r.mask[y0:y1, x0:x1], None if target is None else target[y0:y1, x0:x1],
                colors, hidden)
        shown = self._shown_kinds()
        if any(k in ov.MASK_KINDS and k not in patches for k in shown):
            self.render_overlays()  # dropped above: drawn whole in the worker
            return
        first, second = (shown + [None])[:2]
        self.view.patch_overlays(patches.get(first), patches.get(second), x0, y0)

    def render_overlays(self) -> None:
        """Show the chosen overlays; one not drawn yet for this image is drawn in the worker
        (which shows it when done)."""
        r, vb = self.result, self.view_bar
        heat = max(vb.heat_class.currentData() or 0, 0)
        if r is not None and self.session is not None and any(
                k != "none" and (k, heat) not in r.overlays for k in self._shown_kinds()):
            self._request_image()
            return
        first, second = vb.first.currentData(), vb.second.currentData()
        self.view.set_overlays(self.overlay_array(first),
                               self.overlay_array(second) if self.view.mode != "overlay"
                               else None)
        heat = "heatmap" in (first, second if self.view.mode != "overlay" else None)
        self.colorbar.setVisible(heat)
        vb.heat_class.setEnabled(heat)
        if heat:
            self.colorbar.set_title(vb.heat_class.currentText())

    def class_colors(self) -> list[tuple[int, int, int]]:
        by_id = {c.id: c.color for c in self.project.classes()}
        return [ov.hex_to_rgb(by_id.get(cid, "#ff00ff")) for cid in self.session.class_ids]

    def _on_classes_shown(self) -> None:
        """A class was shown or hidden: every overlay of the image is drawn again."""
        if self.result is not None:
            self.result.overlays.clear()
        self.render_overlays()

    def _on_mode(self) -> None:
        self.view.set_mode(self.view_bar.mode.currentData())
        self.render_overlays()

    # --- brush, pick, accept -------------------------------------------------------------------
    def _on_brush_toggled(self, on: bool) -> None:
        if on:
            self.view_bar.pick.setChecked(False)
        self.view.set_brush_mode(on)

    def _on_brushed(self, x: float, y: float, erase: bool) -> None:
        r, s = self.result, self.session
        if r is None or s is None:
            return
        h, w = r.mask.shape
        rad = self.view_bar.brush_size.value() / 2.0
        x0, y0 = max(int(math.floor(x - rad)), 0), max(int(math.floor(y - rad)), 0)
        x1, y1 = min(int(math.ceil(x + rad)) + 1, w), min(int(math.ceil(y + rad)) + 1, h)
        if x1 <= x0 or y1 <= y0:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        patch = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= rad * rad
        background = self.recipe_panel.recipe()["background"]
        value = (ov.UNLABELLED if background is None else background) if erase else \
            int(self.view_bar.brush_class.currentData())
        s.paint(r.image_id, (h, w), x0, y0, patch, value)
        r.mask[y0:y1, x0:x1][patch] = value
        self._mask_changed((y0, y1, x0, x1))

    def _on_clicked(self, x: float, y: float) -> None:
        if not self.view_bar.pick.isChecked() or self.result is None:
            return
        # any shown class may be picked (the first one too); a hidden one may not
        mask, hidden = self.result.mask, set(self.view_bar.hidden_classes())
        self.component = component_at(mask, int(x), int(y), background=None)
        if self.component is not None and int(mask[int(y), int(x)]) in hidden:
            self.component = None
        self.view_bar.accept_region.setEnabled(self.component is not None)
        self.render_overlays()

    def accept(self, region: bool = False) -> None:
        """Accept the post-processed mask (or the picked region) into the image's labels;
        labels a person made are replaced only after they agree."""
        r, s = self.result, self.session
        if r is None or s is None or self.doc is None:
            self.show_error("Open a run and an image first.")
            return
        try:
            plan = plan_accept_mask(self.project, r.image_id, r.mask, s.class_ids, s.run_id,
                                    self.component if region else None)
            cmd = push_plan(self.doc, plan, self.confirm)
        except StudioError as exc:
            self.show_error(str(exc))
            return
        if cmd is None:
            self.set_status("Not accepted: the image keeps its labels.")
            return
        self.history.record([cmd])
        if not region:
            s.clear_edits(r.image_id)
        self.component = None
        self.view_bar.accept_region.setEnabled(False)
        self.set_status(f"{plan.text}: written into the labels, marked for review (Undo "
                        "takes it back).")

    def undo_last(self) -> None:
        """Undo Inspect's newest edit (an accept, a pre-label decision), whichever image it
        changed."""
        if self.doc is None:
            return
        try:
            text = self.history.undo(self.doc)
        except StudioError as exc:
            self.show_error(str(exc))
            return
        self.set_status(f"Undone: {text}.")
        if hasattr(self, "jobs"):
            self.jobs.refresh_prelabels()

    def _on_annotations_changed(self, image_id: int) -> None:
        s = self.session
        if s is not None and self.views.detection:
            self.detection.annotations_changed(image_id)
            return
        if s is None or not task_of(s.task).label_map or s.entry(image_id) is None:
            return
        self.pool.submit(s.refresh_target, image_id, key=("inspect-target", image_id),
                         on_result=lambda _=None: self._after_target(image_id),
                         on_error=self.report_error)

    def _after_target(self, image_id: int) -> None:
        self.request_updates()

    def current_mask(self) -> np.ndarray:
        """The current image's post-processed mask, brush edits included (a copy)."""
        if self.result is None:
            raise ActionError("No image is shown.")
        return self.result.mask.copy()

