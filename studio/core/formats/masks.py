"""Semantic label-map folders ("masks"): `images/` plus `masks/` with one label image each.

Layout: `source/images/` (also `image/`, `imgs/`, `JPEGImages/`) and `source/masks/` (also
`labels/`, `label/`, `SegmentationClass/`, ...), matched by the path relative to those
folders without its extension; a mask may also be called `<name>_mask.png`. A label image is
an indexed (palette) PNG whose indices are the values, or a grey image of values (8 or 16 bit).
Masks pair with images by the rules of `labelimages` (shared with the instances format).

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
- Near-binary masks (values close to 0 and 255 only, as JPEG compression leaves a 0/255
  mask) are thresholded to 0/255 (values >= 128 are foreground) with a warning; the
  `threshold` option (CLI: --threshold) sets the cut, and forces thresholding of any mask.
- Values that look like instance ids (each image numbers its objects 1..k, mostly one blob
  each; an object split in two by occlusion still counts) are refused with a hint to import them as instances; give class names (the `classes`
  option or a classes file) to import the values as classes all the same.
- Files in images/ or masks/ that are not images we read are reported as skipped; when
  masks exist but none pairs with an image, the import is refused (nothing would be
  labelled).
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

import numpy as np

from studio.core.errors import DataError, FormatError, ImageError
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
from studio.core.formats.labelimages import (  # noqa: F401 (re-exported for callers)
    IMAGE_DIRS,
    MASK_DIRS,
    MASK_SUFFIXES,
    find_subfolder,
    image_files,
    is_lossy,
    looks_like_instance_ids,
    near_binary,
    pair_label_images,
    read_label_image,
    threshold_label,
)
from studio.core.geometry import MaskGeom
from studio.core.splits import FOLDER_SPLITS, UNASSIGNED, check_split

SOURCE = "import:masks"
CLASS_FILES = ("classes.txt", "class_names.txt", "labels.txt")
VOID = 255
_EXPLICIT = re.compile(r"^(\d+)\s*[:,=\s]\s*(\S.*)$")


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


# --- import -------------------------------------------------------------------------------
def import_masks(project, source: Path, images_dir: Path | None = None,
                 report: ImportReport | None = None, *, classes=None, background: int = 0,
                 import_background: bool = True, void: int = VOID, binary: bool | None = None,
                 split: str | None = None, threshold: int | None = None) -> ImportReport:
    """Import a folder of images and semantic label maps (see the module docstring)."""
    report = report or ImportReport("masks")
    source = Path(source)
    image_dir = Path(images_dir) if images_dir else find_subfolder(source, IMAGE_DIRS)
    if image_dir is None or not image_dir.is_dir():
        raise FormatError(f"No images folder in {source}: expected images/ (or image/) next to "
                          "masks/ (or labels/), or give the images folder explicitly.")
    mask_dir = find_subfolder(source, MASK_DIRS)
    own_mask_dir = mask_dir is not None
    if mask_dir is None:
        if images_dir is None:
            raise FormatError(f"No masks folder in {source}: expected masks/ (or labels/).")
        mask_dir = source
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)
                                  or not 1 <= threshold <= 255):
        raise FormatError(f"threshold must be a whole number from 1 to 255, not {threshold!r}.")
    images = image_files(image_dir, report)
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

    pairs, unmatched = pair_label_images(images, image_dir, mask_dir,
                                         report if own_mask_dir else None)
    for p in unmatched:
        report.skip(str(p.relative_to(mask_dir)), "mask without a matching image")
    if unmatched and not any(mask for _img, mask in pairs):
        raise DataError(f"None of the {len(unmatched)} masks in {mask_dir.name}/ pairs with an "
                        f"image in {image_dir.name}/: name each mask like its image (a.png or "
                        f"a_mask.png for a.jpg); nothing was imported.")

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
    if threshold is None and binary is not False and not names and near_binary(values):
        threshold = 128
        lossy = sum(is_lossy(m) for m in labels)
        report.warnings.append(
            f"the masks hold only values near 0 and 255 ({len(values)} values"
            + (f"; {lossy} saved as lossy JPEG/WebP" if lossy else "") + "): read as binary "
            "masks, values >= 128 foreground; pass threshold=N (--threshold N) to move the "
            "cut, and save masks as PNG")
    if threshold is not None:
        for mask, arr in labels.items():
            if arr is not None:
                labels[mask] = threshold_label(arr, threshold)
        values = {0, 255} & {255 if v >= threshold else 0 for v in values}
        binary = True
    elif any(is_lossy(m) for m in labels) and len(values) > 2:
        report.warnings.append("some masks are saved as lossy JPEG/WebP, which alters label "
                               "values; save label images as PNG")
    if binary is None:
        binary = not names_from_file and values <= {0, 255} and 255 in values
    if binary:
        names = _binary_names(names)
    elif not names and looks_like_instance_ids(a for a in labels.values() if a is not None):
        raise DataError(
            f"The masks in {mask_dir.name}/ look like instance ids (each image numbers its "
            f"objects 1..N, mostly one blob each; {len(values) - 1} values in all), not classes: "
            "import them with the instances format (--format instances), or give class names "
            "(the classes option or a classes.txt) to import the values as classes.")

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
        if threshold is not None and labels[mask] is None:
            arr = threshold_label(arr, threshold)
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
    boxes = tags = 0
    for record in exportable_images(project, split, report):
        name = unique_name(record.abs_path.name, used, str(record.id))
        atomic_copy(record.abs_path, out_dir / "images" / name)
        report.files.append(out_dir / "images" / name)
        report.images += 1
        anns = project.annotations(record.id)
        boxes += sum(a.kind == "box" for a in anns)
        tags += sum(a.kind == "tag" for a in anns)
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
    if tags:
        report.skip("image tags", f"{tags} image-level tags have no form in label maps; "
                                  "not written")
    return report
