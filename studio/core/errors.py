"""Errors of our own. Every failure a user can cause is a subclass of StudioError whose
message says what was wrong and what to do; the GUI shows it, the CLI prints it."""

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


# --- learning -------------------------------------------------------------------------
class ConfigError(StudioError):
    """A training/prediction config is invalid; raised before any work starts."""


class TrainingError(StudioError):
    """Training failed (NaN loss, out of memory, ...)."""


class WeightsUnavailableError(StudioError):
    """Pretrained weights are not cached and cannot be downloaded."""
