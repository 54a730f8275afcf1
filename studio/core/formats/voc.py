"""Pascal VOC (XML boxes, SegmentationClass / SegmentationObject PNGs): import and export.

Import rules:
- `source` is a VOC root (Annotations/, JPEGImages/, optionally SegmentationClass/,
  SegmentationObject/, ImageSets/Main/*.txt and labelme's class_names.txt) or a plain folder
  of XML files (images beside them or in `images_dir`). In a VOC root every image of the
  images folder is imported, annotated or not.
- XML is parsed with defusedxml: a file declaring entities or a DTD is refused (FormatError).
- VOC pixel coordinates are 1-based and inclusive: xmin=1, xmax=10 is our box x=0, w=10.
- `difficult`, `truncated` and `occluded` flags become the object's attributes
  (`skip_difficult=True` leaves difficult objects out); export writes them back (0 when
  an object has no such attribute).
- Segmentation PNGs hold palette indices; the class of index i is line i of class_names.txt
  when present, else the 21 standard VOC classes. Index 0 (background) and 255 (void/border)
  stay unlabelled. With SegmentationObject, each object id becomes one "mask" annotation
  (class = its majority SegmentationClass index); without it, one mask per class per image.
- Splits come from ImageSets/Main/{train,val,test}.txt (trainval.txt when train/val lack).

Export writes Annotations/*.xml (boxes only: polygons and masks go to the PNGs, so a round
trip does not double them), JPEGImages/ copies, ImageSets/Main/*.txt, and for images with
regions SegmentationClass/ and SegmentationObject/ palette PNGs plus class_names.txt.
Where regions overlap, the later annotation wins the pixel (as in `rasterize.label_map`).
"""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException
from PIL import Image

from studio.core import images as imgs
from studio.core.errors import FormatError, ImageError, UnsafePathError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_bytes,
    atomic_write_text,
    exportable_images,
    register_image,
    safe_join,
    stated_size_orientation,
    unique_name,
)
from studio.core.geometry import MaskGeom, clip_box, orient_geometry, rasterize
from studio.core.rasterize import label_map
from studio.core.splits import ASSIGNED_SPLITS, UNASSIGNED

SOURCE = "import:voc"
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOID = 255
CLASS_DIRS = ("SegmentationClass", "SegmentationClassPNG")
OBJECT_DIRS = ("SegmentationObject", "SegmentationObjectPNG")


def voc_palette(n: int = 256) -> np.ndarray:
    """The standard VOC colour map: (n, 3) uint8, index 0 black, 255 near-white (void)."""
    pal = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


# --- reading ------------------------------------------------------------------------------
def parse_xml(path: Path) -> dict:
    """Parse one VOC annotation file: {"filename", "objects": [{name, box, difficult}], ...}."""
    try:
        root = SafeET.parse(path).getroot()
    except DefusedXmlException as exc:
        raise FormatError(f"{path.name} declares entities or a DTD ({type(exc).__name__}); "
                          "such XML is refused for safety.") from exc
    except ET.ParseError as exc:
        raise FormatError(f"{path.name} is not well-formed XML ({exc}).") from exc
    except OSError as exc:
        raise FormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if root.tag != "annotation":
        raise FormatError(f"{path.name}: the root element is <{root.tag}>, not <annotation>.")
    objects = []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise FormatError(f"{path.name}: object #{i + 1} has no <name>.")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise FormatError(f"{path.name}: object #{i + 1} ({name}) has no <bndbox>.")
        coords = []
        for key in ("xmin", "ymin", "xmax", "ymax"):
            text = bnd.findtext(key)
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise FormatError(f"{path.name}: object #{i + 1} ({name}) has no numeric "
                                  f"<{key}> in its <bndbox>.") from None
            if not math.isfinite(value):
                raise FormatError(f"{path.name}: object #{i + 1} has a non-finite <{key}>.")
            coords.append(value)
        flags = {key: _flag(obj.findtext(key)) for key in VOC_FLAGS if obj.find(key) is not None}
        objects.append({"name": name, "coords": coords,
                        "difficult": flags.get("difficult", False), "flags": flags})
    tags = [t.text.strip() for t in root.findall("studio_tags/tag") if t.text and t.text.strip()]
    return {"filename": (root.findtext("filename") or "").strip(), "objects": objects,
            "size": (_int_or_zero(root.findtext("size/width")),
                     _int_or_zero(root.findtext("size/height"))),
            "tags": tags}


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes")


def voc_box(coords: list[float]) -> tuple[float, float, float, float]:
    """1-based inclusive (xmin, ymin, xmax, ymax) -> pixel-edge (x, y, w, h)."""
    xmin, ymin, xmax, ymax = coords
    return (xmin - 1.0, ymin - 1.0, xmax - xmin + 1.0, ymax - ymin + 1.0)


def read_label_png(path: Path, height: int, width: int) -> np.ndarray:
    """Palette indices of a segmentation PNG (P or L mode; RGB mapped via the VOC palette).

    The header is checked against the image size before anything is decoded.
    """
    info = imgs.image_info(path)
    if (info.width, info.height) != (width, height):
        raise ImageError(f"{path.name} is {info.width}x{info.height}, its image {width}x{height}.",
                         str(path))
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L", "I", "I;16"):
                arr = np.asarray(im)
            elif im.mode in ("RGB", "RGBA"):
                arr = _rgb_to_index(np.asarray(im.convert("RGB")), path)
            else:
                raise ImageError(f"{path.name}: unsupported label image mode {im.mode}.", str(path))
    except (OSError, Image.DecompressionBombError) as exc:
        raise ImageError(f"Cannot read the label image {path.name}: {exc}.", str(path)) from exc
    if arr.shape != (height, width):
        raise ImageError(f"{path.name} does not decode to {width}x{height}.", str(path))
    return arr.astype(np.int64)


def _rgb_to_index(rgb: np.ndarray, path: Path) -> np.ndarray:
    pal = voc_palette().astype(np.int64)
    keys = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(keys)
    flat = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pos = np.clip(np.searchsorted(keys[order], flat), 0, len(keys) - 1)
    if not np.array_equal(keys[order][pos], flat):
        raise ImageError(f"{path.name} has colours outside the VOC palette.", str(path))
    return order[pos]


def _int_or_zero(text: str | None) -> int:
    try:
        return int(float((text or "").strip()))
    except (ValueError, OverflowError):
        return 0


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _read_splits(root: Path) -> dict[str, str]:
    main = root / "ImageSets" / "Main"
    split_of: dict[str, str] = {}

    def read(name: str, split: str) -> None:
        f = main / f"{name}.txt"
        if f.is_file():
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                stem = line.split()[0] if line.split() else ""
                if stem:
                    split_of.setdefault(stem, split)

    for name in reversed(ASSIGNED_SPLITS):  # an image listed twice keeps the later part
        read(name, name)
    if not any(v in ("train", "val") for v in split_of.values()):
        read("trainval", "train")
    return split_of


def _class_names(root: Path) -> list[str]:
    f = root / "class_names.txt"
    if f.is_file():
        names = [n.strip() for n in f.read_text(encoding="utf-8").splitlines()]
        return names
    return list(VOC_CLASSES)


def _locate_image(folder: Path, filename: str, stem: str) -> Path:
    if filename:
        return safe_join(folder, filename)
    for ext in sorted(imgs.SUPPORTED_EXTENSIONS):
        candidate = safe_join(folder, stem + ext)
        if candidate.is_file():
            return candidate
    return safe_join(folder, stem + ".jpg")


def import_voc(project, source: Path, images_dir: Path | None = None,
               report: ImportReport | None = None, skip_difficult: bool = False,
               copy_images: bool = False) -> ImportReport:
    """Import a Pascal VOC folder into `project` (call inside a transaction)."""
    root = Path(source)
    report = report or ImportReport("voc")
    if not root.is_dir():
        raise FormatError(f"{root} is not a folder; give the VOC root (with Annotations/).")
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else None
    class_dir, object_dir = _find(root, CLASS_DIRS), _find(root, OBJECT_DIRS)
    is_root = ann_dir is not None or class_dir is not None or (root / "JPEGImages").is_dir()
    if ann_dir is None and not is_root:
        ann_dir = root
    img_dir = Path(images_dir) if images_dir else (root / "JPEGImages" if is_root else root)
    xml_files = sorted(ann_dir.glob("*.xml")) if ann_dir else []
    if not xml_files and class_dir is None:
        raise FormatError(f"{root} holds no VOC annotations (no Annotations/*.xml, no "
                          "SegmentationClass/); choose the VOC root folder.")
    split_of = _read_splits(root)
    parsed = {f.stem: parse_xml(f) for f in xml_files}  # parse all first: a bad file is fatal
    entries: dict[str, Path | None] = {}
    for stem, info in parsed.items():
        try:
            entries[stem] = _locate_image(img_dir, info["filename"], stem)
        except UnsafePathError as exc:
            report.skip(f"{stem}.xml", f"refused: {exc}")
    if is_root and img_dir.is_dir():
        for f in sorted(img_dir.iterdir()):
            if imgs.is_image_file(f) and f.stem not in entries and f.stem not in parsed:
                entries[f.stem] = f
    names = _class_names(root)
    n_difficult = 0
    for stem in sorted(entries):
        path = entries[stem]
        added = register_image(project, path, report, path.name, split=split_of.get(stem, UNASSIGNED),
                               copy=copy_images)
        if added is None or not added[1]:
            continue
        image_id = added[0]
        rec = project.image(image_id)
        rows = []
        info = parsed.get(stem, {"objects": [], "tags": []})
        orientation = stated_size_orientation(rec, info.get("size", (0, 0)), f"{stem}.xml",
                                              len(info["objects"]), report)
        objects = info["objects"] if orientation is not None else []
        # coordinates are in the pixels the file describes (stored order when it ignored EXIF)
        w, h = (rec.height, rec.width) if orientation in (5, 6, 7, 8) else (rec.width, rec.height)
        for i, obj in enumerate(objects):
            if obj["difficult"]:
                n_difficult += 1
                if skip_difficult:
                    report.skip(f"{stem}.xml object #{i + 1}", "marked difficult")
                    continue
            box = _clipped_box(voc_box(obj["coords"]), w, h, f"{stem}.xml object #{i + 1}",
                               report)
            if box is not None and orientation not in (None, 1):
                box = orient_geometry("box", box, orientation, w, h)
            if box is not None:
                rows.append(_row(project, image_id, obj["name"], "box", box, report))
                rows[-1]["attributes"] = obj.get("flags", {})
        for tag in info["tags"]:
            rows.append(_row(project, image_id, tag, "tag", None, report))
        rows += _segmentation_rows(project, image_id, stem, rec, class_dir, object_dir, names,
                                   report)
        if rows:
            project.add_annotations(rows)
    if n_difficult and not skip_difficult:
        report.warnings.append(f"{n_difficult} objects are marked difficult (kept as their "
                               "'difficult' attribute).")
    return report


def _clipped_box(box, width: int, height: int, item: str, report: ImportReport):
    if box[2] <= 0 or box[3] <= 0:
        report.skip(item, "box has no area (xmax < xmin or ymax < ymin)")
        return None
    clipped = clip_box(box, width, height)
    if clipped[2] <= 0 or clipped[3] <= 0:
        report.skip(item, f"box lies outside the {width}x{height} image")
        return None
    if not np.allclose(clipped, box, atol=1e-6):
        report.warnings.append(f"{item}: box clipped to the {width}x{height} image")
    return clipped


VOC_FLAGS = ("truncated", "difficult", "occluded")  # per-object yes/no flags of VOC XML


def _row(project, image_id: int, name: str, kind: str, geometry, report: ImportReport) -> dict:
    if project.class_by_name(name) is None:
        report.classes_added.append(name)
    report.count(kind, name)
    return dict(image_id=image_id, class_id=project.get_or_add_class(name), kind=kind,
                geometry=geometry, source=SOURCE)


def _class_name(names: list[str], index: int, report: ImportReport) -> str:
    if index < len(names) and names[index]:
        return names[index]
    name = f"class_{index}"
    if not any(name in w for w in report.warnings):
        report.warnings.append(f"palette index {index} has no class name; imported as {name}")
    return name


def _segmentation_rows(project, image_id, stem, rec, class_dir, object_dir, names,
                       report: ImportReport) -> list[dict]:
    cls_png = class_dir / f"{stem}.png" if class_dir else None
    obj_png = object_dir / f"{stem}.png" if object_dir else None
    cls = obj = None
    try:
        if cls_png is not None and cls_png.is_file():
            cls = read_label_png(cls_png, rec.height, rec.width)
        if obj_png is not None and obj_png.is_file():
            obj = read_label_png(obj_png, rec.height, rec.width)
    except ImageError as exc:
        report.skip(f"{stem}.png", f"segmentation not imported: {exc}")
        return []
    if cls is None:
        if obj is not None:
            report.skip(f"{stem}.png", "SegmentationObject without SegmentationClass: "
                                       "objects have no class")
        return []
    rows = []
    labelled = (cls != 0) & (cls != VOID)
    covered = np.zeros_like(labelled)
    if obj is not None:
        for oid in np.unique(obj):
            if oid in (0, VOID):
                continue
            region = (obj == oid) & labelled
            if not region.any():
                continue
            values, counts = np.unique(cls[region], return_counts=True)
            name = _class_name(names, int(values[np.argmax(counts)]), report)
            rows.append(_row(project, image_id, name, "mask", MaskGeom.from_full(region), report))
            covered |= region
    for value in np.unique(cls[labelled & ~covered]):
        region = (cls == value) & ~covered
        name = _class_name(names, int(value), report)
        rows.append(_row(project, image_id, name, "mask", MaskGeom.from_full(region), report))
    return rows


# --- writing ------------------------------------------------------------------------------
def _num(v: float) -> str:
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.3f}".rstrip("0")


def _xml_text(rec, filename: str, boxes: list, tags: list[str], segmented: bool) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for key, value in (("width", rec.width), ("height", rec.height), ("depth", rec.channels)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "1" if segmented else "0"
    for name, (x, y, w, h), attributes in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        for key in VOC_FLAGS:
            if key in attributes or key != "occluded":
                ET.SubElement(obj, key).text = "1" if attributes.get(key) else "0"
        bnd = ET.SubElement(obj, "bndbox")
        for key, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(bnd, key).text = _num(value)
    if tags:
        holder = ET.SubElement(root, "studio_tags")
        for t in tags:
            ET.SubElement(holder, "tag").text = t
    for element in root.iter():
        if element.text:
            element.text = xml_safe(element.text)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


# characters XML 1.0 cannot hold at all, not even as a character reference
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """`text` with the characters XML cannot hold written as visible `\\xNN` escapes (a
    class name of an older project may hold a NUL or a tab; the store now refuses them)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)


def _png_bytes(index_map: np.ndarray) -> bytes:
    im = Image.fromarray(index_map.astype(np.uint8), mode="P")
    im.putpalette(voc_palette().reshape(-1).tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def export_voc(project, out_dir: Path, split: str | None = None) -> ExportReport:
    """Write a VOC folder: Annotations/, JPEGImages/, ImageSets/Main/, Segmentation*/."""
    out_dir = Path(out_dir)
    report = ExportReport("voc", out_dir)
    classes = project.classes()
    name_of = {c.id: c.name for c in classes}
    class_ids = [c.id for c in classes]
    lists: dict[str, list[str]] = {s: [] for s in ASSIGNED_SPLITS}
    used: set[str] = set()
    any_seg = False
    for rec in exportable_images(project, split, report):
        filename = unique_name(rec.abs_path.name, used, str(rec.id))
        stem = Path(filename).stem
        atomic_copy(rec.abs_path, out_dir / "JPEGImages" / filename)
        anns = project.annotations(rec.id)
        boxes = [(name_of[a.class_id], a.geometry, a.attributes) for a in anns if a.kind == "box"]
        tags = [name_of[a.class_id] for a in anns if a.kind == "tag"]
        regions = [a for a in anns if a.kind in ("polygon", "mask")]
        written = len(boxes) + len(tags)
        if regions:
            written += _write_segmentation(project, rec, stem, regions, class_ids, out_dir, report)
            any_seg = True
        target = out_dir / "Annotations" / f"{stem}.xml"
        atomic_write_text(target, _xml_text(rec, filename, boxes, tags, bool(regions)))
        report.files.append(target)
        if rec.split in lists:
            lists[rec.split].append(stem)
        report.images += 1
        report.annotations += written
    lists["trainval"] = lists["train"] + lists["val"]
    for name, stems in lists.items():
        if stems:
            target = out_dir / "ImageSets" / "Main" / f"{name}.txt"
            atomic_write_text(target, "".join(s + "\n" for s in stems))
            report.files.append(target)
    if any_seg:
        target = out_dir / "class_names.txt"
        atomic_write_text(target, "".join(n + "\n" for n in ["_background_", *name_of.values()]))
        report.files.append(target)
    return report


def _write_segmentation(project, rec, stem: str, regions: list, class_ids: list[int],
                        out_dir: Path, report: ExportReport) -> int:
    if len(class_ids) > 254:
        report.skip(rec.path, "more than 254 classes do not fit VOC's palette PNGs")
        return 0
    cls_map = label_map(project, rec.id, [-1, *class_ids], fill=0)
    obj_map = np.zeros((rec.height, rec.width), dtype=np.uint8)
    for i, ann in enumerate(regions[:254]):
        obj_map[rasterize(ann.kind, ann.geometry, rec.height, rec.width)] = i + 1
    if len(regions) > 254:
        report.skip(rec.path, f"{len(regions) - 254} objects beyond VOC's 254 per image left "
                              "out of SegmentationObject")
    for folder, arr in (("SegmentationClass", cls_map), ("SegmentationObject", obj_map)):
        target = out_dir / folder / f"{stem}.png"
        atomic_write_bytes(target, _png_bytes(arr))
        report.files.append(target)
    return min(len(regions), 254)
