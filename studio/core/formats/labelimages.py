"""Label images shared by the masks and instances formats: finding them, pairing each with
its image by one set of name rules, reading them, and recognising what they really hold
(near-binary masks saved lossily, instance ids mistaken for class values).

Name rules: a label image pairs with the image of the same path relative to its folder,
without the extension and ignoring case; it may also carry one of MASK_SUFFIXES
(`a.png` <- `a.png`, `a_mask.png`, `a_label.tif`, `a_labels.png`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import ImageError
from studio.core.images import decode_file

IMAGE_DIRS = ("images", "image", "imgs", "img", "JPEGImages")
MASK_DIRS = ("masks", "mask", "labels", "label", "SegmentationClass", "SegmentationClassPNG",
             "annotations")
MASK_SUFFIXES = ("_mask", "_label", "_labels")
MAX_LABEL_PIXELS = 20000 * 20000
# formats whose compression changes pixel values: a mask saved so is no longer exact
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".webp")
# a lossy near-binary mask keeps its values within this distance of 0 and 255
NEAR_BINARY_MARGIN = 48


def image_files(folder: Path, report=None, root: Path | None = None) -> list[Path]:
    """Image files under `folder` (recursively), sorted by path. With a `report`, every
    other file found there is reported as skipped with the reason (named relative to
    `root`, default `folder`)."""
    from studio.core.images import is_image_file

    found, others = [], []
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file():
            if p.is_symlink():  # a link whose target is gone: say so, do not drop it
                others.append(p)
            continue
        if is_image_file(p) and not p.name.startswith("."):
            found.append(p)
        else:
            others.append(p)
    if report is not None:
        base = Path(root or folder)
        for p in others:
            report.skip(str(p.relative_to(base)), skip_reason(p))
    return found


def skip_reason(path: Path) -> str:
    """Why a file found in a dataset folder is not imported as an image."""
    from studio.core.images import SUPPORTED_EXTENSIONS

    if path.is_symlink() and not path.exists():
        return "broken link: the file it points to does not exist"
    if path.name.startswith("."):
        return "hidden file"
    if path.suffix.lower() in SUPPORTED_EXTENSIONS:
        return "not an image file"
    return (f"not an image format we read ({path.suffix or 'no extension'}; we read "
            f"{', '.join(sorted(s.lstrip('.') for s in SUPPORTED_EXTENSIONS))})")


def find_subfolder(root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` that is a folder in `root` (case-insensitive), or None."""
    if not root.is_dir():
        return None
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for name in names:
        if name.lower() in children:
            return children[name.lower()]
    return None


# --- pairing ------------------------------------------------------------------------------
def image_key(path: Path, folder: Path) -> str:
    """The name an image pairs by: its path inside `folder`, no extension, lower case."""
    return Path(path).relative_to(folder).with_suffix("").as_posix().lower()


def label_keys(path: Path, folder: Path) -> list[str]:
    """Every name a label image pairs by: its own, and without a MASK_SUFFIXES suffix."""
    key = image_key(path, folder)
    return [key] + [key[: -len(s)] for s in MASK_SUFFIXES if key.endswith(s) and key != s]


def index_label_images(mask_dir: Path, report=None) -> dict[str, Path]:
    """name -> label image for every label image under `mask_dir` (see `label_keys`); an
    exact name wins over a suffixed one."""
    index: dict[str, Path] = {}
    files = image_files(mask_dir, report)
    for p in files:
        index.setdefault(image_key(p, mask_dir), p)
    for p in files:
        for key in label_keys(p, mask_dir)[1:]:
            index.setdefault(key, p)
    return index


def pair_label_images(images: list[Path], image_dir: Path, mask_dir: Path, report=None
                      ) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """([(image, its label image or None)], label images that pair with no image)."""
    index = index_label_images(mask_dir, report)
    pairs, used = [], {}
    for img in images:
        mask = index.get(image_key(img, image_dir))
        if mask is not None and mask.resolve() == img.resolve():
            mask = None
        pairs.append((img, mask))
        if mask is not None:
            used.setdefault(mask, []).append(img)
    if report is not None:  # `a.png` and `a.tif` both pair with the mask `a.png`
        for mask, shared in used.items():
            if len(shared) > 1:
                names = ", ".join(p.relative_to(image_dir).as_posix() for p in shared)
                report.warnings.append(
                    f"{mask.relative_to(mask_dir).as_posix()} is the label image of "
                    f"{len(shared)} images ({names}): their names differ only in the "
                    "extension. Each got it; rename the images or give each its own mask "
                    "if that is wrong.")
    image_root = Path(image_dir).resolve()
    unmatched = [p for p in sorted(set(index.values()) - set(used))
                 if image_root not in p.resolve().parents]  # masks/ may hold images/ too
    return pairs, unmatched


def pair_in_one_folder(folder: Path, report=None
                       ) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """Images and their label images side by side in one folder (`a.png` beside
    `a_mask.png`, `a_label.tif`...): ([(image, its label image or None)], label images
    without an image). A file named with a MASK_SUFFIXES suffix is a label image when at
    least one such file pairs with an image of the folder; it is never listed as an image.
    No pair at all: ([], [])."""
    files = image_files(folder, report)
    keys = {p: image_key(p, folder) for p in files}
    by_key: dict[str, Path] = {}
    for p in files:
        by_key.setdefault(keys[p], p)
    labels = [p for p in files if len(label_keys(p, folder)) > 1]
    if not any(k in by_key and by_key[k] != p
               for p in labels for k in label_keys(p, folder)[1:]):
        return [], []
    label_set = set(labels)
    index: dict[str, Path] = {}
    for p in labels:
        for key in label_keys(p, folder)[1:]:
            index.setdefault(key, p)
    pairs, used = [], set()
    for img in files:
        if img in label_set:
            continue
        mask = index.get(keys[img])
        pairs.append((img, mask))
        if mask is not None:
            used.add(mask)
    return pairs, [p for p in labels if p not in used]


# --- reading ------------------------------------------------------------------------------
def is_lossy(path: Path) -> bool:
    return Path(path).suffix.lower() in LOSSY_SUFFIXES


def read_label_image(path: Path) -> np.ndarray:
    """A label image as a 2-D integer array: palette indices, or grey values (8/16 bit).

    Raises ImageError for unreadable, too large or colour (non-palette RGB) images. A
    lossily saved grey image whose channels differ only by compression noise is read as
    grey.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_LABEL_PIXELS:
                raise ImageError(f"{path.name} is too large ({w}x{h}) for a label image.",
                                 str(path))
            if im.mode == "P":
                return np.array(im)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path.name} is too large for a label image.", str(path)) from exc
    except (UnidentifiedImageError, OSError):
        pass  # OpenCV below reads some files Pillow cannot, and reports the rest.
    arr = decode_file(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"Cannot read the label image {path.name}.", str(path))
    if arr.ndim == 3:
        channels = arr[:, :, :3]
        spread = int((channels.max(axis=2).astype(np.int32) - channels.min(axis=2)).max())
        if spread > (24 if is_lossy(path) else 0):
            raise ImageError(f"{path.name} is a colour image; label images must be indexed "
                             "(palette) PNGs or grey images of class values.", str(path))
        arr = channels[:, :, 0] if spread == 0 else cv2.cvtColor(channels, cv2.COLOR_BGR2GRAY)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ImageError(f"{path.name} is not a 2-D integer label image.", str(path))
    return arr


# --- what the values are ------------------------------------------------------------------
def near_binary(values: set[int]) -> bool:
    """True for the values of a binary 0/255 mask blurred by lossy compression: all within
    NEAR_BINARY_MARGIN of 0 or 255, some near each end, and more than the two exact ones."""
    if not values or max(values) > 255 or values <= {0, 255}:
        return False
    low = [v for v in values if v <= NEAR_BINARY_MARGIN]
    high = [v for v in values if v >= 255 - NEAR_BINARY_MARGIN]
    return bool(low) and bool(high) and len(low) + len(high) == len(values)


def threshold_label(arr: np.ndarray, threshold: int) -> np.ndarray:
    """0/255 label: 255 where the value is >= threshold."""
    return np.where(arr >= threshold, 255, 0).astype(np.uint8)


def objects_by_value(label: np.ndarray, background: int = 0
                     ) -> list[tuple[int, int, int, np.ndarray]]:
    """(value, x0, y0, bitmap cropped to the value's bounding box) for every value of a
    label image other than `background`, in value order. One pass over the pixels (a sort
    of the labelled ones), so hundreds of objects cost about as much as one."""
    flat = label.ravel()
    nonzero = np.flatnonzero(flat != background)
    if nonzero.size == 0:
        return []
    values = flat[nonzero]
    order = np.argsort(values, kind="stable")
    values, nonzero = values[order], nonzero[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], values.size]
    width = label.shape[1]
    out = []
    for s, e in zip(starts, ends, strict=True):
        idx = nonzero[s:e]
        rows, cols = idx // width, idx % width
        y0, x0 = int(rows.min()), int(cols.min())
        bitmap = np.zeros((int(rows.max()) - y0 + 1, int(cols.max()) - x0 + 1), dtype=bool)
        bitmap[rows - y0, cols - x0] = True
        out.append((int(values[s]), x0, y0, bitmap))
    return out


def count_parts(bitmap: np.ndarray) -> int:
    """How many separate blobs (8-connected) a mask is made of."""
    if not bitmap.any():
        return 0
    n, _ = cv2.connectedComponents(bitmap.astype(np.uint8), connectivity=8)
    return n - 1


# instance ids: at least this share of the ids are one blob (an object split in two by
# occlusion is still one id; a class value is usually spread over many blobs)
ONE_BLOB_SHARE = 0.6


def instance_id_counts(labels: Iterable[np.ndarray], background: int = 0,
                       limit: int = 32) -> list[int] | None:
    """When every label image numbers its objects 1..k and most ids (ONE_BLOB_SHARE of
    them over the images checked) are one connected blob, as instance label images do,
    the k of each image (at most `limit` images checked); else None. An id made of
    several blobs (an object split by occlusion) does not stop the hint."""
    counts = []
    ids = one_blob = 0
    for arr in labels:
        if len(counts) >= limit:
            break
        objects = objects_by_value(arr, background)
        k = len(objects)
        if k == 0:
            continue
        if objects[0][0] != 1 or objects[-1][0] != k:
            return None
        ids += k
        one_blob += sum(count_parts(bitmap) == 1 for _v, _x, _y, bitmap in objects)
        counts.append(k)
    if not counts or one_blob < ONE_BLOB_SHARE * ids:
        return None
    return counts


def looks_like_instance_ids(labels: Iterable[np.ndarray], background: int = 0) -> bool:
    """Heuristic: objects numbered 1..k per image, mostly one blob each, with enough
    objects (and a k that varies between images) that class values are unlikely."""
    counts = instance_id_counts(labels, background)
    if counts is None:
        return False
    return max(counts) >= 8 or (max(counts) >= 3 and len(set(counts)) > 1)
