"""Checkpoints of runs: plain dicts written atomically, read with `weights_only=True`.

A checkpoint holds only tensors, containers, numbers and strings:
{"model", "optimizer", "scheduler", "scaler", "epoch" (completed epochs), "config",
"class_names", "class_ids", "best", "normalize", "status", "task", "format"}.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from studio.core.errors import NotFoundError, StudioError
from studio.core.fileio import atomic_path

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, payload: dict) -> Path:
    """torch.save, atomically (a crash never leaves a half-written checkpoint)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (weights_only); StudioError if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"Checkpoint {path} does not exist.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError,
            AttributeError, TypeError) as exc:
        raise StudioError(f"{path} is not a readable checkpoint ({type(exc).__name__}); "
                          "choose a last.pt or best.pt written by a training run.") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise StudioError(f"{path} is not a Vision Studio training checkpoint (no model and "
                          "config in it).")
    return ckpt


def run_checkpoint(project, run_id: int, which: str = "best") -> Path:
    """Path of a run's best.pt (falling back to last.pt when no best exists) or last.pt."""
    if which not in ("best", "last"):
        raise StudioError(f"Unknown checkpoint {which!r}; use 'best' or 'last'.")
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
