"""Model files on disk: where osam keeps them, whether they are there and intact, and the
two ways to get them (download through osam on request, or install from a file).

Nothing here downloads by itself: `pull` runs only when the person asked for it (the
GUI's download question, `studio-cli models pull`). Every file is checked against its
SHA-256 before it is used or installed; a wrong file is refused, never half-copied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import StudioError, ValidationError, WeightsUnavailableError
from studio.core.fileio import atomic_path
from studio.ml.segment.registry import ModelFile, ModelSpec, list_models, osam_blobs


class DownloadCancelled(StudioError):
    """The person cancelled a model download; nothing was installed."""


def file_path(spec: ModelSpec, role: str) -> Path:
    """Where osam keeps (and loads) this file of the model."""
    return Path(osam_blobs(spec.osam_type)[role].path)


def weights_folder() -> Path:
    """osam's folder of model files (the same for every model)."""
    spec = list_models()[0]
    return file_path(spec, spec.files[0].role).parent


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) seen with a good hash
_LOCK = threading.Lock()


def file_ok(spec: ModelFile, path: Path) -> bool:
    """True when the file exists with the right hash (remembered until it changes)."""
    try:
        st = path.stat()
    except OSError:
        return False
    stamp = (st.st_size, st.st_mtime_ns)
    with _LOCK:
        if _VERIFIED.get(str(path)) == stamp:
            return True
    ok = sha256_of(path) == spec.sha256
    if ok:
        with _LOCK:
            _VERIFIED[str(path)] = stamp
    return ok


def missing_files(spec: ModelSpec, check_hash: bool = False) -> list[ModelFile]:
    """Files of the model not installed (or, with check_hash, not intact)."""
    out = []
    for f in spec.files:
        path = file_path(spec, f.role)
        if not path.is_file() or (check_hash and not file_ok(f, path)):
            out.append(f)
    return out


def is_installed(spec: ModelSpec) -> bool:
    return not missing_files(spec)


def offline_message(spec: ModelSpec, files: list[ModelFile] | None = None) -> str:
    files = spec.files if files is None else files
    names = ", ".join(f"{f.filename} (SHA-256 {f.sha256[:12]}...)" for f in files)
    return (f"The model {spec.title} ({spec.name}) needs {names}, not found in "
            f"{weights_folder()}. Download it ({spec.size_text}; studio-cli models pull "
            f"{spec.name}) or, offline, get the files elsewhere and use Install from file... "
            "(studio-cli models import FILE): each file's SHA-256 is checked.")


def ensure_installed(spec: ModelSpec) -> None:
    """Raise WeightsUnavailableError (naming the files and folder) unless every file of
    the model is there with its right hash. Never downloads."""
    missing = missing_files(spec, check_hash=True)
    if missing:
        raise WeightsUnavailableError(offline_message(spec, missing))


def match_file(path: str | os.PathLike, name: str | None = None
               ) -> tuple[ModelSpec, ModelFile, str]:
    """The model file whose SHA-256 `path` has (of model `name`, or of any model)."""
    src = Path(path)
    if not src.is_file():
        raise ValidationError(f"Cannot install {src}: no such file.")
    digest = sha256_of(src)
    specs = [s for s in list_models() if name is None or s.name == name]
    for spec in specs:
        for f in spec.files:
            if f.sha256 == digest:
                return spec, f, digest
    which = f"of the model {name}" if name else "of any model we offer"
    raise ValidationError(f"Refused {src.name}: its SHA-256 {digest[:16]}... is not that of a "
                          f"file {which}; it may be damaged or another file. Nothing was "
                          "installed.")


def install_from_file(path: str | os.PathLike, name: str | None = None) -> tuple[ModelSpec, Path]:
    """Copy a model file into osam's folder after checking its SHA-256 against the files
    we know (refused otherwise). Returns the model and the installed path."""
    spec, f, digest = match_file(path, name)
    dest = file_path(spec, f.role)
    try:
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
            if sha256_of(tmp) != digest:  # changed while copying
                raise ValidationError(f"{Path(path).name} changed while it was copied; "
                                      "nothing was installed. Try again.")
    except OSError as exc:
        raise StudioError(f"Cannot install {Path(path).name} into {dest.parent}: {exc}.") from exc
    return spec, dest


Progress = Callable[[str, int, int | None], None]  # file name, bytes so far, total bytes


def pull(spec: ModelSpec, progress: Progress | None = None,
         cancel: threading.Event | None = None) -> None:
    """Download the model's missing files through osam (its endpoints, OSAM_BLOB_ENDPOINT
    mirrors and SHA-256 check). Only call this when the person asked for it."""
    from osam.types import PullCancelledError

    if not missing_files(spec, check_hash=True):
        return
    try:
        spec.osam_type.pull(progress=progress, cancel=cancel)
    except PullCancelledError as exc:
        raise DownloadCancelled(f"The download of {spec.title} was cancelled; nothing was "
                                "installed.") from exc
    except Exception as exc:  # network, disk, hash: osam says which
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"The download of {spec.title} was cancelled; nothing "
                                    "was installed.") from exc
        reason = " ".join(str(exc).split())[:300]
        raise WeightsUnavailableError(f"Could not download {spec.title}: {reason} "
                                      f"{offline_message(spec)}") from exc
    ensure_installed(spec)
