"""Flood fill and magic wand (cv2.floodFill on the displayed image).

fill: grows while neighbouring pixels differ by at most the tolerance (follows gradients).
wand: takes every connected pixel within the tolerance of the clicked pixel's colour.
Dragging horizontally with the button held changes the tolerance live (right = more);
the region is added on release as a new mask (semantic painting rules apply).
Huge images are filled inside a window of WINDOW x WINDOW pixels around the click.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent

from studio.gui.canvas.tools.base import Tool

WINDOW = 2048
PIXELS_PER_STEP = 2.0  # screen pixels of horizontal drag per tolerance step


def flood_region(image: np.ndarray, seed: tuple[int, int], tolerance: float,
                 fixed: bool) -> np.ndarray:
    """Bool mask of the region flood-filled from seed (x, y) with the given tolerance."""
    img = np.ascontiguousarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    if not img.flags.writeable:  # OpenCV's binding wants a writable image, even mask-only
        img = img.copy()
    h, w = img.shape[:2]
    mask = np.zeros((h + 2, w + 2), dtype=np.uint8)
    t = float(max(0.0, min(255.0, tolerance)))
    diff = (t, t, t) if img.ndim == 3 else (t,)
    flags = 4 | (255 << 8) | cv2.FLOODFILL_MASK_ONLY
    if fixed:
        flags |= cv2.FLOODFILL_FIXED_RANGE
    cv2.floodFill(img, mask, (int(seed[0]), int(seed[1])), 0, diff, diff, flags)
    return mask[1:-1, 1:-1] > 0


class FillTool(Tool):
    name = "fill"
    fixed_range = False
    tolerance = 16.0

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._seed: tuple[int, int] | None = None
        self._press_x = 0.0
        self._tol = self.tolerance
        self._window: tuple[int, int, np.ndarray] | None = None
        self._result: np.ndarray | None = None

    @property
    def busy(self) -> bool:
        return self._seed is not None

    def cancel(self) -> None:
        if self._seed is not None:
            self.canvas.paint_layer().clear()
        self._seed, self._window, self._result = None, None, None

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        w, h = self.canvas.image_size
        x, y = int(np.floor(pos.x())), int(np.floor(pos.y()))
        if not (0 <= x < w and 0 <= y < h):
            return True
        x0, y0 = max(0, min(x - WINDOW // 2, w - WINDOW)), max(0, min(y - WINDOW // 2, h - WINDOW))
        x1, y1 = min(w, x0 + WINDOW), min(h, y0 + WINDOW)
        self._window = (x0, y0, self.canvas.image_region(x0, y0, x1 - x0, y1 - y0))
        self._seed = (x, y)
        self._press_x = event.position().x()
        self._tol = self.tolerance
        c = QColor(self.canvas.active_color())
        c.setAlphaF(0.55)
        self.canvas.paint_layer().set_colors(c)
        self._update()
        return True

    def _update(self) -> None:
        x0, y0, img = self._window
        sx, sy = self._seed
        self._result = flood_region(img, (sx - x0, sy - y0), self._tol, self.fixed_range)
        layer = self.canvas.paint_layer()
        layer.clear()
        layer.set_region(x0, y0, self._result.view(np.uint8))
        self.canvas.message.emit(f"{self.name}: tolerance {self._tol:.0f} (drag left/right)")

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._seed is None:
            return False
        dx = event.position().x() - self._press_x
        tol = max(0.0, min(255.0, self.tolerance + dx / PIXELS_PER_STEP))
        if round(tol) != round(self._tol):
            self._tol = float(round(tol))
            self._update()
        return True

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self._seed is None:
            return False
        x0, y0, _ = self._window
        result = self._result
        self.tolerance = self._tol  # the next fill starts where this one ended
        self.cancel()
        if result is not None and result.any():
            self.commit_mask(x0, y0, result, text=f"{self.name.capitalize()}", new_object=True)
        return True


class WandTool(FillTool):
    name = "wand"
    fixed_range = True
    tolerance = 24.0

