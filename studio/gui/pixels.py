"""Display pixels made off the GUI thread without holding it up.

Qt's QImage copies and format conversions keep Python's interpreter lock for their whole
duration (tens of milliseconds for a big image), so a worker making a QImage freezes the
GUI thread meanwhile. Workers therefore make the screen's 32-bit layout with OpenCV
(which lets other threads run) and the GUI thread only wraps it: `qimage_view` copies
nothing. Whoever shows a view keeps its buffer alive (a pixmap may share its memory).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from PySide6.QtGui import QImage

_TO_BGRA = {1: cv2.COLOR_GRAY2BGRA, 3: cv2.COLOR_RGB2BGRA, 4: cv2.COLOR_RGBA2BGRA}


class DisplayBuffer(NamedTuple):
    """(h, w, 4) uint8 pixels in QImage's 32-bit byte order (B, G, R, A)."""

    pixels: np.ndarray
    alpha: bool  # the source had an alpha channel

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes


def display_buffer(array: np.ndarray) -> DisplayBuffer | None:
    """The 32-bit display pixels of an 8-bit grey/RGB/RGBA array (None for others)."""
    if array.dtype != np.uint8:
        return None
    channels = 1 if array.ndim == 2 else array.shape[2]
    code = _TO_BGRA.get(channels)
    if code is None:
        return None
    return DisplayBuffer(cv2.cvtColor(np.ascontiguousarray(array), code), channels == 4)


def qimage_view(buffer: DisplayBuffer) -> QImage:
    """A QImage over the buffer's memory (no copy; keep `buffer` alive while it is used)."""
    px = buffer.pixels
    h, w = px.shape[:2]
    fmt = QImage.Format.Format_ARGB32 if buffer.alpha else QImage.Format.Format_RGB32
    return QImage(px.data, w, h, px.strides[0], fmt)
