"""Connected regions of label maps: small components removed, holes filled.

Both steps ask about regions under a size: components under ``min_size`` pixels, holes
of at most ``max_area``. A region that holds a full r x r window with r^2 >= that size
cannot be one, so the regions are looked for only in the thin part of the mask: its
pixels outside every such window (an erosion and a dilation with a rectangle, which
OpenCV does in two separable passes). A region of the thin part that touches the rest
of the mask belongs to a large region; one that does not is a whole region of the mask,
and its size is its size in the thin part. On a typical map the thin part is a
fraction of a percent of the pixels, so labelling it and reading its pixel coordinates
costs little, and nothing is looked up over the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from studio.ml.postprocess.labels import (
    bounding_box,
    compare,
    count_classes,
    fill_value,
    free_mask,
    paint,
    parallel_map,
    resolve_classes,
)

_MAX_WINDOW = 45  # a wider window costs more than labelling the whole mask
_SPARSE = 8  # the thin part is read as coordinates below 1/8 of the pixels
_NEIGHBOURS = {4: cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
               8: np.ones((3, 3), np.uint8)}
_FORWARD = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, -1), (1, 0), (1, 1))}
_OFFSETS = {c: f + tuple((-dy, -dx) for dy, dx in f) for c, f in _FORWARD.items()}


@dataclass
class Regions:
    """The connected regions of a mask's thin part. Region 0 is not a region."""

    count: int
    cc: np.ndarray  # region of each pixel (H, W), 0 outside the thin part
    areas: np.ndarray  # pixels per region
    attached: np.ndarray  # bool per region: part of a larger region of the mask
    points: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (ys, xs, region) when sparse

    def mask_of(self, chosen: np.ndarray) -> np.ndarray:
        """0/255 mask of the pixels of the chosen regions (bool per region)."""
        if self.points is not None:
            ys, xs, ids = self.points
            mask = np.zeros(self.cc.shape, np.uint8)
            pick = chosen[ids]
            mask[ys[pick], xs[pick]] = 255
            return mask
        lut = np.where(chosen, 255, 0).astype(np.uint8)
        return np.take(lut, self.cc)


def _label(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray]:
    """16-bit component labels (half the memory traffic of 32-bit), 32-bit when more
    than 65535 provisional labels are needed."""
    try:
        return cv2.connectedComponents(mask, connectivity=connectivity, ltype=cv2.CV_16U)
    except cv2.error:  # too many components for 16-bit labels
        return cv2.connectedComponents(mask, connectivity=connectivity, ltype=cv2.CV_32S)


def _thin_part(mask: np.ndarray, large: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(thin, core): the mask's pixels outside / inside every r x r window of the mask,
    r^2 >= `large`; core is None when no window fits (or `large` is None: no limit)."""
    if large is None:
        return mask, None
    r = _window(large)  # odd: the window is centred on its pixel
    if r > _MAX_WINDOW or r > min(mask.shape):
        return mask, None
    window = np.ones((r, r), np.uint8)
    seeds = cv2.erode(mask, window, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if not cv2.countNonZero(seeds):
        return mask, None
    core = cv2.dilate(seeds, window)
    return cv2.bitwise_and(mask, cv2.bitwise_not(core)), core


def find_regions(mask: np.ndarray, large: int | None, connectivity: int) -> Regions | None:
    """The regions of `mask` (0/255) that may be under `large` pixels (all of them when
    `large` is None), with their sizes; None when there are none."""
    thin, core = _thin_part(mask, large)
    pixels = cv2.countNonZero(thin)
    if pixels == 0:
        return None
    count, cc = _label(thin, connectivity)
    points = None
    if pixels * _SPARSE <= thin.size:
        found = cv2.findNonZero(thin)
        ys, xs = found[:, 0, 1], found[:, 0, 0]
        ids = cc[ys, xs].astype(np.intp)
        points = (ys, xs, ids)
        areas = np.bincount(ids, minlength=count)
    elif cc.dtype == np.uint16:
        areas = cv2.calcHist([cc], [0], None, [count], [0, count]).ravel().astype(np.int64)
    else:
        areas = np.bincount(cc.ravel(), minlength=count)
    attached = np.zeros(count, bool)
    attached[0] = True
    if core is not None:
        touch = cv2.bitwise_and(cv2.dilate(core, _NEIGHBOURS[connectivity]), thin)
        if points is not None:
            attached[points[2][touch[points[0], points[1]] != 0]] = True
        else:
            found = cv2.findNonZero(touch)
            if found is not None:
                attached[cc[found[:, 0, 1], found[:, 0, 0]]] = True
    return Regions(count, cc, areas, attached, points)


# --- connected components ------------------------------------------------------------------
def components(labels: np.ndarray, min_size: int = 0, keep_largest: int = 0,
               connectivity: int = 8, classes: Sequence[int] | None = None,
               background: int | None = 0, num_classes: int | None = None) -> np.ndarray:
    """Per class: drop connected components under ``min_size`` pixels and keep only the
    ``keep_largest`` largest (0 = all; of equal ones the first labelled). ``connectivity``
    4 keeps diagonal neighbours apart, 8 joins them.

    A size limit alone is answered for all classes at once from the thin part of the
    label map; ranking needs every component's size, so it labels each class (in
    parallel threads: OpenCV releases the GIL)."""
    out = labels.copy()
    if min_size <= 1 and keep_largest <= 0:
        return out
    fill = fill_value(background)
    n = num_classes if num_classes is not None else count_classes(labels)
    todo = sorted(set(resolve_classes(classes, n, background)))
    if not todo or (keep_largest <= 0 and _drop_small(labels, out, todo, min_size,
                                                      connectivity, fill)):
        return out

    def dropped(c: int):
        mask = compare(labels, c, cv2.CMP_EQ)
        box = bounding_box(mask, 0)
        if box is None:
            return None
        found = find_regions(mask[box], None if keep_largest > 0 else min_size, connectivity)
        if found is None:
            return None
        areas = found.areas
        drop = ~found.attached & (areas < min_size)
        if keep_largest > 0:
            order = np.argsort(-areas[1:], kind="stable") + 1
            drop[order[keep_largest:]] = True
        if not drop.any():
            return None
        return box, found.mask_of(drop)

    for res in parallel_map(dropped, todo, len(todo) * labels.size):
        if res is not None:
            paint(out[res[0]], res[1], fill)
    return out


def _drop_small(labels: np.ndarray, out: np.ndarray, todo: list[int], min_size: int,
                connectivity: int, fill: int) -> bool:
    """Components under `min_size` of every class in `todo`, removed from `out` at once;
    False (nothing done) where the thin part is too dense for this to pay."""
    r = _window(min_size)
    if r > _MAX_WINDOW or r > min(labels.shape) or len(todo) > 254:
        return False
    rank_of = np.full(256, 255, np.uint8)
    rank_of[todo] = np.arange(len(todo))
    ranks = cv2.LUT(labels, rank_of)
    window = np.ones((r, r), np.uint8)
    # a seed: an r x r window inside the image, all of one class
    lowest = cv2.erode(ranks, window, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    highest = cv2.dilate(ranks, window, borderType=cv2.BORDER_CONSTANT, borderValue=255)
    seeds = cv2.bitwise_and(cv2.compare(lowest, highest, cv2.CMP_EQ),
                            compare(lowest, 255, cv2.CMP_NE))
    core = cv2.dilate(seeds, window)
    thin = cv2.bitwise_and(compare(ranks, 255, cv2.CMP_NE), cv2.bitwise_not(core))
    pixels = cv2.countNonZero(thin)
    if pixels == 0:
        return True
    if pixels * _SPARSE > thin.size:
        return False
    count, cc = _label(thin, connectivity)
    found = cv2.findNonZero(thin)
    ys, xs = found[:, 0, 1], found[:, 0, 0]
    cls = ranks[ys, xs]
    ids = _split_by_class(ys, xs, cc[ys, xs].astype(np.intp), cls, cc, ranks, count,
                          connectivity)
    # attached: a pixel next to the core of its own class (a component with a seed)
    core_ranks = cv2.copyMakeBorder(cv2.bitwise_or(ranks, cv2.bitwise_not(core)),
                                    1, 1, 1, 1, cv2.BORDER_CONSTANT, value=255)
    near = np.zeros(len(ys), bool)
    for dy, dx in _OFFSETS[connectivity]:
        near |= core_ranks[ys + 1 + dy, xs + 1 + dx] == cls
    regions = int(ids.max()) + 1
    attached = np.zeros(regions, bool)
    attached[ids[near]] = True
    drop = ~attached & (np.bincount(ids, minlength=regions) < min_size)
    pick = drop[ids]
    out[ys[pick], xs[pick]] = fill
    return True


def _split_by_class(ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, cls: np.ndarray,
                    cc: np.ndarray, ranks: np.ndarray, count: int,
                    connectivity: int) -> np.ndarray:
    """Region ids per pixel, where the regions of the thin part that hold several
    classes are split into the connected pieces of one class each (new ids from
    `count` on): pixels are joined along same-class neighbour pairs."""
    lo = np.full(count, 256, np.int64)
    hi = np.full(count, -1, np.int64)
    np.minimum.at(lo, ids, cls)
    np.maximum.at(hi, ids, cls)
    mixed = hi > lo
    if not mixed.any():
        return ids
    which = np.nonzero(mixed[ids])[0]
    my, mx, mc = ys[which].astype(np.int64), xs[which].astype(np.int64), cls[which]
    height, width = cc.shape
    position = my * width + mx
    order = None
    if len(position) > 1 and not (position[1:] > position[:-1]).all():
        order = np.argsort(position)
        position = position[order]
    first, second = [], []
    for dy, dx in _FORWARD[connectivity]:
        qy, qx = my + dy, mx + dx
        ok = np.nonzero((qy < height) & (qx >= 0) & (qx < width))[0]
        same = ((cc[qy[ok], qx[ok]] == cc[my[ok], mx[ok]])
                & (ranks[qy[ok], qx[ok]] == mc[ok]))
        ok = ok[same]
        j = np.searchsorted(position, qy[ok] * width + qx[ok])
        first.append(ok)
        second.append(j if order is None else order[j])
    root = _graph_components(len(which), np.concatenate(first), np.concatenate(second))
    _, piece = np.unique(root, return_inverse=True)
    ids = ids.copy()
    ids[which] = count + piece
    return ids


def _graph_components(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node of each node's connected component, for the graph with edges
    (a[i], b[i]): hook the larger root under the smaller, then jump pointers."""
    parent = np.arange(nodes)
    while len(a):
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        a, b, pa, pb = a[differ], b[differ], pa[differ], pb[differ]
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return parent


def _window(size: int) -> int:
    """The odd side r of a square window with r^2 >= size (at least 3)."""
    r = max(3, math.ceil(math.sqrt(size)))
    return r + 1 - r % 2


# --- fill holes ----------------------------------------------------------------------------
def fill_holes(labels: np.ndarray, max_area: int | None = 64,
               classes: Sequence[int] | None = None, background: int | None = 0,
               num_classes: int | None = None) -> np.ndarray:
    """Fill holes: a hole is a 4-connected region of background or unlabelled pixels that
    does not touch the image border and whose neighbours all belong to one class (one of
    ``classes``); holes of at most ``max_area`` pixels (None = any size) join that class.

    One labelling of the free pixels' thin part finds the holes of every class at once.
    """
    out = labels.copy()
    fill = fill_value(background)
    n = num_classes if num_classes is not None else count_classes(labels)
    wanted = np.zeros(257, bool)
    wanted[resolve_classes(classes, n, background)] = True
    free = free_mask(out, fill)
    found = find_regions(free, None if max_area is None else max_area + 1, 4)
    if found is None:
        return out
    candidate = ~found.attached
    for edge_ids in (found.cc[0], found.cc[-1], found.cc[:, 0], found.cc[:, -1]):
        candidate[edge_ids] = False  # open to the image border
    if max_area is not None:
        candidate &= found.areas <= max_area
    if not candidate.any():
        return out
    # the hole's neighbours: the non-free 4-neighbours of its edge pixels (a candidate is
    # away from the image border, so every pixel of it has four)
    if found.points is not None:
        ys, xs, ids = found.points
        pick = candidate[ids]
        ys, xs, ids = ys[pick], xs[pick], ids[pick]
    else:
        notfree = cv2.bitwise_not(free)
        edge = cv2.bitwise_and(cv2.dilate(notfree, _NEIGHBOURS[4]), free)
        points = cv2.findNonZero(edge)
        ys, xs = points[:, 0, 1], points[:, 0, 0]
        ids = found.cc[ys, xs].astype(np.intp)
        pick = candidate[ids]
        ys, xs, ids = ys[pick], xs[pick], ids[pick]
    lo = np.full(found.count, 256, np.int64)
    hi = np.full(found.count, -1, np.int64)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        near = labels[ys + dy, xs + dx].astype(np.int64)
        solid = (near != fill) & (near != 255)
        np.minimum.at(lo, ids[solid], near[solid])
        np.maximum.at(hi, ids[solid], near[solid])
    enclosing = np.where(lo == hi, lo, 256)
    filled = candidate & wanted[enclosing]
    if not filled.any():
        return out
    if found.points is not None:
        ys, xs, ids = found.points
        pick = filled[ids]
        out[ys[pick], xs[pick]] = enclosing[ids[pick]]
        return out
    for c in np.unique(enclosing[filled]):
        paint(out, found.mask_of(filled & (enclosing == c)), int(c))
    return out
