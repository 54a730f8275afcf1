"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every writer of the application (exports, checkpoints, tiles, predictions, copies) goes
through `atomic_path`: write to a temporary file beside the target, optionally fsync, then
os.replace; on any failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import DiskFullError

# the temporary names atomic_path gives: .<stem>.<pid>.<thread>.tmp<suffix>
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.\d+\.tmp(\.[^.]*)?$")


NAME_MAX = 255  # bytes in one file name on the usual file systems (ext4, APFS, NTFS: chars)
# names the exporters and predict write are kept this short, so that derived names
# (`<stem>_12.png`, `<stem>.xml`) still fit
FIT_NAME_BYTES = 230


def _cut_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes (UTF-8; bytes that are not UTF-8 kept as such)."""
    if len(os.fsencode(text)) <= limit:
        return text
    used = 0
    for i, ch in enumerate(text):  # whole characters only
        used += len(os.fsencode(ch))
        if used > limit:
            return text[:i]
    return text


def fit_name(name: str, limit: int = FIT_NAME_BYTES) -> str:
    """`name` when it fits `limit` bytes; else its stem cut short plus `~` and 8 hex digits
    of a hash of the whole name (two long names that differ only at the end stay apart),
    the suffix kept. Writing a name over the file system's limit fails with "File name too
    long"."""
    if len(os.fsencode(name)) <= limit:
        return name
    p = Path(name)
    suffix = p.suffix if len(os.fsencode(p.suffix)) <= 16 else ""
    tag = "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    stem = p.stem if suffix else name
    room = limit - len(os.fsencode(suffix)) - len(tag)
    return _cut_bytes(stem, room) + tag + suffix


def temp_path_for(path: Path) -> Path:
    """The temporary name `atomic_path` writes `path` under (this process and thread); the
    stem is cut short so that the name fits the file system even when `path`'s own name
    nearly fills it."""
    tail = f".{os.getpid()}.{threading.get_ident()}.tmp{path.suffix}"
    stem = _cut_bytes(path.stem, NAME_MAX - 1 - len(os.fsencode(tail)))
    return path.with_name(f".{stem}{tail}")


def temp_file_pid(name: str) -> int | None:
    """The pid of the process that wrote a temporary file of `atomic_path`, None for others."""
    m = _TEMP_NAME.match(name)
    return int(m.group(1)) if m else None


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temporary files of `atomic_path` in `folder` left by processes that died
    mid-write (any process but this one); returns what was removed."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for p in Path(folder).iterdir():
        pid = temp_file_pid(p.name)
        if pid is not None and pid != os.getpid() and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError that says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _mount_point(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def disk_full_error(path: str | os.PathLike, what: str) -> DiskFullError:
    """The one-line DiskFullError for failing to `what` (e.g. "save to the project") at
    `path`: it names the folder, the disk it is on and the space left there."""
    path = Path(path)
    mount = _mount_point(path)
    try:
        free = f"{shutil.disk_usage(mount).free / 2**20:.0f} MB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(f"Cannot {what} {path}: the disk holding it ({mount}, {free}) is "
                         "full; nothing was half-written. Free some space and try again.")


@contextmanager
def atomic_path(path: str | os.PathLike, *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` when the block succeeds.

    The temporary name keeps the suffix (some writers choose the format by it) and is
    unique per process and thread. `sync=False` skips the fsync (caches that can be
    rebuilt).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if sync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> None:
    with atomic_path(path, sync=sync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy a file with its times (like shutil.copy2) so `dest` is never half-written."""
    with atomic_path(dest) as tmp:
        shutil.copy2(src, tmp)
