"""Connected regions of label maps: small components removed, holes filled.

Both steps ask about regions under a size: components under ``min_size`` pixels, holes
of at most ``max_area``. A region that holds a full r x r window with r^2 >= that size
cannot be one, so the regions are looked for only in the thin part of the mask: its
pixels outside every such window (an erosion and a dilation with a rectangle, in bands
of rows). A region of the thin part that touches the rest of its mask (the core) belongs
to a large region; one that does not is a whole region of the mask, and its size is its
size in the thin part. On a typical map the thin part is one or two percent of the
pixels, so it is labelled once for all classes and read as pixel indices; the few of its
regions that hold several classes are split along same-class neighbours. Nothing is
looked up over the whole image.
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
    run_bands,
    scalar,
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
    points: tuple[np.ndarray, np.ndarray] | None  # (flat index, region) when sparse

    def mask_of(self, chosen: np.ndarray) -> np.ndarray:
        """0/255 mask of the pixels of the chosen regions (bool per region)."""
        if self.points is not None:
            idx, ids = self.points
            mask = np.zeros(self.cc.shape, np.uint8)
            mask.ravel()[idx[chosen[ids]]] = 255
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


def _flat_nonzero(mask: np.ndarray) -> np.ndarray:
    """Flat indices of a 0/255 mask's pixels, ascending (NumPy's boolean fast path,
    several times quicker than findNonZero; the mask becomes 0/1)."""
    ones = cv2.min(mask, scalar(mask, 1), dst=mask)
    return np.flatnonzero(ones.view(bool))


def _seeded(labels: np.ndarray, rank_of: np.ndarray, r: int,
            connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """(thin, touch), 0/255 masks. The pixels worked on are those with a rank (rank_of
    not 255); the core is theirs that lie in an r x r window inside the image all of one
    rank; thin: the others; touch: the thin pixels next to the core (of any rank). In
    bands of rows: the core reaches r - 1 rows (a window's seed, then the window around
    it), touch one more."""
    thin, touch = np.empty_like(labels), np.empty_like(labels)
    window = np.ones((r, r), np.uint8)

    def band(top: int, bottom: int, y0: int, y1: int) -> None:
        rank = cv2.LUT(labels[top:bottom], rank_of)
        low = cv2.erode(rank, window, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        high = cv2.dilate(rank, window, borderType=cv2.BORDER_CONSTANT, borderValue=255)
        seeds = cv2.compare(low, high, cv2.CMP_EQ, dst=high)
        cv2.bitwise_and(seeds, cv2.compare(low, scalar(low, 255), cv2.CMP_NE, dst=low),
                        dst=seeds)
        core = cv2.dilate(seeds, window, dst=low)
        near = cv2.dilate(core, _NEIGHBOURS[connectivity], dst=seeds)
        ranked = cv2.compare(rank, scalar(rank, 255), cv2.CMP_NE, dst=rank)
        cv2.bitwise_and(ranked, cv2.bitwise_not(core, dst=core), dst=ranked)  # thin
        rows = slice(y0 - top, y1 - top)
        np.copyto(thin[y0:y1], ranked[rows])
        cv2.bitwise_and(ranked[rows], near[rows], dst=touch[y0:y1])

    run_bands(*labels.shape, r, band)
    return thin, touch


class _Grid:
    """Neighbours of pixels given by flat indices into an (height, width) image."""

    def __init__(self, idx: np.ndarray, height: int, width: int) -> None:
        self.idx, self.height, self.width = idx, height, width
        self.x = idx % width
        self.last = (height - 1) * width

    def neighbour(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat index of the neighbour at (dy, dx), clipped into the image; whether it
        is inside the image)."""
        inside = np.ones(len(self.idx), bool)
        if dx < 0:
            inside &= self.x > 0
        elif dx > 0:
            inside &= self.x < self.width - 1
        if dy < 0:
            inside &= self.idx >= self.width
        elif dy > 0:
            inside &= self.idx < self.last
        q = self.idx + (dy * self.width + dx)
        return np.clip(q, 0, self.last + self.width - 1, out=q), inside

    def near(self, flat: np.ndarray, wanted, connectivity: int,
             flat2: np.ndarray | None = None, wanted2=None) -> np.ndarray:
        """Per pixel: whether a neighbour inside the image holds `wanted` in `flat` (a
        raveled image), and `wanted2` in `flat2` when given."""
        near = np.zeros(len(self.idx), bool)
        for dy, dx in _OFFSETS[connectivity]:
            q, inside = self.neighbour(dy, dx)
            hit = (flat.take(q) == wanted) & inside
            if flat2 is not None:
                hit &= flat2.take(q) == wanted2
            near |= hit
        return near


def find_regions(thin: np.ndarray, touch: np.ndarray | None,
                 connectivity: int) -> Regions | None:
    """The regions of `thin` (0/255; it is overwritten) with their sizes, and which of
    them hold a pixel of `touch` (next to the core of their mask, as from
    :func:`_seeded` with one rank); None when there are none."""
    pixels = cv2.countNonZero(thin)
    if pixels == 0:
        return None
    count, cc = _label(thin, connectivity)
    attached = np.zeros(count, bool)
    attached[0] = True
    if pixels * _SPARSE <= thin.size:
        idx = _flat_nonzero(thin)
        ids = cc.ravel().take(idx).astype(np.intp)
        if touch is not None:
            attached[ids[touch.ravel().take(idx) != 0]] = True
        return Regions(count, cc, np.bincount(ids, minlength=count), attached, (idx, ids))
    if cc.dtype == np.uint16:
        areas = cv2.calcHist([cc], [0], None, [count], [0, count]).ravel().astype(np.int64)
    else:
        areas = np.bincount(cc.ravel(), minlength=count)
    if touch is not None:
        attached[cc.ravel().take(_flat_nonzero(touch))] = True
    return Regions(count, cc, areas, attached, None)


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
    if (min_size <= 1 and keep_largest <= 0) or out.size == 0:
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
        found = find_regions(mask[box].copy(), None, connectivity)
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
    thin, touch = _seeded(labels, rank_of, r, connectivity)
    pixels = cv2.countNonZero(thin)
    if pixels == 0:
        return True
    if pixels * _SPARSE > thin.size:
        return False
    count, cc = _label(thin, connectivity)
    idx = _flat_nonzero(thin)  # thin becomes 0/1
    grid = _Grid(idx, *labels.shape)
    flat = labels.ravel()
    cls = flat.take(idx)
    ids = _split_by_class(grid, cc.ravel().take(idx).astype(np.intp), cls, cc, flat, count,
                          connectivity)
    # attached: next to the core of its own class (a pixel of the class not thin), so in a
    # component with a seed
    touching = np.nonzero(touch.ravel().take(idx))[0]
    near = _Grid(idx[touching], *labels.shape).near(
        flat, cls[touching], connectivity, thin.ravel(), 0)
    regions = int(ids.max()) + 1
    attached = np.zeros(regions, bool)
    attached[ids[touching[near]]] = True
    drop = ~attached & (np.bincount(ids, minlength=regions) < min_size)
    out.ravel()[idx[drop[ids]]] = fill
    return True


def _split_by_class(grid: _Grid, ids: np.ndarray, cls: np.ndarray, cc: np.ndarray,
                    flat_labels: np.ndarray, count: int, connectivity: int) -> np.ndarray:
    """Region ids per pixel, where the regions of the thin part that hold several
    classes are split into the connected pieces of one class each (new ids from
    `count` on): pixels are joined along same-class neighbour pairs."""
    some = np.zeros(count, cls.dtype)
    some[ids] = cls  # the class of some pixel of each region
    mixed = np.zeros(count, bool)
    mixed[ids[some[ids] != cls]] = True
    if not mixed.any():
        return ids
    which = np.nonzero(mixed[ids])[0]
    sub = _Grid(grid.idx[which], grid.height, grid.width)
    flat_cc, mine = cc.ravel(), cls[which]
    region = ids[which]
    first, second = [], []
    for dy, dx in _FORWARD[connectivity]:
        q, inside = sub.neighbour(dy, dx)
        same = inside & (flat_cc.take(q) == region) & (flat_labels.take(q) == mine)
        ok = np.nonzero(same)[0]
        first.append(ok)  # the neighbour is a pixel of the same mixed region: in the list
        second.append(np.searchsorted(sub.idx, q[ok]))
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
    if out.size == 0:
        return out
    fill = fill_value(background)
    n = num_classes if num_classes is not None else count_classes(labels)
    wanted = np.zeros(257, bool)
    wanted[resolve_classes(classes, n, background)] = True
    r = 0 if max_area is None else _window(max_area + 1)
    if max_area is None or r > _MAX_WINDOW or r > min(labels.shape):
        found = find_regions(free_mask(out, fill), None, 4)
    else:
        free_rank = np.full(256, 255, np.uint8)
        free_rank[[fill, 255]] = 0
        found = find_regions(*_seeded(labels, free_rank, r, 4), 4)
    if found is None:
        return out
    candidate = ~found.attached
    for edge_ids in (found.cc[0], found.cc[-1], found.cc[:, 0], found.cc[:, -1]):
        candidate[edge_ids] = False  # open to the image border
    if max_area is not None:
        candidate &= found.areas <= max_area
    if not candidate.any():
        return out
    # the hole's neighbours: the non-free 4-neighbours of its pixels (a candidate is
    # away from the image border, so every pixel of it has four)
    if found.points is not None:
        idx, ids = found.points
    else:
        free = free_mask(out, fill)
        edge = cv2.bitwise_and(cv2.dilate(cv2.bitwise_not(free), _NEIGHBOURS[4]), free)
        idx = _flat_nonzero(edge)
        ids = found.cc.ravel().take(idx).astype(np.intp)
    pick = candidate[ids]
    idx, ids = idx[pick], ids[pick]
    flat = labels.ravel()
    region, value = [], []
    for step in (-labels.shape[1], labels.shape[1], -1, 1):
        near = flat.take(idx + step)
        solid = (near != fill) & (near != 255)
        region.append(ids[solid])
        value.append(near[solid])
    region, value = np.concatenate(region), np.concatenate(value).astype(np.intp)
    enclosing = np.full(found.count, 256, np.intp)  # 256: no class (wanted[256] is False)
    enclosing[region] = value  # the class of some neighbour of the hole ...
    enclosing[region[value != enclosing[region]]] = 256  # ... unless another differs
    filled = candidate & wanted[enclosing]
    if not filled.any():
        return out
    if found.points is not None:
        idx, ids = found.points
        pick = filled[ids]
        out.ravel()[idx[pick]] = enclosing[ids[pick]]
        return out
    for c in np.unique(enclosing[filled]):
        paint(out, found.mask_of(filled & (enclosing == c)), int(c))
    return out
