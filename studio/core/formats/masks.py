"""Semantic label-map folders ("masks"): `images/` plus `masks/` with one label image each.

Layout: `source/images/` (also `image/`, `imgs/`, `JPEGImages/`) and `source/masks/` (also
`labels/`, `label/`, `SegmentationClass/`, ...), matched by the path relative to those
folders without its extension; a mask may also be called `<name>_mask.png`. A label image is
an indexed (palette) PNG whose indices are the values, or a grey image of values (8 or 16 bit).

Value conventions (import):
- Class names come from the `classes` option (a list: value = position, or a mapping
  value -> name), else from `classes.txt` / `class_names.txt` / `labels.txt` in the source
  folder (one name per line, line number = value, or lines "<value> <name>"; a leading
  `__ignore__` line as labelme writes it is dropped), else `class_<value>`.
- 255 (`void`) is "not labelled" and never imported.
- The `background` value (0) becomes regions of its own class (named by the classes file, else
  "background") so that pixel coverage stays complete for training; pass
  `import_background=False` to leave it unlabelled instead.
- Binary masks (only the values 0 and 255 across the dataset, and no classes file): 0 and 255
  are two classes, "background" and "foreground" unless `classes` names them. `binary=True/False`
  forces the choice.
- Each class present in an image becomes one "mask" annotation for that image.
- An image without a mask is imported without annotations (a warning says how many); a mask
  without an image, or of another size than its image, is skipped and reported.

Export writes `images/` (copies), `masks/<name>.png` (palette PNG in the class colours, value =
class position in the project, 255 = unlabelled; polygons and masks are painted in annotation
order, so a later region wins where two overlap; boxes have no pixel region and are left out)
and `classes.txt` (one class name per line, line number = value). Importing that folder gives
back the same classes and, per image and class, the same pixels.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import FormatError, ImageError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_bytes,
    atomic_write_text,
    exportable_images,
    register_image,
    unique_name,
)
from studio.core.geometry import MaskGeom
from studio.core.splits import FOLDER_SPLITS, UNASSIGNED, check_split

SOURCE = "import:masks"
IMAGE_DIRS = ("images", "image", "imgs", "img", "JPEGImages")
MASK_DIRS = ("masks", "mask", "labels", "label", "SegmentationClass", "SegmentationClassPNG",
             "annotations")
CLASS_FILES = ("classes.txt", "class_names.txt", "labels.txt")
MASK_SUFFIXES = ("_mask", "_label", "_labels")
MAX_LABEL_PIXELS = 20000 * 20000
VOID = 255
_EXPLICIT = re.compile(r"^(\d+)\s*[:,=\s]\s*(\S.*)$")


# --- reading helpers (also used by the instances format) ---------------------------------
def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), sorted by path."""
    from studio.core.images import is_image_file

    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p)
                  and not p.name.startswith("."))


def find_subfolder(root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` that is a folder in `root` (case-insensitive), or None."""
    if not root.is_dir():
        return None
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in names:
        if name.lower() in children:
            return children[name.lower()]
    return None


def read_label_image(path: Path) -> np.ndarray:
    """A label image as a 2-D integer array: palette indices, or grey values (8/16 bit).

    Raises ImageError for unreadable, too large or colour (non-palette RGB) images.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_LABEL_PIXELS:
                raise ImageError(f"{path.name} is too large ({w}x{h}) for a label image.", str(path))
            if im.mode == "P":
                return np.array(im)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path.name} is too large for a label image.", str(path)) from exc
    except (UnidentifiedImageError, OSError):
        pass  # OpenCV below reads some files Pillow cannot, and reports the rest.
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"Cannot read the label image {path.name}.", str(path))
    if arr.ndim == 3:
        channels = arr[:, :, :3]
        if not (np.array_equal(channels[:, :, 0], channels[:, :, 1])
                and np.array_equal(channels[:, :, 0], channels[:, :, 2])):
            raise ImageError(f"{path.name} is a colour image; label images must be indexed "
                             "(palette) PNGs or grey images of class values.", str(path))
        arr = channels[:, :, 0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ImageError(f"{path.name} is not a 2-D integer label image.", str(path))
    return arr


def parse_class_names(text: str) -> dict[int, str]:
    """value -> name from a classes file: "name" per line (line number = value) or "v name"."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if lines and all(_EXPLICIT.match(ln) for ln in lines):
        out = {}
        for ln in lines:
            m = _EXPLICIT.match(ln)
            out[int(m.group(1))] = m.group(2).strip()
        return out
    if lines and lines[0] == "__ignore__":  # labelme's labels.txt: __ignore__ is -1
        lines = lines[1:]
    return dict(enumerate(lines))


def classes_from_option(classes) -> dict[int, str]:
    if classes is None:
        return {}
    if isinstance(classes, dict):
        try:
            return {int(k): str(v) for k, v in classes.items()}
        except (TypeError, ValueError) as exc:
            raise FormatError(f"The classes option needs integer values as keys: {exc}.") from exc
    if isinstance(classes, (list, tuple)):
        return {i: str(v) for i, v in enumerate(classes)}
    raise FormatError("The classes option must be a list of names or a mapping value -> name.")


def default_split(source: Path, split: str | None) -> str:
    if split is not None:
        return check_split(split)
    return FOLDER_SPLITS.get(source.name.lower(), UNASSIGNED)


def _mask_index(mask_dir: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for p in image_files(mask_dir):
        key = p.relative_to(mask_dir).with_suffix("").as_posix().lower()
        index.setdefault(key, p)
        for suffix in MASK_SUFFIXES:
            if key.endswith(suffix):
                index.setdefault(key[: -len(suffix)], p)
    return index


# --- import -------------------------------------------------------------------------------
def import_masks(project, source: Path, images_dir: Path | None = None,
                 report: ImportReport | None = None, *, classes=None, background: int = 0,
                 import_background: bool = True, void: int = VOID, binary: bool | None = None,
                 split: str | None = None) -> ImportReport:
    """Import a folder of images and semantic label maps (see the module docstring)."""
    report = report or ImportReport("masks")
    source = Path(source)
    image_dir = Path(images_dir) if images_dir else find_subfolder(source, IMAGE_DIRS)
    if image_dir is None or not image_dir.is_dir():
        raise FormatError(f"No images folder in {source}: expected images/ (or image/) next to "
                          "masks/ (or labels/), or give the images folder explicitly.")
    mask_dir = find_subfolder(source, MASK_DIRS)
    if mask_dir is None:
        if images_dir is None:
            raise FormatError(f"No masks folder in {source}: expected masks/ (or labels/).")
        mask_dir = source
    images = image_files(image_dir)
    if not images:
        raise FormatError(f"No images found in {image_dir}.")
    split = default_split(source, split)
    names = classes_from_option(classes)
    names_from_file = False
    if not names:
        for fname in CLASS_FILES:
            if (source / fname).is_file():
                names = parse_class_names((source / fname).read_text(encoding="utf-8"))
                names_from_file = True
                break

    index = _mask_index(mask_dir)
    pairs: list[tuple[Path, Path | None]] = []
    used_masks: set[Path] = set()
    for img in images:
        mask = index.get(img.relative_to(image_dir).with_suffix("").as_posix().lower())
        if mask is not None and mask.resolve() == img.resolve():
            mask = None
        pairs.append((img, mask))
        if mask is not None:
            used_masks.add(mask)
    image_root = image_dir.resolve()
    for p in sorted(set(index.values()) - used_masks):
        if image_root not in p.resolve().parents:  # masks/ may hold the images folder too
            report.skip(str(p.relative_to(mask_dir)), "mask without a matching image")

    # First pass: which values occur (decides binary masks and the order of new classes).
    labels: dict[Path, np.ndarray] = {}
    values: set[int] = set()
    budget = 256 * 2**20
    for _img, mask in pairs:
        if mask is None:
            continue
        try:
            arr = read_label_image(mask)
        except ImageError as exc:
            report.skip(str(mask.relative_to(mask_dir)), str(exc))
            continue
        values.update(int(v) for v in np.unique(arr))
        if budget > arr.nbytes:
            labels[mask] = arr
            budget -= arr.nbytes
        else:
            labels[mask] = None
    if binary is None:
        binary = not names_from_file and values <= {0, 255} and 255 in values
    if binary:
        names = _binary_names(names)

    value_class: dict[int, int] = {}

    def class_for(value: int) -> int | None:
        if value in value_class:
            return value_class[value]
        if (value == void and not binary) or (value == background and not import_background):
            return None
        name = names.get(value) or ("background" if value == background else f"class_{value}")
        if project.class_by_name(name) is None:
            report.classes_added.append(name)
        value_class[value] = project.get_or_add_class(name)
        return value_class[value]

    for value in sorted(names):  # classes named up front keep their order, present or not
        class_for(value)
    for value in sorted(values):
        class_for(value)

    no_mask = 0
    for img, mask in pairs:
        rel = str(img.relative_to(image_dir))
        if mask is not None and mask not in labels:
            continue  # unreadable mask: reported above
        added = register_image(project, img, report, rel, split=split)
        if added is None:
            continue
        image_id, take = added
        if mask is None:
            no_mask += 1
            continue
        if not take:
            continue
        arr = labels[mask] if labels[mask] is not None else read_label_image(mask)
        record = project.image(image_id)
        if arr.shape != (record.height, record.width):
            report.skip(str(mask.relative_to(mask_dir)),
                        f"mask is {arr.shape[1]}x{arr.shape[0]} but its image is "
                        f"{record.width}x{record.height}")
            continue
        items = []
        for value in np.unique(arr):
            class_id = class_for(int(value))
            if class_id is None:
                continue
            geom = MaskGeom.from_full(arr == value)
            items.append(dict(image_id=image_id, class_id=class_id, kind="mask", geometry=geom,
                              source=SOURCE))
            report.count("mask", project.class_record(class_id).name)
        project.add_annotations(items)
    if no_mask:
        report.warnings.append(f"{no_mask} images have no mask and were imported unlabelled")
    return report


def _binary_names(names: dict[int, str]) -> dict[int, str]:
    if not names:
        return {0: "background", 255: "foreground"}
    if set(names) <= {0, 255}:
        return dict(names)
    if set(names) <= {0, 1}:
        out = {0: names[0]} if 0 in names else {}
        if 1 in names:
            out[255] = names[1]
        return out
    raise FormatError("Binary masks have two values (0 and 255): give two class names.")


# --- export -------------------------------------------------------------------------------
def _palette(colors: list[str]) -> list[int]:
    pal = [0] * 768
    for i, c in enumerate(colors[:255]):
        pal[3 * i: 3 * i + 3] = [int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)]
    pal[765:768] = [255, 255, 255]  # 255 = unlabelled
    return pal


def encode_palette_png(label: np.ndarray, palette: list[int]) -> bytes:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), mode="P")
    im.putpalette(palette)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def export_masks(project, out_dir: Path, split: str | None = None) -> ExportReport:
    """Write images/, masks/ (palette label maps) and classes.txt (see the module docstring)."""
    from studio.core.rasterize import label_map

    out_dir = Path(out_dir)
    report = ExportReport("masks", out_dir)
    classes = project.classes()
    if len(classes) > 255:
        raise FormatError(f"The masks format holds at most 255 classes; this project has "
                          f"{len(classes)}. Use COCO or labelme instead.")
    class_ids = [c.id for c in classes]
    palette = _palette([c.color for c in classes])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "classes.txt", "".join(f"{c.name}\n" for c in classes))
    report.files.append(out_dir / "classes.txt")
    used: set[str] = set()
    boxes = 0
    for record in exportable_images(project, split, report):
        name = unique_name(record.abs_path.name, used, str(record.id))
        atomic_copy(record.abs_path, out_dir / "images" / name)
        report.files.append(out_dir / "images" / name)
        report.images += 1
        anns = project.annotations(record.id)
        boxes += sum(a.kind == "box" for a in anns)
        regions = [a for a in anns if a.kind in ("polygon", "mask")]
        if not regions:
            continue
        label = label_map(project, record.id, class_ids, ignore_index=VOID)
        mask_path = out_dir / "masks" / (Path(name).stem + ".png")
        atomic_write_bytes(mask_path, encode_palette_png(label, palette))
        report.files.append(mask_path)
        report.annotations += len(regions)
    if boxes:
        report.skip("boxes", f"{boxes} box annotations have no pixel region; not written")
    return report
