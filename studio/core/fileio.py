"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every writer of the application (exports, checkpoints, tiles, predictions, copies) goes
through `atomic_path`: write to a temporary file beside the target, optionally fsync, then
os.replace; on any failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` when the block succeeds.

    The temporary name keeps the suffix (some writers choose the format by it) and is
    unique per process and thread. `sync=False` skips the fsync (caches that can be
    rebuilt).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp{path.suffix}")
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
