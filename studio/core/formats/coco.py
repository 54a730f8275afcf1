"""COCO JSON (detection and instance segmentation): import and export.

Import rules:
- `source` is the JSON file; `file_name`s resolve inside `images_dir`, else the JSON's folder
  (or its `images/` subfolder, where our own exports keep them). A path that would leave that
  folder is refused for that image (reported), never read.
- An object with a segmentation becomes a region: one polygon -> "polygon"; several polygon
  parts (an object split by occlusion) -> one "mask" rasterised from the union of the parts
  (our polygons are single rings); RLE (compressed or list counts) and `iscrowd=1` -> "mask".
  An object with only a bbox becomes a "box" (clipped to the image, with a warning).
- Classes come from category names; only categories that objects use are created, in the
  file's category order (`all_classes=True` creates every category).
- Vision Studio extras on each image, written by our export and read back: `studio_tags`
  (class names of image-level tags), `studio_split`, `studio_status`; object attributes
  (e.g. difficult, truncated) go to each annotation's `attributes`, as CVAT writes them.

Export: COCO has no image-level labels, so tags are written as the `studio_tags` list of
their image (other COCO tools ignore it); the export report counts only the objects in
`annotations` and says in a note how many tags went to `studio_tags` (for a classification
project, export the folders format instead).
- The split of an image is `studio_split`, else the `split` option, else guessed from the JSON's
  folder name (train/valid/test as Roboflow lays them out), else "none".
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from studio.core.errors import FormatError, UnsafePathError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_json,
    clip_to_image,
    exportable_images,
    load_json_file,
    register_image,
    safe_join,
    stated_size_orientation,
    unique_name,
)
from studio.core.geometry import (
    MaskGeom,
    clip_box,
    clip_polygon,
    geometry_area,
    geometry_bbox,
    orient_geometry,
    polygon_area,
    rle_encode,
)
from studio.core.splits import FOLDER_SPLITS, SPLITS, UNASSIGNED, check_split

SOURCE = "import:coco"
STATUSES = ("new", "in_progress", "done", "review")


# --- reading ------------------------------------------------------------------------------
def load_json(path: Path) -> object:
    """Parse a JSON annotation file; anything unreadable is a FormatError naming the file."""
    return load_json_file(path, "COCO annotation file")


def _require(obj: dict, key: str, where: str, path: Path):
    if not isinstance(obj, dict) or key not in obj:
        raise FormatError(f"{path.name}: {where} has no {key!r} key; it is not a valid COCO file.")
    return obj[key]


def _key(value, what: str, path: Path):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise FormatError(f"{path.name}: {what} {value!r} is not an integer or string id.")
    return value


def rle_counts_from_string(text: str) -> list[int]:
    """Decode COCO's compressed RLE string (as pycocotools' rleFrString does), validated."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("truncated RLE string")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"bad character {text[p]!r} in RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle_checked(rle: dict, height: int, width: int) -> np.ndarray:
    """Decode an RLE from an untrusted file, checking its counts cover exactly h x w pixels."""
    size = rle.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2 or [int(size[0]), int(size[1])] != [
            height, width]:
        raise ValueError(f"RLE size {size!r} differs from the image size [{height}, {width}]")
    counts = rle.get("counts")
    if isinstance(counts, str):
        counts = rle_counts_from_string(counts)
    elif isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            raise ValueError("RLE counts must be integers")
    else:
        raise ValueError("RLE counts must be a string or a list of integers")
    arr = np.asarray(counts, dtype=np.int64)
    if (arr < 0).any() or int(arr.sum()) != height * width:
        raise ValueError(f"RLE counts do not add up to {height}x{width} pixels")
    values = np.arange(arr.size, dtype=np.int64) % 2 == 1
    flat = np.repeat(values, arr)
    return flat.reshape(width, height).T.copy()


def _numbers(values) -> list[float] | None:
    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    out = [float(v) for v in values]
    return out if all(math.isfinite(v) for v in out) else None


def convert_object(ann: dict, width: int, height: int, item: str, report: ImportReport):
    """(kind, geometry) of one COCO object, or None (skipped and reported)."""
    seg = ann.get("segmentation")
    crowd = bool(ann.get("iscrowd", 0))
    if isinstance(seg, dict):
        try:
            return _mask_or_skip(decode_rle_checked(seg, height, width), item, report)
        except (ValueError, TypeError) as exc:
            report.skip(item, f"bad RLE segmentation: {exc}")
            return None
    if isinstance(seg, list) and seg:
        parts = []
        for i, part in enumerate(seg):
            coords = _numbers(part)
            if coords is None or len(coords) % 2:
                report.skip(f"{item} part {i}", "polygon coordinates are not an even list of numbers")
            elif len(coords) < 6:
                report.skip(f"{item} part {i}", f"polygon with {len(coords) // 2} points (needs 3)")
            else:
                parts.append(coords)
        if not parts:
            report.skip(item, "no usable polygon")
            return None
        if len(parts) == 1 and not crowd:
            pts = np.asarray(parts[0], dtype=np.float64).reshape(-1, 2)
            if polygon_area(pts) <= 0:
                report.skip(item, "polygon has no area")
                return None
            clipped = clip_to_image("polygon", pts, width, height, item, report)
            return None if clipped is None else ("polygon", clipped)
        # pycocotools gets only coordinates inside the image (it crashes on huge ones)
        inside = [clip_polygon(np.asarray(p).reshape(-1, 2), width, height) for p in parts]
        if any(len(c) != len(p) // 2 or not np.array_equal(c.reshape(-1), p)
               for c, p in zip(inside, parts, strict=True)):
            report.warnings.append(f"{item}: polygon parts clipped to the {width}x{height} "
                                   "image")
        parts = [c.reshape(-1).tolist() for c in inside if len(c) >= 3]
        if not parts:
            report.skip(item, f"polygon lies outside the {width}x{height} image")
            return None
        rles = coco_mask.frPyObjects(parts, height, width)
        return _mask_or_skip(coco_mask.decode(coco_mask.merge(rles)).astype(bool), item, report)
    if seg not in (None, []):
        report.skip(item, f"segmentation of unknown form ({type(seg).__name__})")
        return None
    box = _numbers(ann.get("bbox"))
    if box is None or len(box) != 4:
        report.skip(item, "no segmentation and no valid bbox [x, y, w, h]")
        return None
    if box[2] <= 0 or box[3] <= 0:
        report.skip(item, f"bbox {box} has no area")
        return None
    clipped = clip_box(tuple(box), width, height)
    if clipped[2] <= 0 or clipped[3] <= 0:
        report.skip(item, f"bbox {box} lies outside the {width}x{height} image")
        return None
    if not np.allclose(clipped, box, atol=1e-6):
        report.warnings.append(f"{item}: bbox {box} clipped to the {width}x{height} image")
    return "box", tuple(float(v) for v in clipped)


def _mask_or_skip(mask: np.ndarray, item: str, report: ImportReport):
    geom = MaskGeom.from_full(mask)
    if geom.area == 0:
        report.skip(item, "empty mask")
        return None
    return "mask", geom


def _default_split(source: Path, split: str | None) -> str:
    if split is not None:
        return check_split(split)
    return FOLDER_SPLITS.get(source.parent.name.lower(), UNASSIGNED)


def _resolve_image(base: Path, file_name: str, fallback: bool) -> Path:
    path = safe_join(base, file_name)
    if fallback and not path.exists() and (base / "images").is_dir():
        other = safe_join(base, "images/" + str(file_name).replace("\\", "/").lstrip("./"))
        if other.exists():
            return other
    return path


def import_coco(project, source: Path, images_dir: Path | None = None,
                report: ImportReport | None = None, split: str | None = None,
                all_classes: bool = False, copy_images: bool = False) -> ImportReport:
    """Import a COCO JSON file into `project` (call inside a transaction, see import_dataset)."""
    source = Path(source)
    report = report or ImportReport("coco")
    data = load_json(source)
    if not isinstance(data, dict):
        raise FormatError(f"{source.name}: the top level must be an object with images, "
                          "annotations and categories.")
    images = _require(data, "images", "the file", source)
    objects = _require(data, "annotations", "the file", source)
    categories = _require(data, "categories", "the file", source)
    for key, value in (("images", images), ("annotations", objects), ("categories", categories)):
        if not isinstance(value, list):
            raise FormatError(f"{source.name}: {key!r} must be a list.")
    default_split = _default_split(source, split)

    cat_names: dict = {}
    for i, cat in enumerate(categories):
        cid = _key(_require(cat, "id", f"category #{i}", source), "category id", source)
        name = _require(cat, "name", f"category {cid}", source)
        if not isinstance(name, str) or not name.strip():
            raise FormatError(f"{source.name}: category {cid} has an empty name.")
        if cid in cat_names:
            raise FormatError(f"{source.name}: category id {cid} appears twice.")
        cat_names[cid] = name.strip()

    image_ids = set()
    for i, img in enumerate(images):
        image_ids.add(_key(_require(img, "id", f"image #{i}", source), "image id", source))
        _require(img, "file_name", f"image {img['id']}", source)
    by_image: dict = defaultdict(list)
    used_cats = set()
    for i, ann in enumerate(objects):
        item = f"annotation {ann.get('id', f'#{i}') if isinstance(ann, dict) else f'#{i}'}"
        img_id = _key(_require(ann, "image_id", item, source), "image_id", source)
        cat_id = _key(_require(ann, "category_id", item, source), "category_id", source)
        if img_id not in image_ids:
            report.skip(item, f"refers to image id {img_id}, which is not in 'images'")
        elif cat_id not in cat_names:
            report.skip(item, f"unknown category id {cat_id}")
        else:
            by_image[img_id].append((item, ann))
            used_cats.add(cat_id)

    class_ids = {}
    for cid, name in cat_names.items():
        if all_classes or cid in used_cats:
            known = project.class_by_name(name)
            class_ids[cid] = project.get_or_add_class(name)
            if known is None:
                report.classes_added.append(name)

    base = Path(images_dir) if images_dir else source.parent
    for img in images:
        _import_image(project, img, base, images_dir is None, by_image.get(img["id"], []),
                      cat_names, class_ids, default_split, copy_images, report)
    return report


def _import_image(project, img: dict, base: Path, fallback: bool, objects: list, cat_names: dict,
                  class_ids: dict, default_split: str, copy_images: bool,
                  report: ImportReport) -> None:
    file_name = img["file_name"]
    try:
        path = _resolve_image(base, str(file_name), fallback)
    except UnsafePathError as exc:
        report.skip(str(file_name), f"refused: {exc}")
        return
    split = img.get("studio_split", default_split)
    status = img.get("studio_status", "new")
    split = split if split in SPLITS else default_split
    status = status if status in STATUSES else "new"
    added = register_image(project, path, report, str(file_name), split=split, status=status,
                           copy=copy_images)
    if added is None:
        if objects:
            report.skip(str(file_name), f"{len(objects)} annotations not imported with the image")
        return
    image_id, take = added
    if img.get("studio_status") in STATUSES:
        report.status_given.add(image_id)  # our own export: keep the status it recorded
    if not take:
        return
    rec = project.image(image_id)
    orientation = stated_size_orientation(rec, (img.get("width"), img.get("height")),
                                          str(file_name), len(objects), report)
    if orientation is None:
        objects = []
    # coordinates are in the pixels the file describes (stored order when it ignored EXIF)
    w, h = (rec.height, rec.width) if orientation in (5, 6, 7, 8) else (rec.width, rec.height)
    rows = []
    for item, ann in objects:
        converted = convert_object(ann, w, h, f"{file_name}: {item}", report)
        if converted is None:
            continue
        kind, geom = converted
        if orientation not in (None, 1):
            geom = orient_geometry(kind, geom, orientation, w, h)
        score = ann.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) \
            and math.isfinite(score) else None
        attributes = ann.get("attributes")  # CVAT's and our own export write them here
        if not (isinstance(attributes, dict) and all(
                isinstance(v, (bool, int, float, str)) for v in attributes.values())):
            attributes = {}
        rows.append(dict(image_id=image_id, class_id=class_ids[ann["category_id"]], kind=kind,
                         geometry=geom, source=SOURCE, score=score, attributes=attributes))
        report.count(kind, cat_names[ann["category_id"]])
    tags = img.get("studio_tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        report.skip(f"{file_name}: studio_tags", "not a list of class names")
        tags = []
    for tag in tags:
        if project.class_by_name(tag.strip()) is None:
            report.classes_added.append(tag.strip())
        rows.append(dict(image_id=image_id, class_id=project.get_or_add_class(tag), kind="tag",
                         geometry=None, source=SOURCE))
        report.count("tag", tag.strip())
    if rows:
        project.add_annotations(rows)


# --- writing ------------------------------------------------------------------------------
def segmentation_of(kind: str, geometry, width: int, height: int):
    """The COCO `segmentation` value of a geometry (box -> [])."""
    if kind == "polygon":  # clipped: a project from an older version may hold any value
        points = clip_polygon(geometry, width, height)
        return [np.round(points, 4).reshape(-1).tolist()] if len(points) >= 3 else []
    if kind == "mask":
        return rle_encode(geometry.to_full(height, width))
    return []


def coco_object(kind: str, geometry, width: int, height: int) -> dict:
    """The geometry fields of one COCO object (bbox [x, y, w, h], area, iscrowd,
    segmentation) as our export writes them; mAP evaluation builds its ground truth
    with this too, so the two never disagree."""
    return {"bbox": [round(float(v), 3) for v in geometry_bbox(kind, geometry)],
            "area": float(geometry_area(kind, geometry)), "iscrowd": 0,
            "segmentation": segmentation_of(kind, geometry, width, height)}


def export_coco(project, out_dir: Path, split: str | None = None) -> ExportReport:
    """Write `annotations.json` and copy the images into `images/` under `out_dir`."""
    out_dir = Path(out_dir)
    report = ExportReport("coco", out_dir)
    classes = project.classes()
    cat_of = {c.id: i + 1 for i, c in enumerate(classes)}
    categories = [{"id": cat_of[c.id], "name": c.name, "supercategory": ""} for c in classes]
    images_out, objects_out, used = [], [], set()
    n_tags = 0
    for rec in exportable_images(project, split, report):
        name = unique_name(rec.abs_path.name, used, str(rec.id))
        atomic_copy(rec.abs_path, out_dir / "images" / name)
        image_no = len(images_out) + 1
        entry = {"id": image_no, "file_name": name, "width": rec.width, "height": rec.height,
                 "studio_split": rec.split, "studio_status": rec.status}
        tags = []
        for ann in project.annotations(rec.id):
            if ann.kind == "tag":
                tags.append(project.class_record(ann.class_id).name)
                n_tags += 1
                continue
            obj = {"id": len(objects_out) + 1, "image_id": image_no,
                   "category_id": cat_of[ann.class_id],
                   **coco_object(ann.kind, ann.geometry, rec.width, rec.height)}
            if ann.score is not None:
                obj["score"] = float(ann.score)
            if ann.attributes:
                obj["attributes"] = dict(ann.attributes)
            objects_out.append(obj)
            report.annotations += 1
        if tags:
            entry["studio_tags"] = tags
        images_out.append(entry)
        report.images += 1
    data = {"info": {"description": f"Exported from Vision Studio project {project.name}"},
            "licenses": [], "images": images_out, "annotations": objects_out,
            "categories": categories}
    target = out_dir / "annotations.json"
    atomic_write_json(target, data)
    report.files.append(target)
    if n_tags:
        report.notes.append(
            f"{n_tags} image tags were written as 'studio_tags' on their images, not as COCO "
            "annotations (COCO has no image-level labels; other tools ignore that key)"
            + ("; for a classification project use --format folders" if not objects_out
               else "") + ".")
    return report
