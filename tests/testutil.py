"""Small helpers shared by tests (import as `from testutil import ...`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write an image with OpenCV (RGB input is converted to OpenCV's BGR order)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", arr)
    assert ok
    path.write_bytes(buf.tobytes())
    return path
