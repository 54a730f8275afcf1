"""Checkpoints of runs: plain dicts written atomically, read with `weights_only=True`.

A checkpoint holds only tensors, containers, numbers and strings:
{"model", "optimizer", "scheduler", "scaler", "epoch" (completed epochs), "config",
"class_names", "class_ids", "best", "normalize", "status", "task", "format"}.

Every checkpoint carries a SHA-256 of its tensors (their dtypes, shapes, places in the
payload and bytes); `load_checkpoint` recomputes it and refuses a file whose tensors changed
on disk (a flipped bit would otherwise resume training on corrupted weights). Checkpoints
written before the checksum existed load as before.

The file is serialised in memory and written by Python, so a full disk is an OSError we
turn into a clear error (torch's own zip writer aborts the process on ENOSPC) and the
temporary file is removed.

Training saves through a `CheckpointWriter`: the epoch hands over a snapshot and goes on,
and a background thread does the serialising and the fsync (10-20 ms an epoch for a small
model, which was most of fit's overhead over a bare loop).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import queue
import threading
import zipfile
from pathlib import Path
from typing import Any, TypedDict

import torch

from studio.core.errors import CheckpointError, NotFoundError, TrainingError, ValidationError
from studio.core.fileio import atomic_path, disk_full_error, is_disk_full

FORMAT = 1


class CheckpointPayload(TypedDict, total=False):
    """What a training checkpoint holds (`studio.ml.session` writes it; `load_checkpoint`
    reads it; `predict` and resuming rely on it)."""

    format: int
    task: str
    model: dict[str, torch.Tensor]  # state_dict
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]  # LRSchedule.state_dict()
    scaler: dict[str, Any] | None
    epoch: int  # completed epochs
    config: dict[str, Any]  # the validated run config
    class_names: list[str]
    class_ids: list[int]
    best: dict[str, Any]  # {"metric", "mode", "value", "epoch", "metrics"}
    normalize: dict[str, Any]  # {"mean", "std", "source"}
    status: str
    unfrozen: bool
    bad_epochs: int


LAST = "last.pt"
BEST = "best.pt"
_CHECKSUM = "tensor_sha256"


def _feed(digest, obj, where: str) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        digest.update(f"{where}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            _feed(digest, obj[key], f"{where}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _feed(digest, value, f"{where}[{i}]")


def _tensor_checksum(payload: dict) -> str:
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != _CHECKSUM}, "")
    return digest.hexdigest()


def save_checkpoint(path: Path, payload: CheckpointPayload) -> Path:
    """torch.save with a checksum of the tensors, atomically (a crash never leaves a
    half-written checkpoint; a full disk is a DiskFullError and leaves no temp file)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({**payload, _CHECKSUM: _tensor_checksum(payload)}, buffer)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getbuffer())
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(path.parent, "write the checkpoint into") from exc
        raise
    return path


def snapshot(obj):
    """A copy of a checkpoint payload that later training steps cannot change: tensors
    copied to the CPU (the optimizer updates the originals in place), containers rebuilt,
    everything else (numbers, strings, None) shared, being immutable."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: snapshot(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(value) for value in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoints in order on one background thread, each atomically.

    `submit` returns as soon as the payload is snapshotted. A failed write is not lost: it
    is raised (as TrainingError naming the file) by the next `submit` or by `close`.
    `close` waits for every queued write and ends the thread; call it when training ends,
    however it ends (a later `submit` starts a new thread).
    """

    def __init__(self) -> None:
        # one snapshot being written and one waiting, at most: a big model's state (with
        # its optimizer's) can be hundreds of MB, so a slow disk makes training wait
        # rather than fill the memory
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._failure: tuple[Path, BaseException] | None = None

    def submit(self, path: Path, payload: dict) -> None:
        self._raise_failure()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="checkpoint-writer",
                                            daemon=True)
            self._thread.start()
        self._queue.put((Path(path), snapshot(payload)))

    def close(self, raise_errors: bool = True) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if raise_errors:
            self._raise_failure()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._failure is None:  # after a failure, later writes are skipped
                try:
                    save_checkpoint(*item)
                except BaseException as exc:  # reported by the training thread
                    self._failure = (item[0], exc)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            (path, exc), self._failure = self._failure, None
            raise TrainingError(f"Could not write the checkpoint {path}: "
                                f"{type(exc).__name__}: {exc}. Free some disk space (or "
                                "check the folder's permissions) and resume the run.") from exc


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu"
                    ) -> CheckpointPayload:
    """Read a checkpoint safely (weights_only); StudioError if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"Checkpoint {path} does not exist.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError,
            AttributeError, TypeError, KeyError, IndexError, UnicodeDecodeError,
            OverflowError) as exc:  # any file at all (a text file: KeyError) may be given
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}); "
                              "choose a last.pt or best.pt written by a training run.") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path} is not a Vision Studio training checkpoint (no model "
                              "and config in it); choose one written by a training run.")
    expected = ckpt.pop(_CHECKSUM, None)
    if expected is not None and expected != _tensor_checksum(ckpt):
        raise CheckpointError(f"{path} is corrupted: its weights no longer match the checksum "
                              "written with them (damaged on disk). Use the run's other "
                              "checkpoint, or train again.")
    return ckpt


# --- does a checkpoint belong here? -------------------------------------------------------
def checkpoint_task(ckpt: CheckpointPayload) -> str:
    return str(ckpt.get("task") or ckpt["config"].get("task", "?"))


def describe_checkpoint(ckpt: CheckpointPayload) -> str:
    """"a semantic unet checkpoint with the classes a, b" (what it was trained for)."""
    model = ckpt["config"].get("model", "?")
    names = ", ".join(map(str, ckpt.get("class_names", []))) or "none"
    return f"a {checkpoint_task(ckpt)} {model} checkpoint with the classes {names}"


def class_mismatch(project, ckpt: CheckpointPayload) -> list[str]:
    """The checkpoint's classes that are not this project's class of that id and name
    ("b (id 7)"), empty when every one is."""
    names = {c.id: c.name for c in project.classes()}
    return [f"{name} (id {cid})" for cid, name in zip(ckpt.get("class_ids", []),
                                                       ckpt.get("class_names", []), strict=False)
            if names.get(int(cid)) != name]


def check_run_checkpoint(project, ckpt: CheckpointPayload, path: Path, run_task: str) -> None:
    """A run's own checkpoint must be of the run's task, and of this project (not a file
    copied in from another one: none of its classes is a class here)."""
    task = checkpoint_task(ckpt)
    if task != run_task:
        raise CheckpointError(f"{path} is {describe_checkpoint(ckpt)}, but its run is a "
                              f"{run_task} run; the file was replaced. Train the run again.")
    ids = ckpt.get("class_ids", [])
    if ids and len(class_mismatch(project, ckpt)) == len(ids):
        raise CheckpointError(f"{path} is {describe_checkpoint(ckpt)}, none of which is a "
                              "class of this project: it comes from another project. Train "
                              "the run again.")


def check_resume_checkpoint(project, ckpt: CheckpointPayload, path: Path,
                            task: str | None = None) -> None:
    """Training on from a checkpoint file needs the same task and the same classes: each of
    its classes a class of this project (same id and name), and each class this project
    labels for the task one of its classes. A deliberate transfer to other classes is the
    config's "pretrained" option (a checkpoint path), which maps the head."""
    from studio.ml.tasks import task_class_ids

    what = describe_checkpoint(ckpt)
    transfer = ('To start from its weights with this project\'s classes, set "pretrained" '
                "to the file in the config instead of --resume.")
    ckpt_task = checkpoint_task(ckpt)
    if task is not None and task != ckpt_task:
        raise CheckpointError(f"{path} is {what}; it cannot continue as a {task} run. "
                              + transfer)
    foreign = class_mismatch(project, ckpt)
    if foreign:
        raise CheckpointError(f"{path} is {what}; not classes of this project: "
                              f"{', '.join(foreign[:5])}. It comes from another project or "
                              "the classes changed. " + transfer)
    known = {int(i) for i in ckpt.get("class_ids", [])}
    names = {c.id: c.name for c in project.classes()}
    missing = [names[i] for i in task_class_ids(project, ckpt_task) if i not in known]
    if missing:
        raise CheckpointError(f"{path} is {what}; it knows {len(known)} of the "
                              f"{len(known) + len(missing)} classes this project labels "
                              f"(missing: {', '.join(missing[:5])}). " + transfer)


def run_checkpoint(project, run_id: int, which: str = "best") -> Path:
    """Path of a run's best.pt (falling back to last.pt when no best exists) or last.pt."""
    if which not in ("best", "last"):
        raise ValidationError(f"Unknown checkpoint {which!r}; use 'best' or 'last'.")
    record = project.run(run_id)
    folder = project.run_dir(record.id)
    names = [BEST, LAST] if which == "best" else [LAST]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise NotFoundError(f"Run {run_id} has no saved checkpoint (status {record.status}); "
                        "train it again.")


def relative_to_project(project, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(project.root).as_posix()
    except ValueError:
        return str(path)
