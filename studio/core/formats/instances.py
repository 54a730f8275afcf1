"""Instance mask folders ("instances"), as in the Data Science Bowl 2018.

Layouts read:
- DSB: `source/<id>/images/<id>.png` and `source/<id>/masks/*.png`, one binary image per
  object (any non-zero pixel belongs to it). `source` may also be one such `<id>` folder.
- Label images: `source/images/<name>` with `source/labels/<name>.*` (or `masks/`), each an
  integer label image (e.g. 16-bit TIFF) where every non-zero value is one object. Label
  images pair with images by the masks format's name rules (`labelimages`): `a_mask.png`
  labels `a.png` too.
- Any two folders: `source` a folder of label images and `images_dir` the folder of the
  images they label (`--source Annot --images Photos`); a masks/ or labels/ folder inside
  `source` is used when it is there.
- Unusual names: when `source` holds neither the usual folders nor sample folders, its
  subfolders are paired by the name rules in both directions; the pair of folders that
  pairs the most files is taken (`Photos/a.png` with `Annot/a_mask.png`), the label
  folder being the one whose files look like label images (flat regions of equal values)
  when names alone cannot tell. A warning says which folders were chosen.
- One folder: images and their label images side by side (`a.png` beside `a_mask.png`),
  as `source` alone or as both `source` and `images_dir`; a file named like a label
  image (`_mask`, `_label`, `_labels`) is never imported as an image there.
- One pair: `source` is a label image file and `images_dir` the image file it labels
  (e.g. stardist's `mask2d.tif` and `img2d.tif`).

An object made of several separate blobs (an id split in two by occlusion, or a DSB mask
of two parts) is one object with a multi-part mask; a warning counts them.

Every object becomes one "mask" annotation of the class `class_name` (default "nucleus");
empty masks and masks whose size differs from the image are skipped and reported, and so
is every file that is not an image. A layout that would import less than the folder
holds (several images in one sample's images/, or images/ + masks/ whose names do not
pair) is refused with the reason instead of importing a part of it.

Export writes the DSB layout: `<name>/images/<name>.<ext>` (a copy of the image) and
`<name>/masks/<name>_<k>.png` (0/255) for every polygon and mask region (of `class_name`
only, when given). The layout has no class names, so one class per export round-trips.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import DataError, FormatError, ImageError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_bytes,
    exportable_images,
    register_image,
    unique_name,
)
from studio.core.formats.labelimages import (
    IMAGE_DIRS,
    MASK_DIRS,
    count_parts,
    find_subfolder,
    image_files,
    image_key,
    index_label_images,
    objects_by_value,
    pair_in_one_folder,
    pair_label_images,
    read_label_image,
)
from studio.core.formats.masks import default_split
from studio.core.geometry import MaskGeom, rasterize
from studio.core.images import decode_file

SOURCE = "import:instances"
DEFAULT_CLASS = "nucleus"
MAX_FOLDERS = 24  # subfolders compared when looking for the image and label folders


def _label_objects(label: np.ndarray) -> list[MaskGeom]:
    """One cropped mask per non-zero value of a label image, in value order (an id of
    several blobs is one multi-part mask)."""
    return [MaskGeom(x0, y0, bitmap) for _v, x0, y0, bitmap in objects_by_value(label)]


class _Adder:
    """Adds objects of one class for one import, keeping the report up to date."""

    def __init__(self, project, report: ImportReport, class_name: str, split: str) -> None:
        self.project, self.report, self.split = project, report, split
        self.class_name = class_name
        self._class_id: int | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.multi_part: list[str] = []  # objects made of several separate blobs

    def class_id(self) -> int:
        if self._class_id is None:
            if self.project.class_by_name(self.class_name) is None:
                self.report.classes_added.append(self.class_name)
            self._class_id = self.project.get_or_add_class(self.class_name)
        return self._class_id

    def image(self, path: Path, item: str) -> tuple[int, int, int] | None:
        """(image id, height, width) when its annotations should be taken, else None."""
        added = register_image(self.project, path, self.report, item, split=self.split)
        if added is None or not added[1]:
            return None
        rec = self.project.image(added[0])
        return rec.id, rec.height, rec.width

    def objects(self, image_id: int, geoms: list[tuple[str, MaskGeom]]) -> None:
        items = []
        for item, geom in geoms:
            if geom.area == 0:
                self.report.skip(item, "empty mask")
                continue
            if count_parts(geom.bitmap) > 1:
                self.multi_part.append(item)
            items.append(dict(image_id=image_id, class_id=self.class_id(), kind="mask",
                              geometry=geom, source=SOURCE))
        self.project.add_annotations(items)
        self.report.count("mask", self.class_name, len(items))

    def finish(self) -> ImportReport:
        """The report, with a warning counting the multi-part objects."""
        if self.multi_part:
            shown = ", ".join(self.multi_part[:3]) + (" ..." if len(self.multi_part) > 3 else "")
            self.report.warnings.append(
                f"{len(self.multi_part)} object(s) are made of several separate parts ({shown}); "
                "each was imported as one object with a multi-part mask (an object split by "
                "occlusion keeps one id).")
        return self.report


def import_instances(project, source: Path, images_dir: Path | None = None,
                     report: ImportReport | None = None, *, class_name: str = DEFAULT_CLASS,
                     split: str | None = None) -> ImportReport:
    """Import instance masks from one of the layouts in the module docstring."""
    report = report or ImportReport("instances")
    source = Path(source)
    adder = _Adder(project, report, class_name, default_split(source, split))
    if source.is_file():
        if images_dir is None or not Path(images_dir).is_file():
            raise FormatError(f"{source.name} is a single label image: give the image it labels "
                              "as the images path.")
        _import_label_pair(adder, Path(images_dir), source, source.name)
        return adder.finish()
    if images_dir is not None:
        if Path(images_dir).resolve() == source.resolve():  # --source D --images D
            if not _import_one_folder(adder, source):
                raise DataError(f"No image in {source.name}/ has a label image beside it "
                                "named like it (a_mask.png or a_label.tif for a.png). "
                                "Nothing was imported.")
            return adder.finish()
        _import_given_folders(adder, source, Path(images_dir))
        return adder.finish()
    image_dir = find_subfolder(source, IMAGE_DIRS)
    label_dir = find_subfolder(source, MASK_DIRS)
    if image_dir is not None and label_dir is not None \
            and _looks_like_label_images(image_dir, label_dir):
        _import_label_folder(adder, image_dir, label_dir)
        return adder.finish()
    has_images = find_subfolder(source, ("images",)) is not None
    samples = [] if has_images else sorted(
        p for p in source.iterdir() if p.is_dir() and find_subfolder(p, ("images",)) is not None)
    found = find_label_folders(source) if not samples else None
    if found is not None:
        image_dir, label_dir, why = found
        report.warnings.append(
            f"read the images from {image_dir.name}/ and their label images from "
            f"{label_dir.name}/ ({why}); give --images and the label folder to choose others.")
        _import_label_folder(adder, image_dir, label_dir)
        return adder.finish()
    if not samples and not has_images and _import_one_folder(adder, source):
        return adder.finish()
    if has_images:
        images = image_files(find_subfolder(source, ("images",)))
        if len(images) > 1:
            masks = len(image_files(label_dir)) if label_dir is not None else 0
            raise DataError(
                f"{source.name}/images holds {len(images)} images, but the {masks} files in "
                f"{label_dir.name if label_dir else 'masks'}/ are not named like them, so they "
                "cannot be paired: name each label image like its image (a.png or "
                "a_mask.png for a.png), or use one folder per image (<id>/images/<id>.png "
                "with <id>/masks/*.png). Nothing was imported.")
        samples = [source]
    if not samples:
        raise FormatError(f"No images found in {source}: expected <id>/images/<id>.png with "
                          "<id>/masks/*.png, a folder of images beside a folder of label "
                          "images named like them (a.png or a_mask.png), or give the label "
                          "folder as the source and the image folder as the images path.")
    found = 0
    # PNG decoding releases the GIL: a few threads read a sample's masks in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as adder.pool:
        for sample in samples:
            found += _import_sample(adder, sample, source)
    if not found:
        raise FormatError(f"No images found in {source} (the images/ folders are empty).")
    return adder.finish()


def _paired(image_dir: Path, label_dir: Path) -> int:
    """How many images of `image_dir` have a label image in `label_dir`."""
    pairs, _ = pair_label_images(image_files(image_dir), image_dir, label_dir)
    return sum(m is not None for _i, m in pairs)


def _import_given_folders(adder: _Adder, source: Path, image_dir: Path) -> None:
    """`source` (or its masks/ or labels/ folder) holds the label images of `image_dir`."""
    if not image_dir.is_dir():
        raise FormatError(f"The images path {image_dir} is not a folder; give the folder "
                          "that holds the images.")
    candidates = [d for d in (find_subfolder(source, MASK_DIRS), source) if d is not None]
    for label_dir in candidates:
        if _paired(image_dir, label_dir):
            _import_label_folder(adder, image_dir, label_dir)
            return
    labels, images = len(image_files(source)), len(image_files(image_dir))
    raise DataError(f"None of the {labels} label images in {source.name}/ pairs with one of "
                    f"the {images} images in {image_dir.name}/: name each label image like "
                    "its image (a.png, a_mask.png or a_label.tif for a.png). Nothing was "
                    "imported.")


def label_likeness(path: Path) -> float:
    """How much a file looks like a label image, 0..1: the share of its labelled (non-zero)
    pixels whose right and lower neighbours hold the same value. Label images are flat
    regions of one value each (near 1); photographs and micrographs are noisy (low).
    Colour and unreadable files are 0."""
    try:
        arr = read_label_image(path)
    except ImageError:
        return 0.0
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        return 0.0
    core = arr[:-1, :-1]
    labelled = core != 0
    if not labelled.any():
        return 0.0
    same = (core == arr[1:, :-1]) & (core == arr[:-1, 1:]) & labelled
    return float(same.sum()) / float(labelled.sum())


def _folder_likeness(folder: Path, sample: int = 3) -> float:
    files = image_files(folder)
    if not files:
        return 0.0
    step = max(1, len(files) // sample)
    return float(np.mean([label_likeness(p) for p in files[::step][:sample]]))


def find_label_folders(source: Path) -> tuple[Path, Path, str] | None:
    """(image folder, label folder, why) among the subfolders of `source`, chosen by how
    their files pair (name rules, both directions) and, where names cannot tell, by which
    folder's files look like label images; None when no two subfolders pair."""
    if not source.is_dir():
        return None
    folders = [p for p in sorted(source.iterdir())
               if p.is_dir() and not p.name.startswith(".")][:MAX_FOLDERS]
    files = {p: image_files(p) for p in folders}
    folders = [p for p in folders if files[p]]
    indexes = {p: index_label_images(p) for p in folders}  # each folder listed once
    scored = []
    for a in folders:
        keys = [image_key(f, a) for f in files[a]]
        for b in folders:
            if a != b and a not in b.parents and b not in a.parents:
                n = sum(k in indexes[b] for k in keys)
                if n:
                    scored.append((n, a, b))
    if not scored:
        return None
    best = max(n for n, _a, _b in scored)
    top = [(a, b) for n, a, b in scored if n == best]
    if len(top) == 1:
        a, b = top[0]
        if _folder_likeness(b) <= 0.5:  # pairs by name, but b holds no label images
            return None
        return a, b, f"{best} file(s) pair by name"
    likeness = {d: _folder_likeness(d) for pair in top for d in pair}
    a, b = max(top, key=lambda ab: likeness[ab[1]] - likeness[ab[0]])
    if likeness[b] <= 0.5 or likeness[b] <= likeness[a]:
        return None
    return a, b, (f"{best} file(s) pair by name; {b.name}/ holds flat regions of one value "
                  f"each, as label images do, {a.name}/ does not")


def _looks_like_label_images(image_dir: Path, label_dir: Path) -> bool:
    """True when masks are named like the images (label images), not one file per object."""
    pairs, _ = pair_label_images(image_files(image_dir), image_dir, label_dir)
    labels = image_files(label_dir)
    return bool(labels) and sum(m is not None for _i, m in pairs) >= max(1, len(labels) // 2)


def _read_object_mask(path: Path) -> np.ndarray:
    arr = decode_file(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        return read_label_image(path) != 0  # raises a clear ImageError
    if arr.ndim == 3:
        arr = arr[:, :, :3].max(axis=2)
    return arr != 0


def _try_read_object_mask(path: Path) -> np.ndarray | ImageError:
    try:
        return _read_object_mask(path)
    except ImageError as exc:
        return exc


def _import_sample(adder: _Adder, sample: Path, source: Path) -> int:
    images = image_files(find_subfolder(sample, ("images",)), adder.report, source.parent)
    if not images:
        adder.report.skip(str(sample.relative_to(source.parent)), "no image in images/")
        return 0
    if len(images) > 1:
        raise DataError(f"{sample.name}/images holds {len(images)} images; a sample folder "
                        "holds one image and the masks of its objects, so the masks cannot be "
                        "given to one of them. Move the other images to folders of their "
                        "own. Nothing was imported.")
    item = images[0].name
    info = adder.image(images[0], item)
    mask_dir = find_subfolder(sample, ("masks",))
    if info is None or mask_dir is None:
        return 1
    image_id, height, width = info
    geoms = []
    paths = image_files(mask_dir, adder.report, source.parent)
    for mask_path, mask in zip(paths, adder.pool.map(_try_read_object_mask, paths), strict=True):
        name = f"{sample.name}/masks/{mask_path.name}"
        if isinstance(mask, ImageError):
            adder.report.skip(name, str(mask))
            continue
        if mask.shape != (height, width):
            adder.report.skip(name, f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                    f"{width}x{height}")
            continue
        geoms.append((name, MaskGeom.from_full(mask)))
    adder.objects(image_id, geoms)
    return 1


def _import_label_pair(adder: _Adder, image: Path, label_path: Path, item: str) -> None:
    try:
        label = read_label_image(label_path)
    except ImageError as exc:
        adder.report.skip(item, str(exc))
        return
    info = adder.image(image, image.name)
    if info is None:
        return
    image_id, height, width = info
    if label.shape != (height, width):
        adder.report.skip(item, f"label image is {label.shape[1]}x{label.shape[0]} but the "
                                f"image is {width}x{height}")
        return
    adder.objects(image_id, [(f"{item} object {k}", g)
                             for k, g in enumerate(_label_objects(label), 1)])


def _import_one_folder(adder: _Adder, folder: Path) -> bool:
    """Images and label images side by side in `folder` (`a.png` beside `a_mask.png`);
    False, importing nothing, when no image there has a label image."""
    pairs, unmatched = pair_in_one_folder(folder)
    if not any(label is not None for _img, label in pairs):
        return False
    image_files(folder, adder.report)  # report the files that are no images
    _add_pairs(adder, pairs, unmatched, folder, folder)
    adder.report.warnings.append(
        f"read images and their label images side by side in {folder.name}/ "
        f"({sum(label is not None for _i, label in pairs)} pair(s) by name).")
    return True


def _import_label_folder(adder: _Adder, image_dir: Path, label_dir: Path) -> None:
    images = image_files(image_dir, adder.report)
    pairs, unmatched = pair_label_images(images, image_dir, label_dir, adder.report)
    _add_pairs(adder, pairs, unmatched, image_dir, label_dir)


def _add_pairs(adder: _Adder, pairs, unmatched, image_dir: Path, label_dir: Path) -> None:
    """Each (image, label image or None) pair added; label images without an image
    reported (names relative to their folders)."""
    for img, label in pairs:
        if label is not None:
            _import_label_pair(adder, img, label, str(label.relative_to(label_dir)))
        else:
            adder.image(img, str(img.relative_to(image_dir)))
    for label in unmatched:
        adder.report.skip(str(label.relative_to(label_dir)), "label image without an image")


# --- export -------------------------------------------------------------------------------
def _png(mask: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:  # pragma: no cover - encoding a uint8 array does not fail
        raise FormatError("Could not encode a mask as PNG.")
    return buf.tobytes()


def export_instances(project, out_dir: Path, split: str | None = None,
                     class_name: str | None = None) -> ExportReport:
    """Write the DSB layout (see the module docstring)."""
    out_dir = Path(out_dir)
    report = ExportReport("instances", out_dir)
    class_id = None
    if class_name is not None:
        record = project.class_by_name(class_name)
        if record is None:
            raise FormatError(f"There is no class named {class_name!r} in this project.")
        class_id = record.id
    used: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    tags = 0
    for record in exportable_images(project, split, report):
        name = unique_name(record.abs_path.stem, used, str(record.id))
        sample = out_dir / name
        image_path = sample / "images" / (name + record.abs_path.suffix.lower())
        atomic_copy(record.abs_path, image_path)
        report.files.append(image_path)
        report.images += 1
        (sample / "masks").mkdir(parents=True, exist_ok=True)
        k = 0
        for ann in project.annotations(record.id):
            tags += ann.kind == "tag"
            if ann.kind not in ("polygon", "mask") or (class_id is not None
                                                       and ann.class_id != class_id):
                continue
            mask = rasterize(ann.kind, ann.geometry, record.height, record.width)
            if not mask.any():
                report.skip(f"annotation {ann.id}", "region has no pixels inside the image")
                continue
            path = sample / "masks" / f"{name}_{k}.png"
            atomic_write_bytes(path, _png(mask))
            report.files.append(path)
            report.annotations += 1
            k += 1
    if tags:
        report.skip("image tags", f"{tags} image-level tags have no form in instance masks; "
                                  "not written")
    return report


# --- what an import of label images would take (the import dialog's preview) --------------
@dataclass
class LabelLayout:
    """The image folder and label folder an import would pair, why, the first pair, how
    many pair, and whether the label values look like instance ids (1..k per image)."""

    image_dir: Path
    label_dir: Path
    why: str
    pairs: int
    first: tuple[Path, Path] | None
    instance_ids: bool


def describe_label_layout(source: Path, images_dir: Path | None = None,
                          sample: int = 8) -> LabelLayout | None:
    """What `import_instances` / the masks import would pair for `source` (and the images
    folder, when given): None when no label images pair with images there."""
    from studio.core.formats.labelimages import looks_like_instance_ids

    source = Path(source)
    if not source.is_dir():
        return None
    found = None
    if images_dir is not None and Path(images_dir).resolve() == source.resolve():
        pass  # one folder: images beside their label images (below)
    elif images_dir is not None:
        for label_dir in (find_subfolder(source, MASK_DIRS), source):
            if label_dir is not None and _paired(Path(images_dir), label_dir):
                found = (Path(images_dir), label_dir, "the folders given")
                break
    else:
        image_dir, label_dir = find_subfolder(source, IMAGE_DIRS), find_subfolder(source,
                                                                                  MASK_DIRS)
        found = ((image_dir, label_dir, "their usual names") if image_dir and label_dir
                 and _paired(image_dir, label_dir) else find_label_folders(source))
    one = pair_in_one_folder(source)[0] if found is None else []
    if one:  # images beside their label images in `source` itself
        found = (source, source, "images beside their label images, paired by name")
    elif found is None:
        return None
    image_dir, label_dir, why = found
    pairs = [(i, m) for i, m in (one or pair_label_images(image_files(image_dir), image_dir,
                                                          label_dir)[0]) if m is not None]
    labels = []
    for _image, label in pairs[:sample]:
        try:
            labels.append(read_label_image(label))
        except ImageError:
            continue
    return LabelLayout(image_dir, label_dir, why, len(pairs), pairs[0] if pairs else None,
                       looks_like_instance_ids(labels))
