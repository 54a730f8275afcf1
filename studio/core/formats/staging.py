"""All-or-nothing output folders: write into a hidden folder beside the target, then move
the files into place once every one of them is written.

A failure half-way (a full disk, a name the file system refuses, no permission) leaves
the target as it was and removes the hidden folder; it is one ExportError line (a
DiskFullError for a full disk) naming the folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import ExportError
from studio.core.fileio import disk_full_error, fit_name, is_disk_full


def check_output_folder(out_dir: Path) -> None:
    """Refuse an output folder that is an existing file (or lies below one)."""
    for p in (out_dir, *out_dir.parents):
        if p.exists():
            if not p.is_dir():
                what = "the output folder" if p == out_dir else f"the output folder's parent {p}"
                raise ExportError(f"Cannot write into {out_dir}: {what} is an existing file, "
                                  "not a folder. Choose another place (--out).")
            return


def make_output_folder(out_dir: Path, what: str = "write into") -> Path:
    """Create `out_dir` (and its parents) or raise one line saying why it cannot be."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, out_dir, what) from exc
    return out_dir


def os_error(exc: OSError, folder: Path, what: str) -> Exception:
    """The one-line error for an OSError while writing into `folder`."""
    if is_disk_full(exc):
        return disk_full_error(folder, what)
    reason = exc.strerror or str(exc)
    hint = {30: "the disk is read-only", 13: "no permission to write there",
            36: "a file name is too long for the file system"}.get(exc.errno or 0)
    return ExportError(f"Cannot {what} {folder}: {reason}" + (f" ({hint})" if hint else "")
                       + "; nothing was written. Choose another folder.")


@contextmanager
def staged_folder(out_dir: Path, what: str = "export into") -> Iterator[Path]:
    """Yield a hidden folder beside `out_dir`; its files land in `out_dir` when the block
    succeeds (a new `out_dir` is the folder renamed; into an existing one each file is
    moved with os.replace). Nothing of a failed block is left."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    stage = out_dir.parent / fit_name(f".{out_dir.name}.partial-{os.getpid()}", 200)
    try:
        try:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            stage.mkdir()
        except OSError as exc:
            raise os_error(exc, out_dir.parent, what) from exc
        try:
            yield stage
            _publish(stage, out_dir)
        except OSError as exc:
            raise os_error(exc, out_dir, what) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.rename(stage, out_dir)
        return
    for root, _dirs, files in os.walk(stage):
        target = out_dir / Path(root).relative_to(stage)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(root) / name, target / name)
