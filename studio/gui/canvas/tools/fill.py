"""Flood fill and magic wand (studio.core.assists on the displayed image, in a worker).

fill: grows while neighbouring pixels differ by at most the tolerance (follows gradients).
wand: takes every connected pixel within the tolerance of the clicked pixel's colour.
The starting tolerance comes from the noise around the click (so it suits noisy
micrographs and clean photos alike); dragging horizontally with the button held changes
it live (right = more), and the value is drawn beside the cursor while dragging. A drag
is remembered as a ratio to the noise, so the next click on another image starts alike. The
region is added on release as a new mask (semantic painting rules apply). Huge images are
filled inside a window of WINDOW x WINDOW pixels around the click. Reading the pixels and
filling run on the canvas's worker; the newest tolerance wins.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsSimpleTextItem

from studio.core.assists import default_tolerance, flood_region, noise_sigma, smooth_for_flood
from studio.gui.canvas.tools.base import Tool

WINDOW = 2048
PIXELS_PER_STEP = 2.0  # screen pixels of horizontal drag per tolerance step


def _start(canvas, seed, window, tool: str, fixed: bool, scale: float) -> dict:
    """Worker: read the window's pixels, pick the tolerance (the noise-based default times
    `scale`), fill once."""
    x0, y0, w, h = window
    image = canvas.image_region(x0, y0, w, h)
    local = (seed[0] - x0, seed[1] - y0)
    sigma = noise_sigma(image, local)
    tol = float(round(min(255.0, default_tolerance(image, local, tool) * scale)))
    smoothed = smooth_for_flood(image, sigma)
    return dict(smoothed=smoothed, tolerance=tol,
                result=flood_region(image, local, tol, fixed, smoothed))


def _refill(smoothed, local, tol: float, fixed: bool) -> dict:
    return dict(tolerance=tol, result=flood_region(smoothed, local, tol, fixed, smoothed))


class FillTool(Tool):
    name = "fill"
    fixed_range = False

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        # each click's tolerance: the local noise's default times this (dragging sets it)
        self.tolerance_scale = 1.0
        self._seed: tuple[int, int] | None = None
        self._press_x = 0.0
        self._tol = 0.0
        self._base_tol = 0.0
        self._origin = (0, 0)
        self._smoothed: np.ndarray | None = None
        self._result: np.ndarray | None = None
        self._result_tol: float | None = None
        self._commit_pending = False
        self._label: QGraphicsSimpleTextItem | None = None
        self._label_box: QGraphicsRectItem | None = None

    @property
    def busy(self) -> bool:
        return self._seed is not None

    def cancel(self) -> None:
        if self._seed is not None:
            self.canvas.paint_layer().clear()
        self._seed, self._smoothed, self._result = None, None, None
        self._commit_pending = False
        self._show_label(None)

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        w, h = self.canvas.image_size
        x, y = int(np.floor(pos.x())), int(np.floor(pos.y()))
        if not (0 <= x < w and 0 <= y < h):
            return True
        self.cancel()
        x0, y0 = max(0, min(x - WINDOW // 2, w - WINDOW)), max(0, min(y - WINDOW // 2, h - WINDOW))
        x1, y1 = min(w, x0 + WINDOW), min(h, y0 + WINDOW)
        self._origin, self._seed = (x0, y0), (x, y)
        self._press_x = event.position().x()
        self._result_tol = None
        c = QColor(self.canvas.active_color())
        c.setAlphaF(0.55)
        self.canvas.paint_layer().set_colors(c)
        self.canvas.workers.submit(
            _start, self.canvas, (x, y), (x0, y0, x1 - x0, y1 - y0), self.name,
            self.fixed_range, self.tolerance_scale, key=self.name, on_result=self._on_started,
            on_error=self._on_failed)
        self._show_label(pos, "…")
        return True

    def _on_started(self, out: dict) -> None:
        if self._seed is None:
            return
        self._smoothed = out["smoothed"]
        self._base_tol = self._tol = out["tolerance"]
        self._on_filled(out)

    def _on_failed(self, exc: BaseException) -> None:
        self.cancel()
        self.report(exc)

    def _on_filled(self, out: dict) -> None:
        if self._seed is None:
            return
        self._result, self._result_tol = out["result"], out["tolerance"]
        layer = self.canvas.paint_layer()
        layer.clear()
        layer.set_region(*self._origin, self._result.view(np.uint8))
        self.canvas.message.emit(f"{self.name}: tolerance {self._result_tol:.0f} "
                                 "(drag left/right)")
        if self._label is not None:
            self._label.setText(f"tolerance {self._result_tol:.0f}")
            r = self._label.boundingRect()
            self._label_box.setRect(0, 0, r.width() + 8, r.height() + 4)
        if self._commit_pending and self._result_tol == self._tol:
            self._commit()

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._seed is None:
            return False
        if self._smoothed is None:  # the first fill is still running
            return True
        dx = event.position().x() - self._press_x
        tol = float(round(max(0.0, min(255.0, self._base_tol + dx / PIXELS_PER_STEP))))
        self._show_label(pos, f"tolerance {tol:.0f}")
        if tol != self._tol:
            self._tol = tol
            x0, y0 = self._origin
            local = (self._seed[0] - x0, self._seed[1] - y0)
            self.canvas.workers.submit(_refill, self._smoothed, local, tol, self.fixed_range,
                                       key=self.name, on_result=self._on_filled,
                                       on_error=self._on_failed)
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._seed is None:
            return False
        self._commit_pending = True
        if self._result is not None and self._result_tol == self._tol:
            self._commit()
        return True  # else committed when the newest fill arrives

    def _commit(self) -> None:
        result, (x0, y0) = self._result, self._origin
        if self._smoothed is not None and self._tol != self._base_tol:
            # dragged: later clicks keep the same ratio to their own image's noise
            self.tolerance_scale *= max(self._tol, 1.0) / max(self._base_tol, 1.0)
        self.cancel()
        if result is not None and result.any():
            self.commit_mask(x0, y0, result, text=f"{self.name.capitalize()}", new_object=True)

    @property
    def tolerance_text(self) -> str:
        """What the canvas shows beside the cursor now ("" when nothing)."""
        return self._label.text() if self._label is not None else ""

    def _show_label(self, pos: QPointF | None, text: str = "") -> None:
        """The tolerance drawn beside the cursor while the button is held."""
        if pos is None:
            if self._label_box is not None:
                self.canvas.scene().removeItem(self._label_box)
                self._label_box = self._label = None
            return
        if self._label_box is None:  # light text on a dark plate: readable on any image
            self._label_box = QGraphicsRectItem()
            self._label_box.setBrush(QColor(20, 20, 20, 200))
            self._label_box.setPen(Qt.PenStyle.NoPen)
            self._label_box.setFlag(QGraphicsRectItem.GraphicsItemFlag.ItemIgnoresTransformations)
            self._label_box.setZValue(2001)
            self._label = QGraphicsSimpleTextItem(self._label_box)
            self._label.setBrush(QColor("yellow"))
            self._label.setPos(4, 2)
            self.canvas.scene().addItem(self._label_box)
        self._label.setText(text)
        r = self._label.boundingRect()
        self._label_box.setRect(0, 0, r.width() + 8, r.height() + 4)
        self._label_box.setPos(pos + QPointF(self.screen_tol(14), self.screen_tol(14)))


class WandTool(FillTool):
    name = "wand"
    fixed_range = True
