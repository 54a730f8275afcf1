"""labelme JSON: one JSON file per image (https://github.com/wkentaro/labelme).

Import (`source` is a folder, searched recursively for *.json, or one JSON file):
- The image is `imagePath`, relative to the JSON file (it may not leave the source folder),
  or the file of that name in `images_dir`. When that is not an image but `imageData` (the
  image embedded as base64) is there, the embedded image is copied into the project's
  `images/` folder.
- Shapes: rectangle -> box; polygon -> polygon; circle (centre and a point on the circle) ->
  a polygon of 64 vertices on the circle; mask (a base64 PNG covering the shape's two corner
  points, as labelme 5 writes it) -> mask. Coordinates are taken as they are (labelme and
  COCO tools use them unchanged). point, line and linestrip shapes have no area: our objects
  are regions, so they are skipped and reported, as are unknown shape types.
- Shapes that share a label and a `group_id` are one object (labelme's instance convention):
  their union becomes one mask.
- Image-level `flags` that are true become tags of the flag's name.
- The label (or flag) `__ignore__` marks regions labelme's own converters leave out; they
  are skipped and reported (`ignore_label=None` imports them as a class).
- A file that is not valid labelme JSON, or whose image is missing, is skipped with the
  reason (the other files still import); when `source` is that one file, it is an error.

Export: `<name>.json` next to a copy of each image, labelme 5 schema: rectangles, polygons,
masks (shape_type "mask", base64 PNG of 0/1), tags as true flags (false for the other tag
classes); `imageData` is null.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import FormatError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_json,
    exportable_images,
    load_json_file,
    register_image,
    safe_join,
    unique_name,
)
from studio.core.formats.masks import default_split
from studio.core.geometry import MaskGeom, clip_box, clip_geometry, polygon_area, rasterize

SOURCE = "import:labelme"
LABELME_VERSION = "5.5.0"
CIRCLE_VERTICES = 64
NO_AREA_SHAPES = ("point", "points", "line", "linestrip")
MAX_EMBEDDED_BYTES = 256 * 2**20
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp"), (b"II*\x00", ".tif"),
          (b"MM\x00*", ".tif"), (b"RIFF", ".webp"))


class _Skip(Exception):
    """A shape that cannot be imported; the message is the reason."""


def load_labelme(path: Path) -> dict:
    """Parse one labelme file; anything that is not labelme JSON is a FormatError."""
    data = load_json_file(path, "labelme file")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise FormatError(f"{path.name} is not a labelme file (it has no 'shapes' list).")
    return data


def _points(value, n_min: int) -> np.ndarray:
    try:
        pts = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _Skip("points are not a list of [x, y] numbers") from exc
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise _Skip("points are not a list of [x, y] numbers")
    if len(pts) < n_min:
        raise _Skip(f"{len(pts)} points (needs {n_min})")
    return pts


def circle_polygon(center, on_circle, n: int = CIRCLE_VERTICES) -> np.ndarray:
    """`n` vertices on the circle through `on_circle` around `center`."""
    cx, cy = center
    r = math.hypot(on_circle[0] - cx, on_circle[1] - cy)
    t = np.arange(n) * (2 * math.pi / n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def decode_mask_png(text: str, limit: tuple[int, int]) -> np.ndarray:
    """A labelme base64 mask PNG as a bool array (non-zero = inside), bounded in size."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(text, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:
        raise _Skip("the mask image is too large") from exc
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
        raise _Skip("the mask is not a base64 PNG") from exc
    if w > limit[1] + 1 or h > limit[0] + 1:
        raise _Skip(f"the mask ({w}x{h}) is larger than the image")
    arr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise _Skip("the mask PNG cannot be decoded")
    if arr.ndim == 3:
        arr = arr[:, :, :3].max(axis=2) if arr.shape[2] != 2 else arr[:, :, 0]
    return arr != 0


def shape_region(shape: dict, height: int, width: int, warnings: list[str], item: str):
    """(kind, geometry) of one labelme shape; raises _Skip with the reason when it has none."""
    kind = shape.get("shape_type") or "polygon"  # labelme < 4 wrote no shape_type
    if kind in NO_AREA_SHAPES:
        raise _Skip(f"labelme {kind} shapes have no area; only regions (rectangle, polygon, "
                    "circle, mask) are imported")
    if kind == "rectangle":
        pts = _points(shape.get("points"), 2)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        clipped = clip_box(box, width, height)
        if clipped[2] <= 0 or clipped[3] <= 0:
            raise _Skip("rectangle has no area inside the image")
        if not np.allclose(clipped, box):
            warnings.append(f"{item}: rectangle clipped to the {width}x{height} image")
        return "box", clipped
    if kind == "polygon":
        pts = _points(shape.get("points"), 3)
        if polygon_area(pts) <= 0:
            raise _Skip("polygon has no area")
        return "polygon", _inside(pts, width, height, warnings, item)
    if kind == "circle":
        pts = _points(shape.get("points"), 2)
        poly = circle_polygon(pts[0], pts[1])
        if polygon_area(poly) <= 0:
            raise _Skip("circle has radius 0")
        return "polygon", _inside(poly, width, height, warnings, item)
    if kind == "mask":
        pts = _points(shape.get("points"), 2)
        if not isinstance(shape.get("mask"), str):
            raise _Skip("mask shape without its mask image")
        bitmap = decode_mask_png(shape["mask"], (height, width))
        x, y = (int(v) for v in pts.min(axis=0))  # labelme truncates the corner to int
        geom = MaskGeom.from_full(MaskGeom(x, y, bitmap).to_full(height, width))
        if geom.area == 0:
            raise _Skip("mask is empty inside the image")
        return "mask", geom
    raise _Skip(f"unknown shape type {kind!r}")


def _inside(pts: np.ndarray, width: int, height: int, warnings: list[str], item: str):
    clipped, changed = clip_geometry("polygon", pts, width, height)
    if clipped is None:
        raise _Skip(f"polygon lies outside the {width}x{height} image")
    if changed:
        warnings.append(f"{item}: polygon clipped to the {width}x{height} image")
    return clipped


def _embedded_image(data: dict, json_path: Path, tmp_dir: Path) -> Path | None:
    text = data.get("imageData")
    if not isinstance(text, str) or not text:
        return None
    if len(text) > MAX_EMBEDDED_BYTES:
        raise _Skip("the embedded image is too large")
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise _Skip("imageData is not valid base64") from exc
    ext = next((e for magic, e in _MAGIC if raw.startswith(magic)), None)
    if ext is None:
        raise _Skip("imageData is not a PNG, JPEG, BMP, TIFF or WebP image")
    path = tmp_dir / (json_path.stem + ext)
    path.write_bytes(raw)
    return path


def _find_image(data: dict, json_path: Path, root: Path, images_dir: Path | None
                ) -> Path | None:
    from studio.core.images import is_image_file

    name = data.get("imagePath")
    candidates = []
    if isinstance(name, str) and name.strip():
        if images_dir is not None:
            candidates.append(safe_join(images_dir, Path(name.replace("\\", "/")).name))
        rel = (json_path.parent.relative_to(root) / name.replace("\\", "/")).as_posix()
        candidates.append(safe_join(root, rel))
    elif images_dir is not None:
        candidates.append(safe_join(images_dir, json_path.stem + ".jpg"))
    return next((c for c in candidates if c.is_file() and is_image_file(c)), None)


def import_labelme(project, source: Path, images_dir: Path | None = None,
                   report: ImportReport | None = None, *, ignore_label: str | None = "__ignore__",
                   split: str | None = None) -> ImportReport:
    """Import labelme JSON files (see the module docstring)."""
    report = report or ImportReport("labelme")
    source = Path(source)
    single = source.is_file()
    root = source.parent if single else source
    files = [source] if single else sorted(p for p in source.rglob("*.json") if p.is_file())
    if not files:
        raise FormatError(f"No labelme JSON files found in {source}.")
    split = default_split(root, split)
    classes: dict[str, int] = {}

    def class_id(name: str) -> int:
        if name not in classes:
            if project.class_by_name(name) is None:
                report.classes_added.append(name)
            classes[name] = project.get_or_add_class(name)
        return classes[name]

    with tempfile.TemporaryDirectory(prefix="labelme_") as tmp:
        for path in files:
            item = path.relative_to(root).as_posix()
            try:
                _import_file(project, path, root, images_dir, Path(tmp), report, item, split,
                             ignore_label, class_id)
            except (FormatError, _Skip) as exc:
                if single:
                    text = str(exc)
                    raise FormatError(text if text.startswith(path.name) else f"{item}: {text}"
                                      ) from exc
                report.skip(item, str(exc))
    return report


def _import_file(project, path, root, images_dir, tmp, report, item, split, ignore_label,
                 class_id) -> None:
    data = load_labelme(path)
    image = _find_image(data, path, root, images_dir)
    copy = False
    if image is None:
        image = _embedded_image(data, path, tmp)
        copy = True
        if image is None:
            raise _Skip(f"its image {data.get('imagePath')!r} was not found and it has no "
                        "imageData")
    added = register_image(project, image, report, item, split=split, copy=copy)
    if added is None or not added[1]:
        return
    image_id = added[0]
    record = project.image(image_id)
    h, w = record.height, record.width
    if (data.get("imageHeight"), data.get("imageWidth")) not in ((h, w), (None, None)):
        report.warnings.append(f"{item}: the file says the image is {data.get('imageWidth')}x"
                               f"{data.get('imageHeight')}, the image is {w}x{h}")
    items = []
    flags = data.get("flags") or {}
    if isinstance(flags, dict):
        for name, value in flags.items():
            if value is True and isinstance(name, str) and name.strip():
                if name == ignore_label:
                    report.skip(f"{item} flag {name}", "the __ignore__ flag is not imported")
                    continue
                items.append(dict(image_id=image_id, class_id=class_id(name), kind="tag",
                                  source=SOURCE))
                report.count("tag", name)
    groups: dict[tuple[str, object], list] = defaultdict(list)
    for i, shape in enumerate(data["shapes"]):
        where = f"{item} shape {i}"
        label = shape.get("label") if isinstance(shape, dict) else None
        if not isinstance(label, str) or not label.strip():
            report.skip(where, "shape without a label")
            continue
        if label == ignore_label:
            report.skip(where, f"{ignore_label} regions are not imported")
            continue
        try:
            region = shape_region(shape, h, w, report.warnings, where)
        except _Skip as exc:
            report.skip(where, str(exc))
            continue
        group = shape.get("group_id")
        key = (label, i) if group is None else (label, ("group", str(group)))
        groups[key].append(region)
    for (label, _), regions in groups.items():
        if len(regions) == 1:
            kind, geom = regions[0]
        else:
            union = np.zeros((h, w), dtype=bool)
            for k, g in regions:
                union |= rasterize(k, g, h, w)
            kind, geom = "mask", MaskGeom.from_full(union)
            if geom.area == 0:
                report.skip(f"{item} group {label}", "grouped shapes cover no pixel")
                continue
        items.append(dict(image_id=image_id, class_id=class_id(label), kind=kind, geometry=geom,
                          source=SOURCE))
        report.count(kind, label)
    project.add_annotations(items)


# --- export -------------------------------------------------------------------------------
def _mask_b64(bitmap: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", bitmap.astype(np.uint8))
    if not ok:  # pragma: no cover - encoding a uint8 array does not fail
        raise FormatError("Could not encode a mask as PNG.")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _shape(label: str, kind: str, points, mask: str | None = None) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": kind, "flags": {}, "mask": mask}


def annotation_shape(label: str, ann) -> dict | None:
    """The labelme shape of one region annotation (None for tags)."""
    if ann.kind == "box":
        x, y, w, h = ann.geometry
        return _shape(label, "rectangle", [[x, y], [x + w, y + h]])
    if ann.kind == "polygon":
        return _shape(label, "polygon", np.asarray(ann.geometry, dtype=float).tolist())
    if ann.kind == "mask":
        g = ann.geometry.tight()
        if g.area == 0:
            return None
        return _shape(label, "mask", [[float(g.x), float(g.y)],
                                      [float(g.x + g.width - 1), float(g.y + g.height - 1)]],
                      _mask_b64(g.bitmap))
    return None


def export_labelme(project, out_dir: Path, split: str | None = None) -> ExportReport:
    """Write one labelme JSON next to a copy of each image (see the module docstring)."""
    out_dir = Path(out_dir)
    report = ExportReport("labelme", out_dir)
    names = {c.id: c.name for c in project.classes()}
    tag_classes = sorted({names[a.class_id] for a in project.iter_annotations(kind="tag")})
    used: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    for record in exportable_images(project, split, report):
        stem = unique_name(record.abs_path.stem, used, str(record.id))
        image_name = stem + record.abs_path.suffix
        atomic_copy(record.abs_path, out_dir / image_name)
        flags = dict.fromkeys(tag_classes, False)
        shapes = []
        for ann in project.annotations(record.id):
            if ann.kind == "tag":
                flags[names[ann.class_id]] = True
                report.annotations += 1
                continue
            shape = annotation_shape(names[ann.class_id], ann)
            if shape is None:
                report.skip(f"annotation {ann.id}", "empty mask")
                continue
            shapes.append(shape)
            report.annotations += 1
        data = {"version": LABELME_VERSION, "flags": flags, "shapes": shapes,
                "imagePath": image_name, "imageData": None,
                "imageHeight": record.height, "imageWidth": record.width}
        atomic_write_json(out_dir / f"{stem}.json", data)
        report.files += [out_dir / image_name, out_dir / f"{stem}.json"]
        report.images += 1
    return report
