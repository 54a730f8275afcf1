"""Annotation formats, one module each. `import_dataset` / `export_dataset` dispatch by name.

Each format module defines `import_<fmt>(project, source, images_dir=None, report=None)
-> ImportReport` and `export_<fmt>(project, out_dir, split=None) -> ExportReport`.
An import runs inside one project transaction: all of it lands or nothing does.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from studio.core.errors import FormatError
from studio.core.formats.base import ExportReport, ImportReport, mark_labelled_done
from studio.core.formats.staging import staged_folder
from studio.core.relink import check_unchanged
from studio.core.splits import check_split

# format name -> module under studio.core.formats
FORMATS = {
    "coco": "coco",
    "voc": "voc",
    "yolo": "yolo",
    "labelme": "labelme",
    "masks": "masks",
    "instances": "instances",
    "folders": "folders",
}


def _module(fmt: str):
    if fmt not in FORMATS:
        raise FormatError(f"Unknown format {fmt!r}; use one of: {', '.join(FORMATS)}.")
    return importlib.import_module(f"studio.core.formats.{FORMATS[fmt]}")


def import_dataset(project, fmt: str, source, images_dir=None, **options) -> ImportReport:
    """Import a dataset in one transaction; nothing lands if anything fatal goes wrong."""
    module = _module(fmt)
    source = Path(source)
    if not source.exists():
        raise FormatError(f"Nothing to import: {source} does not exist.")
    func = getattr(module, f"import_{fmt}")
    with project.transaction():
        # images that may arrive labelled: those added now and unlabelled ones already here
        before = set(project.image_ids())
        candidates = set(project.image_ids(unlabelled=True))
        report = func(project, source, images_dir=Path(images_dir) if images_dir else None, **options)
        report.added_ids = sorted(set(project.image_ids()) - before)
        candidates |= set(report.added_ids)
        candidates -= report.status_given
        report.images_done = len(mark_labelled_done(project, sorted(candidates)))
    return report


def export_dataset(project, fmt: str, out_dir, split: str | None = None, **options) -> ExportReport:
    """Export into `out_dir`, all or nothing: the files are written into a hidden folder
    beside it first and moved into place only when every one of them is written."""
    module = _module(fmt)
    if split is not None:
        check_split(split)
    func = getattr(module, f"export_{fmt}")
    out_dir = Path(out_dir).expanduser().absolute()
    # annotations drawn on the recorded size must not go out beside a resized image (class
    # folders write no size and no geometry: a resized image is still filed rightly)
    if fmt != "folders":
        check_unchanged(project, project.images(split=split), "export")
    with staged_folder(out_dir, "export into") as stage:
        report = func(project, stage, split=split, **options)
    report.out_dir = out_dir
    report.files = [out_dir / Path(f).relative_to(stage) for f in report.files]
    return report


__all__ = ["FORMATS", "ImportReport", "ExportReport", "import_dataset", "export_dataset"]
