"""What every importer and exporter shares: the report, safe paths, atomic writes."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import FormatError, UnsafePathError
from studio.core.fileio import (  # noqa: F401 (re-exported for the formats)
    atomic_copy,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fit_name,
)
from studio.core.images import page_count, printable_name, utf8_name


@dataclass
class ImportReport:
    """What an import did: counts, and every skipped item with its reason."""

    format: str
    images: int = 0
    duplicate_images: int = 0
    annotations_by_kind: Counter = field(default_factory=Counter)
    annotations_by_class: Counter = field(default_factory=Counter)
    classes_added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    warnings: list[str] = field(default_factory=list)  # e.g. boxes clipped to the image
    images_done: int = 0  # images that arrived with annotations, given the status "done"
    status_given: set[int] = field(default_factory=set)  # ids whose file stated a status
    added_ids: list[int] = field(default_factory=list)  # images new to the project

    @property
    def annotations(self) -> int:
        return sum(self.annotations_by_kind.values())

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((printable_name(str(item)), reason))

    def count(self, kind: str, class_name: str, n: int = 1) -> None:
        self.annotations_by_kind[kind] += n
        self.annotations_by_class[class_name] += n

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "images": self.images,
            "duplicate_images": self.duplicate_images,
            "annotations": self.annotations,
            "annotations_by_kind": dict(self.annotations_by_kind),
            "annotations_by_class": dict(self.annotations_by_class),
            "classes_added": list(self.classes_added),
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
            "warnings": list(self.warnings),
            "images_done": self.images_done,
        }

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.annotations_by_kind.items())) or "none"
        text = (f"Imported {self.images} images ({self.duplicate_images} already present), "
                f"{self.annotations} annotations ({kinds}).")
        if self.images_done:
            text += (f" {self.images_done} image(s) came with annotations and are marked "
                     "done; the others stay new.")
        if self.skipped:
            text += f" Skipped {len(self.skipped)}: " + "; ".join(
                f"{i}: {r}" for i, r in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
        return text


@dataclass
class ExportReport:
    format: str
    out_dir: Path
    images: int = 0
    annotations: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # what was written besides `annotations` (e.g. tags kept as an extra key), one line each
    notes: list[str] = field(default_factory=list)

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((str(item), reason))


def safe_join(base: Path, relative: str) -> Path:
    """`base / relative`, refusing any path that would leave `base` (.., absolute, links)."""
    if relative is None or str(relative).strip() == "":
        raise UnsafePathError("An empty file name in the annotation file.")
    rel = str(relative).replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise UnsafePathError(f"The path {relative!r} is absolute; only paths inside {base} are allowed.")
    base_resolved = Path(base).resolve()
    target = (base_resolved / rel).resolve()
    if target != base_resolved and base_resolved not in target.parents:
        raise UnsafePathError(f"The path {relative!r} points outside the dataset folder {base}.")
    return target


def load_json_file(path: Path, what: str = "annotation file") -> object:
    """Parse an untrusted JSON file. Anything unreadable, a nesting too deep for the parser
    (a "bracket bomb") or a number too long to convert (thousands of digits) is one
    FormatError line naming the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except RecursionError:
        raise FormatError(f"{path.name} nests its JSON too deeply to be a real {what}; "
                          "check that it is the right file.") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path.name} is not UTF-8 text ({exc.reason}); check that it is "
                          f"a {what}.") from None
    except ValueError as exc:  # invalid JSON, or an integer of thousands of digits
        reason = str(exc).splitlines()[0][:200]
        raise FormatError(f"{path.name} is not valid JSON ({reason}); check that the file is "
                          f"a complete {what}.") from None
    except OSError as exc:
        raise FormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def clip_to_image(kind: str, geometry, width: int, height: int, item: str,
                  report: ImportReport):
    """`geometry` clipped to the image, with a warning when that changed it; None (and the
    item reported as skipped) when nothing of it lies inside the image."""
    from studio.core.geometry import clip_geometry

    clipped, changed = clip_geometry(kind, geometry, width, height)
    if clipped is None:
        report.skip(item, f"{kind} lies outside the {width}x{height} image")
        return None
    if changed:
        report.warnings.append(f"{item}: {kind} clipped to the {width}x{height} image")
    return clipped


def stated_size_orientation(record, stated: tuple, item: str, n_objects: int,
                            report: ImportReport) -> int | None:
    """Compare the image size an annotation file states with the image's own.

    Returns 1 when they agree (or the file states none), the image's EXIF orientation when
    the file states its size before that rotation (a tool that ignores EXIF drew on the
    stored pixels: the objects are turned with the photo, and a warning says so), and None
    when they differ otherwise: the objects were drawn on another copy of the image, so
    they are not imported and the report says why (rescaling would guess, and a crop or a
    padded copy would come out wrong without a word)."""
    try:
        sw, sh = (int(v) for v in stated)
    except (TypeError, ValueError):
        return 1
    w, h = record.width, record.height
    if sw <= 0 or sh <= 0 or (sw, sh) == (w, h):
        return 1  # VOC files often say 0 x 0: nothing stated
    from studio.core.images import image_info

    orientation = image_info(record.abs_path).orientation
    if orientation in (5, 6, 7, 8) and (sw, sh) == (h, w):
        report.warnings.append(
            f"{item}: the file gives the photo's size before its EXIF rotation ({sw}x{sh}; "
            f"shown {w}x{h}); its objects were turned with the photo.")
        return orientation
    if n_objects:
        report.skip(item, f"the file says the image is {sw}x{sh}, but it is {w}x{h}: its "
                          f"{n_objects} object(s) were drawn on another copy and were not "
                          "imported; fix the size in the file or use the image it was drawn on")
    return None


# --- shared by the importers and exporters (coco, voc, yolo, ...) -------------------------
def unique_name(name: str, used: set[str], tag: str) -> str:
    """`name`, or `stem_<tag>.ext` when a file of that name (case-insensitive) is taken.
    A name too long for the file system (with what the exporters add to it) is shortened
    first (`fileio.fit_name`)."""
    name = fit_name(name)
    candidate = name
    if candidate.lower() in used:
        p = Path(name)
        candidate = f"{p.stem}_{tag}{p.suffix}"
        n = 1
        while candidate.lower() in used:
            candidate = f"{p.stem}_{tag}_{n}{p.suffix}"
            n += 1
    used.add(candidate.lower())
    return candidate


def register_image(project, path: Path, report: ImportReport, item: str | None = None,
                   **add_options) -> tuple[int, bool] | None:
    """Add one image for an importer; a missing or unreadable file is skipped and reported.

    Returns (image id, take_annotations), or None when the image was skipped. A duplicate
    (same content already in the project) is counted; its annotations are taken only when
    the image has none yet, so importing the same dataset twice does not double them.
    """
    from studio.core.errors import ImageError

    label = item or str(path)
    if not Path(path).is_file():
        report.skip(label, "broken link: the file it points to does not exist"
                    if Path(path).is_symlink() else "image file not found")
        return None
    if not utf8_name(path):
        report.skip(label, "the file name is not valid UTF-8 text, which the project cannot "
                           "store; rename the file (e.g. with convmv) and import it again")
        return None
    try:
        image_id, created = project.add_image(path, **add_options)
    except ImageError as exc:
        report.skip(label, f"unreadable image: {exc}")
        return None
    if created:
        report.images += 1
        pages = page_count(path)
        if pages > 1:
            what = "frames" if Path(path).suffix.lower() == ".gif" else "pages"
            report.warnings.append(f"{printable_name(label)}: the file holds {pages} {what}; "
                                   f"only the first was imported (split the file to label "
                                   "the others).")
        return image_id, True
    report.duplicate_images += 1
    if project.image(image_id).n_annotations > 0:
        report.skip(label, f"same image content as image {image_id}, which already has "
                           "annotations; these were not imported a second time")
        return image_id, False
    return image_id, True


def exportable_images(project, split: str | None, report: ExportReport, page: int = 1000):
    """The images of `split` (all when None) whose files exist, fetched a page at a time.

    Images whose file has gone are left out and listed in the report.
    """
    offset = 0
    while True:
        records = project.images(split=split, offset=offset, limit=page)
        for record in records:
            if record.abs_path.is_file():
                yield record
            else:
                report.skip(record.path, "image file is missing; left out of the export")
        if len(records) < page:
            return
        offset += page


def mark_labelled_done(project, image_ids) -> list[int]:
    """Set status 'done' on those of `image_ids` that are 'new' and have annotations
    (images that arrived labelled); returns their ids."""
    ids = [int(i) for i in image_ids]
    done: list[int] = []
    with project.transaction() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            done += [r[0] for r in conn.execute(
                f"SELECT i.id FROM images i WHERE i.id IN ({marks}) AND i.status = 'new'"
                " AND EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = i.id)", chunk)]
        conn.executemany("UPDATE images SET status = 'done', updated_at = ? WHERE id = ?",
                         [(time.time(), i) for i in done])
    return done
