"""Why a run failed and what to do, in words a person can act on.

The engine's own errors already say both (StudioError messages, of a kind per failure:
DiskFullError, DivergedError, OutOfMemoryError, ...); this adds the advice and names the
kind of failure in the dialog's title.
"""

from __future__ import annotations

from studio.core.errors import (
    ConfigError,
    DiskFullError,
    DivergedError,
    ImageError,
    OutOfMemoryError,
    StudioError,
    TrainingError,
    WeightsUnavailableError,
)
from studio.core.fileio import is_disk_full

KEEP = "The last good checkpoint of the run is kept; Resume continues from it."


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain_failure(exc: BaseException) -> tuple[str, str]:
    """(title, message) for a failed run, by the kind of error (the engine raises its own
    kinds; a raw error from a library, e.g. a full disk under a checkpoint write that
    failed, is looked for in the exception's chain)."""
    text = str(exc) or type(exc).__name__
    for err in _chain(exc):
        if isinstance(err, DiskFullError) or is_disk_full(err):
            return ("The disk is full", f"{text}\n\nFree space on the disk that holds the "
                    f"project (old runs' checkpoints can be deleted in the history). {KEEP}")
        if isinstance(err, ImageError | FileNotFoundError):
            return ("An image cannot be read", f"{text}\n\nThe file was moved, deleted or is "
                    "damaged: put it back or remove the image from the project (Label "
                    f"workspace), then train again. {KEEP}")
        if isinstance(err, WeightsUnavailableError):
            return "Pretrained weights are missing", text
        if isinstance(err, MemoryError):
            return ("Out of memory", f"{text}\n\nLower the batch size or the image size, or "
                    f"choose a smaller model. {KEEP}")
        if isinstance(err, OutOfMemoryError):
            return "Out of memory", f"{text}\n\n{KEEP}"
        if isinstance(err, DivergedError):
            return "Training diverged", f"{text}\n\n{KEEP}"
    if isinstance(exc, TrainingError):
        return "Training failed", f"{text}\n\n{KEEP}"
    if isinstance(exc, ConfigError):
        return "The settings cannot be used", text
    if isinstance(exc, StudioError):
        return "Training failed", text
    return ("Training failed unexpectedly", f"{type(exc).__name__}: {text}\n\nThis is a bug; "
            f"the log view has the details. {KEEP}")
