"""Errors of our own. Every failure a user can cause is a subclass of StudioError whose
message says what was wrong and what to do; the GUI shows it, the CLI prints it.

Message style: one line, starting with what was wrong (naming the file, folder, id or value),
then what to do, each a sentence ending with a full stop. No traceback, no repr of internals.
A broken internal invariant (a caller passing a field that does not exist) is a ValueError
or TypeError, not a StudioError: it is our bug, not the user's.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error the application raises on purpose."""


# --- projects -------------------------------------------------------------------------
class ProjectError(StudioError):
    """A project could not be created, opened or changed."""


class ProjectLockedError(ProjectError):
    """Another process has the project open."""


class SchemaTooNewError(ProjectError):
    """The project was written by a newer version of the application."""


class ProjectCorruptError(ProjectError):
    """The project database failed its integrity check or is not a database."""


class ReadOnlyProjectError(ProjectError):
    """The project folder (or its database) cannot be written."""


class NotFoundError(StudioError):
    """An image, class, annotation or run id that does not exist."""


class ActionError(StudioError):
    """An action the current state does not allow (no image open, nothing selected, a locked
    object); the message says what to do first."""


class ValidationError(StudioError):
    """A value given to the store or a command is not allowed (a name, colour, choice, ratio)."""


class GeometryError(ValidationError):
    """An annotation's geometry is malformed (not a box, too few points, not finite)."""


# --- the machine ----------------------------------------------------------------------
class DiskFullError(StudioError):
    """No space left on the disk that holds the named folder; nothing was half-written."""


class InstallationError(StudioError):
    """A file the application ships with (sample data, resources) is missing."""


# --- images ---------------------------------------------------------------------------
class ImageError(StudioError):
    """An image file could not be read. The message names the file."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ImageDecodeError(ImageError):
    """Corrupt, truncated, empty or not-an-image file."""


class ImageTooLargeError(ImageError):
    """The image exceeds the pixel budget (decompression bomb guard)."""


class ImageMissingError(ImageError):
    """The image file does not exist or cannot be opened."""


# --- formats --------------------------------------------------------------------------
class FormatError(StudioError):
    """An annotation file is malformed or unsafe; nothing was imported."""


class UnsafePathError(FormatError):
    """A path inside an imported file points outside its dataset folder."""


class DataError(StudioError):
    """Labels, masks or targets that do not fit: class values out of range, a dataset whose
    import would silently drop most of what it holds, mismatched label maps."""


# --- learning -------------------------------------------------------------------------
class ConfigError(StudioError):
    """A training/prediction config is invalid; raised before any work starts.

    `path` is the dotted path of the field in the config's JSON (``"optimizer.lr"``,
    ``"model_options.anchor_sizes"``), or None when the problem is not one field's: a
    window shows the message beside that field without reading the message text.
    """

    def __init__(self, message: str = "", path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # keep the path across processes (pickle)
        return type(self), (str(self), self.path)


class TrainingError(StudioError):
    """Training failed (NaN loss, out of memory, ...)."""


class DivergedError(TrainingError):
    """The loss became NaN or infinite: training diverged."""


class OutOfMemoryError(TrainingError):
    """The device ran out of memory even at the smallest batch the run could retry with."""


class WeightsUnavailableError(StudioError):
    """Pretrained weights are not cached and cannot be downloaded."""


class CheckpointError(StudioError):
    """A checkpoint is unreadable, not ours, or fails its checksum (corrupted on disk)."""


class ExportError(StudioError):
    """A model export failed or does not reproduce the model; nothing was written."""
