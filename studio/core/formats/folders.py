"""Classification folders ("folders"): `<class>/<image>`, or `<split>/<class>/<image>`.

Import: every image below a class folder (at any depth) is added with one "tag" annotation of
that class. When every top-level folder is a split name (`train`, `val`/`valid`/`validation`,
`test`, `unassigned`), the layout is `<split>/<class>/...` and the images get those splits;
otherwise the split is the `split` option, else guessed from the source folder's own name.
Images outside any class folder are skipped and reported, and so is every file that is not
an image we read (with the reason). `limit` caps the images taken per class (sorted by
path), for trying out a big dataset; the images beyond it are not listed one by one.

Export: one copy of each image per tag it has, in `<class>/` — or `<split>/<class>/` when
the project uses splits (images without one go to `unassigned/`) and no `split` is asked for.
Images without a tag are skipped and reported. Characters that cannot be in a folder name
(`/`, `\\`, `:` ...) become `_`.
"""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import FormatError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    register_image,
    unique_name,
)
from studio.core.formats.labelimages import image_files, skip_reason
from studio.core.formats.masks import default_split
from studio.core.images import is_image_file
from studio.core.splits import ASSIGNED_SPLITS, FOLDER_SPLITS, UNASSIGNED

SOURCE = "import:folders"
SPLIT_DIRS = {**FOLDER_SPLITS, "unassigned": UNASSIGNED}
EXPORT_SPLIT_DIRS = {**{s: s for s in ASSIGNED_SPLITS}, UNASSIGNED: "unassigned"}


def folder_name(name: str) -> str:
    """A class name usable as one folder name ("tv/monitor" -> "tv_monitor")."""
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def import_folders(project, source: Path, images_dir: Path | None = None,
                   report: ImportReport | None = None, *, split: str | None = None,
                   limit: int | None = None) -> ImportReport:
    """Import class folders as tagged images (see the module docstring)."""
    report = report or ImportReport("folders")
    source = Path(images_dir) if images_dir else Path(source)
    if not source.is_dir():
        raise FormatError(f"{source} is not a folder; the folders format needs a folder of "
                          "class folders.")
    if limit is not None and int(limit) < 1:
        raise FormatError(f"limit must be a positive number of images per class, not {limit}.")
    top = _visible_dirs(source)
    if top and all(d.name.lower() in SPLIT_DIRS for d in top):
        groups = [(SPLIT_DIRS[d.name.lower()], d) for d in top]
    else:
        groups = [(default_split(source, split), source)]
    found = 0
    class_ids: dict[str, int] = {}
    for split_name, root in groups:
        for loose in sorted(p for p in root.iterdir() if p.is_file() or not p.exists()):
            report.skip(str(loose.relative_to(source)),
                        "image is not inside a class folder"
                        if is_image_file(loose) and loose.exists() else skip_reason(loose))
        for class_dir in _visible_dirs(root):
            images = image_files(class_dir, report, source)
            if limit is not None:
                images = images[: int(limit)]
            found += len(images)
            name = class_dir.name
            for path in images:
                added = register_image(project, path, report, str(path.relative_to(source)),
                                       split=split_name)
                if added is None or not added[1]:
                    continue
                if name not in class_ids:
                    if project.class_by_name(name) is None:
                        report.classes_added.append(name)
                    class_ids[name] = project.get_or_add_class(name)
                project.add_annotation(added[0], class_ids[name], "tag", None, source=SOURCE)
                report.count("tag", name)
    if not found:
        raise FormatError(f"No images found in {source}: expected <class>/<image> or "
                          "<split>/<class>/<image>.")
    return report


def export_folders(project, out_dir: Path, split: str | None = None,
                   by_split: bool | None = None) -> ExportReport:
    """Copy each tagged image into its class folder (see the module docstring)."""
    out_dir = Path(out_dir)
    report = ExportReport("folders", out_dir)
    if by_split is None:
        by_split = split is None and project.count_images() > project.count_images(split=UNASSIGNED)
    names = {c.id: c.name for c in project.classes()}
    used: dict[Path, set[str]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for record in project.images(split=split):
        tags = [names[a.class_id] for a in project.annotations(record.id, kind="tag")]
        if not tags:
            report.skip(record.path, "image has no tag (class) to file it under")
            continue
        if not record.abs_path.is_file():
            report.skip(record.path, "image file is missing")
            continue
        base = out_dir / EXPORT_SPLIT_DIRS[record.split] if by_split else out_dir
        for tag in dict.fromkeys(tags):
            folder = base / folder_name(tag)
            name = unique_name(record.abs_path.name, used.setdefault(folder, set()),
                               str(record.id))
            atomic_copy(record.abs_path, folder / name)
            report.files.append(folder / name)
            report.annotations += 1
        report.images += 1
    return report
