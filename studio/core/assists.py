"""Labelling assists without a GUI: flood fill, magic wand and GrabCut on image pixels.

The canvas runs these in a worker and shows their results; nothing here knows Qt.

Tolerances are relative to the image's local noise: a fixed grey-level step that suits a
clean photo fills five pixels of a noisy electron micrograph. `noise_sigma` estimates the
noise around the clicked point from differences of neighbouring pixels (robust to edges),
and `default_tolerance` scales it for the fill (neighbour steps) and the wand (distance
to the clicked colour).
"""

from __future__ import annotations

import cv2
import numpy as np

from studio.core.errors import GeometryError

NOISE_RADIUS = 48  # half side of the window where the local noise is measured
# Chosen on ISBI 2012 EM slices (random clicks inside cells): the fill then takes a median
# ~300 px of the cell instead of 5 without leaking through membranes, the wand ~5000 px
# instead of ~100. A gradient-following fill is fragile on such images: larger factors
# leak into the whole slice.
FILL_NOISE_FACTOR = 0.3  # fill: neighbouring (smoothed) pixels differ by <= this many sigmas
WAND_NOISE_FACTOR = 2.0  # wand: pixels within this many sigmas of the smoothed seed colour
MIN_TOLERANCE = {"fill": 2.0, "wand": 8.0}  # clean or flat images still get a useful step
GRABCUT_WORK_SIDE = 400
GRABCUT_ITERATIONS = 3


def _grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)


def noise_sigma(image: np.ndarray, seed: tuple[int, int], radius: int = NOISE_RADIUS) -> float:
    """Robust standard deviation of the pixel noise near seed (x, y), in grey levels.

    Uses the median absolute difference of horizontally and vertically neighbouring
    pixels (edges are a minority and do not move the median); 0 on a flat image.
    """
    h, w = image.shape[:2]
    x, y = int(seed[0]), int(seed[1])
    crop = _grey(image[max(0, y - radius):min(h, y + radius + 1),
                       max(0, x - radius):min(w, x + radius + 1)]).astype(np.float32)
    diffs = [np.abs(np.diff(crop, axis=a)).ravel() for a in (0, 1) if crop.shape[a] > 1]
    if not diffs:
        return 0.0
    d = np.concatenate(diffs)
    # |a - b| of two pixels with noise sigma has median 0.6745 * sqrt(2) * sigma
    return float(np.median(d) / (0.6745 * np.sqrt(2.0)))


def default_tolerance(image: np.ndarray, seed: tuple[int, int], tool: str) -> float:
    """A starting tolerance for "fill" or "wand" at seed, from the local noise."""
    sigma = noise_sigma(image, seed)
    factor = FILL_NOISE_FACTOR if tool == "fill" else WAND_NOISE_FACTOR
    return float(min(255.0, max(MIN_TOLERANCE.get(tool, 4.0), round(factor * sigma, 1))))


def smooth_for_flood(image: np.ndarray, sigma: float) -> np.ndarray:
    """Edge-preserving smoothing scaled to the noise (a new, writable array)."""
    img = np.ascontiguousarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    if sigma <= 0:
        return img.copy()
    return cv2.bilateralFilter(img, 7, max(10.0, 4.0 * sigma), 5.0)


def flood_region(image: np.ndarray, seed: tuple[int, int], tolerance: float,
                 fixed: bool, smoothed: np.ndarray | None = None) -> np.ndarray:
    """Bool mask of the region flood-filled from seed (x, y) with the given tolerance.

    fixed=False (fill): grows while neighbouring pixels differ by at most the tolerance.
    fixed=True (wand): every connected pixel within the tolerance of the seed's colour.
    Both work on an image smoothed relative to its noise (`smooth_for_flood`; pass
    `smoothed` to reuse one while the tolerance is dragged), so single noisy pixels
    neither stop the fill nor decide the seed colour.
    """
    img = smoothed if smoothed is not None else smooth_for_flood(image,
                                                                 noise_sigma(image, seed))
    h, w = img.shape[:2]
    mask = np.zeros((h + 2, w + 2), dtype=np.uint8)
    t = float(max(0.0, min(255.0, tolerance)))
    diff = (t, t, t) if img.ndim == 3 else (t,)
    flags = 4 | (255 << 8) | cv2.FLOODFILL_MASK_ONLY
    if fixed:
        flags |= cv2.FLOODFILL_FIXED_RANGE
    cv2.floodFill(img, mask, (int(seed[0]), int(seed[1])), 0, diff, diff, flags)
    return mask[1:-1, 1:-1] > 0


def _as_bgr(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


class GrabCutSession:
    """GrabCut state for one object: crop, working scale, models and current mask.

    Not thread-safe by itself: the canvas runs one call at a time on its worker.
    """

    def __init__(self, crop: np.ndarray, rect: tuple[float, float, float, float]) -> None:
        h, w = crop.shape[:2]
        self.full_shape = (h, w)
        self.scale = min(1.0, GRABCUT_WORK_SIDE / max(h, w))
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if self.scale < 1 else crop
        self.small = np.ascontiguousarray(_as_bgr(small))
        sh, sw = self.small.shape[:2]
        rx, ry, rw, rh = (int(round(v * self.scale)) for v in rect)
        rx, ry = min(max(rx, 0), sw - 1), min(max(ry, 0), sh - 1)
        rw, rh = max(1, min(rw, sw - rx)), max(1, min(rh, sh - ry))
        self.mask = np.zeros((sh, sw), np.uint8)
        self.bgd = np.zeros((1, 65), np.float64)
        self.fgd = np.zeros((1, 65), np.float64)
        if rw >= sw and rh >= sh:
            raise GeometryError("GrabCut needs some background around the object: draw the box "
                                "inside the image, not around all of it.")
        cv2.grabCut(self.small, self.mask, (rx, ry, rw, rh), self.bgd, self.fgd,
                    GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)

    def refine(self, fg: np.ndarray, bg: np.ndarray) -> None:
        """Re-run with strokes (bool arrays of the crop's full size) as hard labels."""
        sh, sw = self.mask.shape
        for marks, label in ((fg, cv2.GC_FGD), (bg, cv2.GC_BGD)):
            if marks.any():
                small = cv2.resize(marks.astype(np.uint8) * 255, (sw, sh),
                                   interpolation=cv2.INTER_AREA) > 0
                self.mask[small] = label
        if not (self.mask == cv2.GC_FGD).any() and not (self.mask == cv2.GC_PR_FGD).any():
            return
        if not ((self.mask == cv2.GC_BGD) | (self.mask == cv2.GC_PR_BGD)).any():
            return
        cv2.grabCut(self.small, self.mask, None, self.bgd, self.fgd, GRABCUT_ITERATIONS - 1,
                    cv2.GC_INIT_WITH_MASK)

    def result(self) -> np.ndarray:
        """The object's mask at the crop's full size (bool)."""
        fg = ((self.mask == cv2.GC_FGD) | (self.mask == cv2.GC_PR_FGD)).astype(np.float32)
        h, w = self.full_shape
        if fg.shape != (h, w):
            fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
        return fg > 0.5
