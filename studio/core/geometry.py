"""Geometry of annotations: boxes, polygons and masks, and conversions between them.

Coordinates are pixel-edge coordinates (the COCO convention): a box covering pixel columns
0..9 has x=0, w=10; the polygon (0,0)-(10,0)-(10,10)-(0,10) covers 100 pixels.
Masks are stored cropped to their bounding box (`MaskGeom`) and encoded as COCO RLE.

Geometry is clipped to its image on the way into the store (`clip_geometry`), and
`polygon_to_mask` clips again before handing coordinates to pycocotools, which crashes the
process on coordinates near 4e8 pixels (a file could hold any number; a project written by
an older version could have stored one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from studio.core import rle as banded_rle

Box = tuple[float, float, float, float]


@dataclass(eq=False)
class MaskGeom:
    """A binary mask cropped to its bounding box: `bitmap` covers x..x+w, y..y+h."""

    x: int
    y: int
    bitmap: np.ndarray  # bool, H x W

    @property
    def width(self) -> int:
        return int(self.bitmap.shape[1])

    @property
    def height(self) -> int:
        return int(self.bitmap.shape[0])

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.bitmap))

    def to_full(self, height: int, width: int) -> np.ndarray:
        """The mask pasted into an empty image of the given size (parts outside are cut)."""
        full = np.zeros((height, width), dtype=bool)
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1 = min(self.x + self.width, width)
        y1 = min(self.y + self.height, height)
        if x1 > x0 and y1 > y0:
            full[y0:y1, x0:x1] = self.bitmap[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        return full

    @classmethod
    def from_full(cls, mask: np.ndarray) -> MaskGeom:
        """Crop a full-size mask to its bounding box (an empty mask gives a 0x0 bitmap)."""
        mask = np.asarray(mask).astype(bool, copy=False)
        ys = np.flatnonzero(mask.any(axis=1))
        if ys.size == 0:
            return cls(0, 0, np.zeros((0, 0), dtype=bool))
        xs = np.flatnonzero(mask.any(axis=0))
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        return cls(x0, y0, mask[y0:y1, x0:x1].copy())

    def tight(self) -> MaskGeom:
        """The same mask re-cropped to its true bounding box (itself when already tight)."""
        b = self.bitmap
        if b.size and b[0].any() and b[-1].any() and b[:, 0].any() and b[:, -1].any():
            return self
        inner = MaskGeom.from_full(b)
        return MaskGeom(self.x + inner.x, self.y + inner.y, inner.bitmap)

    def bbox(self) -> Box:
        t = self.tight()
        return (float(t.x), float(t.y), float(t.width), float(t.height))

    def equals(self, other: MaskGeom) -> bool:
        """Pixel equality, independent of how tightly either is cropped."""
        a, b = self.tight(), other.tight()
        return (a.x, a.y) == (b.x, b.y) and a.bitmap.shape == b.bitmap.shape and bool(
            np.array_equal(a.bitmap, b.bitmap)
        )


def _as_uint8(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m.view(np.uint8) if m.dtype == bool else m.astype(np.uint8, copy=False)


def _fortran(m: np.ndarray) -> np.ndarray:
    """A column-major copy; OpenCV's blocked transpose is several times faster than NumPy's."""
    if m.flags.f_contiguous:
        return m
    if m.shape[0] and m.shape[1]:
        return cv2.transpose(np.ascontiguousarray(m)).T
    return np.asfortranarray(m)


def _c_order(m: np.ndarray) -> np.ndarray:
    if m.flags.c_contiguous:
        return m
    if m.ndim == 2 and m.shape[0] and m.shape[1] and m.flags.f_contiguous:
        return cv2.transpose(m.T)
    return np.ascontiguousarray(m)


BANDED_RLE_PIXELS = 1 << 22  # bigger masks: banded RLE, so other threads (the GUI) run


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool HxW mask: {"size": [h, w], "counts": str}."""
    if mask.size > BANDED_RLE_PIXELS:
        return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": banded_rle.encode(mask)}
    arr = _fortran(_as_uint8(mask))
    rle = coco_mask.encode(arr)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_decode(rle: dict) -> np.ndarray:
    """Decode COCO RLE (compressed string counts or uncompressed list counts) to bool HxW."""
    h, w = int(rle["size"][0]), int(rle["size"][1])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif h * w > BANDED_RLE_PIXELS:
        return _c_order(banded_rle.decode(counts, h, w).view(np.uint8)).view(bool)
    else:
        compressed = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return _c_order(coco_mask.decode(compressed)).view(bool)


def encode_mask_geom(geom: MaskGeom) -> dict:
    return {"x": int(geom.x), "y": int(geom.y), "rle": rle_encode(geom.bitmap)}


def decode_mask_geom(data: dict) -> MaskGeom:
    return MaskGeom(int(data["x"]), int(data["y"]), rle_decode(data["rle"]))


def as_polygon(points: Sequence | np.ndarray) -> np.ndarray:
    """Normalise vertices (a flat [x0, y0, x1, ...] list or (N, 2)) to a float (N, 2) array."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size % 2:
            raise ValueError("a flat polygon needs an even number of coordinates")
        arr = arr.reshape(-1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("a polygon must be a list of (x, y) points")
    return arr


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a polygon in pixel-edge coordinates."""
    p = as_polygon(points)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_bbox(points: np.ndarray) -> Box:
    p = as_polygon(points)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def clip_polygon(points: Sequence | np.ndarray, width: float, height: float) -> np.ndarray:
    """The part of a polygon inside the image rectangle [0, width] x [0, height]
    (Sutherland-Hodgman, one half-plane at a time). Non-finite vertices are dropped; the
    result may have fewer than 3 points when nothing is inside."""
    p = as_polygon(points)
    p = p[np.isfinite(p).all(axis=1)]
    if p.size and p.min() >= 0 and p[:, 0].max() <= width and p[:, 1].max() <= height:
        return p
    with np.errstate(all="ignore"):
        for axis, bound, keep_below in ((0, 0.0, False), (0, float(width), True),
                                        (1, 0.0, False), (1, float(height), True)):
            if len(p) == 0:
                break
            nxt = np.roll(p, -1, axis=0)
            inside = p[:, axis] <= bound if keep_below else p[:, axis] >= bound
            inside_next = np.roll(inside, -1)
            t = (bound - p[:, axis]) / (nxt[:, axis] - p[:, axis])
            cross = p + np.nan_to_num(t)[:, None] * (nxt - p)
            cross[:, axis] = bound
            points_out = np.stack([p, cross], axis=1)
            keep = np.stack([inside, inside != inside_next], axis=1)
            p = points_out[keep]
    p = p[np.isfinite(p).all(axis=1)]
    return np.clip(p, 0.0, [float(width), float(height)])


def polygon_to_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon (pixel-edge coordinates) the way COCO does; the parts outside
    the image are clipped off first."""
    p = clip_polygon(points, width, height)
    if len(p) < 3 or height <= 0 or width <= 0:
        return np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    rles = coco_mask.frPyObjects([p.reshape(-1).tolist()], height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def clip_mask(geom: MaskGeom, width: int, height: int) -> MaskGeom:
    """The part of a cropped mask that lies inside the image (itself when all of it does)."""
    if geom.x >= 0 and geom.y >= 0 and geom.x + geom.width <= width \
            and geom.y + geom.height <= height:
        return geom
    x0, y0 = min(max(geom.x, 0), width), min(max(geom.y, 0), height)
    x1 = min(max(geom.x + geom.width, 0), width)
    y1 = min(max(geom.y + geom.height, 0), height)
    if x1 <= x0 or y1 <= y0:
        return MaskGeom(0, 0, np.zeros((0, 0), dtype=bool))
    inner = geom.bitmap[y0 - geom.y:y1 - geom.y, x0 - geom.x:x1 - geom.x]
    return MaskGeom(x0, y0, inner.copy()).tight()


def clip_geometry(kind: str, geometry, width: int, height: int) -> tuple[object, bool]:
    """(geometry clipped to the image, whether clipping changed it). The geometry is None
    when nothing of it lies inside the image; tags are returned as they are."""
    if kind == "box":
        clipped = clip_box(tuple(float(v) for v in geometry), width, height)
        changed = not np.allclose(clipped, geometry, atol=1e-6)
        return (None if changed and (clipped[2] <= 0 or clipped[3] <= 0) else clipped), changed
    if kind == "polygon":
        pts = as_polygon(geometry)
        clipped = clip_polygon(pts, width, height)
        changed = clipped.shape != pts.shape or not np.array_equal(clipped, pts)
        if changed and (len(clipped) < 3 or polygon_area(clipped) <= 0):
            return None, True
        return clipped, changed
    if kind == "mask":
        clipped = clip_mask(geometry, width, height)
        changed = clipped is not geometry
        return (None if changed and clipped.area == 0 else clipped), changed
    return geometry, False


def box_to_polygon(box: Box) -> np.ndarray:
    x, y, w, h = box
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def box_to_mask(box: Box, height: int, width: int) -> np.ndarray:
    return polygon_to_mask(box_to_polygon(box), height, width)


def clip_box(box: Box, width: int, height: int) -> Box:
    """Clip a box to the image; the result may have zero width or height."""
    x, y, w, h = box
    x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))


POLYGON_TOLERANCE_PX = 1.0  # Douglas-Peucker tolerance of mask -> polygon conversions


def drop_repeated_points(points: np.ndarray, closed: bool = True) -> np.ndarray:
    """The vertices without consecutive repeats (and without a last one equal to the first)."""
    p = as_polygon(points)
    if len(p) < 2:
        return p
    keep = np.ones(len(p), dtype=bool)
    keep[1:] = np.any(p[1:] != p[:-1], axis=1)
    p = p[keep]
    if closed and len(p) > 1 and np.array_equal(p[0], p[-1]):
        p = p[:-1]
    return p


def simplify_polygon(points: np.ndarray, tolerance: float = POLYGON_TOLERANCE_PX) -> np.ndarray:
    """Douglas-Peucker simplification of a closed polygon: no vertex is dropped whose
    removal would move the outline by more than `tolerance` pixels; no repeated points."""
    p = drop_repeated_points(points)
    if tolerance > 0 and len(p) > 3:
        approx = cv2.approxPolyDP(p.astype(np.float32).reshape(-1, 1, 2), float(tolerance), True)
        simplified = drop_repeated_points(approx.reshape(-1, 2).astype(np.float64))
        if len(simplified) >= 3:
            p = simplified
    return p


def _pixel_edge_contours(m: np.ndarray) -> list[np.ndarray]:
    """Exact outer boundaries (through pixel corners) of a uint8 mask, staircases included."""
    # Upscaled by 2, the outer pixel centres of pixel k sit at 2k and 2k+1: edges k and k+1.
    big = cv2.resize(m, (m.shape[1] * 2, m.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64)
        out.append(np.where(pts % 2 == 1, (pts + 1) / 2.0, pts / 2.0))
    return out


def mask_to_polygons(mask: np.ndarray, min_area: float = 1.0,
                     tolerance: float = POLYGON_TOLERANCE_PX) -> list[np.ndarray]:
    """Outer contours of a mask as polygons in pixel-edge coordinates.

    The exact pixel-edge boundary is simplified with Douglas-Peucker (`tolerance` in
    pixels; 0 keeps every corner of the staircase), so a shape drawn as a few vertices
    comes back as a few vertices and rasterising the polygon gives back the mask to
    within `tolerance`. No polygon has repeated consecutive points.
    """
    m = np.asarray(mask)
    m = m.view(np.uint8) if m.dtype == bool else (m != 0).view(np.uint8)
    ys = np.flatnonzero(m.any(axis=1))
    if ys.size == 0:
        return []
    xs = np.flatnonzero(m.any(axis=0))
    y0, x0 = int(ys[0]), int(xs[0])
    crop = np.ascontiguousarray(m[y0:int(ys[-1]) + 1, x0:int(xs[-1]) + 1])
    polys = []
    for pts in _pixel_edge_contours(crop):
        pts = simplify_polygon(pts + (x0, y0), tolerance)
        if len(pts) >= 3 and polygon_area(pts) >= min_area:
            polys.append(pts)
    return polys


def mask_geom_to_polygons(geom: MaskGeom, min_area: float = 1.0,
                          tolerance: float = POLYGON_TOLERANCE_PX) -> list[np.ndarray]:
    """`mask_to_polygons` of a cropped mask, in image coordinates (no full-size copy)."""
    polys = mask_to_polygons(geom.bitmap, min_area, tolerance)
    return [p + (geom.x, geom.y) for p in polys]


def geometry_bbox(kind: str, geometry, image_size: tuple[int, int] | None = None) -> Box:
    """Bounding box of any annotation geometry; a tag covers the whole image."""
    if kind == "box":
        return tuple(float(v) for v in geometry)  # type: ignore[return-value]
    if kind == "polygon":
        return polygon_bbox(geometry)
    if kind == "mask":
        return geometry.bbox()
    if kind == "tag":
        if image_size is None:
            return (0.0, 0.0, 0.0, 0.0)
        w, h = image_size
        return (0.0, 0.0, float(w), float(h))
    raise ValueError(f"unknown annotation kind {kind!r}")


def geometry_area(kind: str, geometry) -> float:
    if kind == "box":
        return float(geometry[2] * geometry[3])
    if kind == "polygon":
        return polygon_area(geometry)
    if kind == "mask":
        return float(geometry.area)
    return 0.0


def rasterize(kind: str, geometry, height: int, width: int) -> np.ndarray:
    """Any region geometry (box, polygon, mask) as a full-size bool mask."""
    if kind == "mask":
        return geometry.to_full(height, width)
    if kind == "polygon":
        return polygon_to_mask(geometry, height, width)
    if kind == "box":
        return box_to_mask(geometry, height, width)
    raise ValueError(f"{kind!r} annotations have no region")


# --- EXIF orientation ---------------------------------------------------------------------
def _orient_points(pts: np.ndarray, orientation: int, width: float, height: float) -> np.ndarray:
    x, y = pts[:, 0], pts[:, 1]
    turned = {2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y), 5: (y, x),
              6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x)}
    nx, ny = turned.get(orientation, (x, y))
    return np.stack([nx, ny], axis=1).astype(np.float64)


def _orient_array(m: np.ndarray, orientation: int) -> np.ndarray:
    turned = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
              5: lambda a: a.T, 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a.T, 2),
              8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turned.get(orientation, lambda a: a)(m))


def orient_geometry(kind: str, geometry, orientation: int, width: int, height: int):
    """A box, polygon or mask drawn on the stored pixels of a `width` x `height` image,
    turned as the EXIF/TIFF `orientation` (1..8) turns the image when it is shown (the same
    convention as `studio.core.images`)."""
    if orientation == 1 or kind == "tag":
        return geometry
    if kind == "mask":
        return MaskGeom.from_full(_orient_array(geometry.to_full(height, width), orientation))
    if kind == "box":
        x, y, w, h = (float(v) for v in geometry)
        corners = _orient_points(np.array([[x, y], [x + w, y + h]]), orientation, width, height)
        (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
        return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
    return _orient_points(as_polygon(geometry), orientation, width, height)
