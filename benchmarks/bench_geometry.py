"""Mask -> polygon on a 2048 x 2048 mask: time and how far the polygons stray.

The mask holds a large pentagon and 40 overlapping discs (a few long, curved outlines).
Measured: the median time of `mask_to_polygons` (target <= 50 ms), the number of vertices,
and the deviation: the largest distance, in pixels, from the mask's boundary of any pixel
where the rasterised polygons and the mask differ (target <= 2 px).
Run alone with `python -m benchmarks.bench_geometry`.
"""

from __future__ import annotations

import statistics
import time

SIZE = 2048


def _mask():
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(m, [np.array([[100, 100], [1900, 300], [1800, 1900], [900, 1500],
                               [200, 1800]], np.int32)], 1)
    for _ in range(40):
        centre = (int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)))
        cv2.circle(m, centre, int(rng.integers(20, 300)), 1, -1)
    return m.astype(bool)


def deviation_px(mask, polys) -> float:
    """Largest distance from the mask's boundary of a pixel the polygons get wrong."""
    import cv2
    import numpy as np

    from studio.core.geometry import polygon_to_mask

    back = np.zeros(mask.shape, bool)
    for p in polys:
        back |= polygon_to_mask(p, *mask.shape)
    diff = back ^ mask
    if not diff.any():
        return 0.0
    m8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 5)
    # a wrong pixel's centre lies half a pixel from the boundary at best
    return float(np.max(np.maximum(inside, outside)[diff])) - 0.5


def run() -> list[dict]:
    from studio.core.geometry import mask_to_polygons

    mask = _mask()
    times, polys = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        polys = mask_to_polygons(mask)
        times.append((time.perf_counter() - t0) * 1000)
    exact = mask_to_polygons(mask, tolerance=0)
    return [
        {"name": "mask->polygon 2048x2048 (median)", "value": statistics.median(times),
         "unit": "ms", "target": "<= 50"},
        {"name": "mask->polygon deviation from boundary", "value": deviation_px(mask, polys),
         "unit": "px", "target": "<= 2"},
        {"name": "vertices simplified / exact staircase",
         "value": f"{sum(map(len, polys))} / {sum(map(len, exact))}", "unit": "", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row['unit']} (target {row['target']})")
