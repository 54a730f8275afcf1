"""COCO compressed RLE for big masks, in bands that let other threads run.

pycocotools encodes and decodes a mask in one C call that holds Python's interpreter
lock: for a 8192 x 4096 mask that is tens of milliseconds in which no other Python
thread (the GUI's included) can run. These functions produce and read exactly the same
strings, working on the run-length counts with NumPy in bands of about BAND_PIXELS
pixels, so the lock is handed over between bands. Small masks keep using pycocotools
(faster, and quick enough not to matter).

Format (pycocotools maskApi.c): runs alternate 0s and 1s over the column-major pixels,
starting with 0s; from the fourth count on, each is stored as the difference to the count
two before; each number is written as 5-bit groups (low first), character = 48 + group,
bit 0x20 set while more groups follow, sign taken from bit 0x10 of the last group.
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as coco_mask

BAND_PIXELS = 1 << 20


def counts_from_string(s: str | bytes) -> np.ndarray:
    """The run lengths (int64) of a compressed COCO RLE string."""
    b = np.frombuffer(s.encode("ascii") if isinstance(s, str) else bytes(s), np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64)
    g = b.astype(np.int64) - 48
    last = (g & 0x20) == 0
    starts = np.flatnonzero(np.r_[True, last[:-1]])
    number = np.cumsum(np.r_[0, last[:-1].astype(np.int64)])
    k = np.arange(g.size) - starts[number]
    x = np.add.reduceat((g & 0x1F) << (5 * k), starts)
    ends = np.flatnonzero(last)
    negative = (g[ends] & 0x10) != 0
    x[negative] -= np.int64(1) << (5 * (k[ends][negative] + 1))
    cnts = x.copy()
    if cnts.size > 2:
        cnts[2::2] = np.cumsum(x[2::2])
        cnts[3::2] = x[1] + np.cumsum(x[3::2])
    return cnts


def string_from_counts(cnts: np.ndarray) -> str:
    """The compressed COCO RLE string of run lengths `cnts`."""
    cnts = np.asarray(cnts, np.int64)
    if cnts.size == 0:
        return ""
    x = cnts.copy()
    if x.size > 3:
        x[3:] = cnts[3:] - cnts[1:-2]
    k = np.ones(x.size, np.int64)
    for j in range(1, 13):  # groups needed to hold x as a signed number
        bound = np.int64(1) << (5 * j - 1)
        k += (x >= bound) | (x < -bound)
    rep = np.repeat(x, k)
    first = np.repeat(np.cumsum(k) - k, k)
    j = np.arange(rep.size) - first
    groups = (rep >> (5 * j)) & 0x1F
    more = j < np.repeat(k, k) - 1
    groups[more] |= 0x20
    return (groups + 48).astype(np.uint8).tobytes().decode("ascii")


def decode(s: str | bytes, height: int, width: int) -> np.ndarray:
    """A bool (height, width) mask, column-major in memory, from a compressed RLE string."""
    cnts = counts_from_string(s)
    total = int(height) * int(width)
    if int(cnts.sum()) != total:
        raise ValueError(f"RLE counts cover {int(cnts.sum())} pixels, not {total}")
    out = np.empty((width, height), dtype=bool)  # out.T is the (height, width) mask
    flat = out.reshape(-1)
    ends = np.cumsum(cnts)
    begins = ends - cnts
    values = (np.arange(cnts.size) % 2).astype(bool)
    for p0 in range(0, total, BAND_PIXELS):
        p1 = min(total, p0 + BAND_PIXELS)
        i0, i1 = np.searchsorted(ends, p0, "right"), np.searchsorted(begins, p1, "left")
        lengths = np.minimum(ends[i0:i1], p1) - np.maximum(begins[i0:i1], p0)
        flat[p0:p1] = np.repeat(values[i0:i1], lengths)
    return out.T


def encode(mask: np.ndarray) -> str:
    """The compressed COCO RLE string of a bool (height, width) mask.

    pycocotools encodes bands of columns (each a short call); their runs are joined."""
    m = np.asarray(mask)
    m = m.view(np.uint8) if m.dtype == bool else (m != 0).view(np.uint8)
    h, w = m.shape
    if m.size == 0:
        return string_from_counts(np.zeros(1, np.int64))
    if not m.flags.f_contiguous:  # OpenCV's transpose lets other threads run; NumPy's not
        m = cv2.transpose(np.ascontiguousarray(m)).T
    step = max(1, BAND_PIXELS // max(h, 1))
    values, lengths = [], []
    for c0 in range(0, w, step):
        band = coco_mask.encode(m[:, c0:c0 + step])["counts"]
        cnts = counts_from_string(band)
        values.append(np.arange(cnts.size) % 2)
        lengths.append(cnts)
    v, n = np.concatenate(values), np.concatenate(lengths)
    keep = n > 0
    v, n = v[keep], n[keep]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])  # merge runs across bands
    cnts = np.add.reduceat(n, starts)
    if v[0] == 1:
        cnts = np.r_[0, cnts]
    return string_from_counts(cnts)
