"""Re-pointing images whose files have moved: one image to a chosen file, or every missing
image to the file of the same name found under a folder.

A relinked file must have the recorded image size, so that the annotations still fit; its
content may differ (a re-encoded copy), and the recorded hash follows the new file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import ImageMissingError, StudioError, ValidationError
from studio.core.images import file_sha256, image_info


@dataclass
class RelinkReport:
    relinked: list[tuple[int, str]] = field(default_factory=list)  # (image id, new path)
    not_found: list[str] = field(default_factory=list)  # stored paths still missing
    refused: list[tuple[str, str]] = field(default_factory=list)  # (candidate, reason)

    def summary(self) -> str:
        text = f"Relinked {len(self.relinked)} image(s)."
        if self.not_found:
            text += f" {len(self.not_found)} still missing (no file of that name in the folder)."
        if self.refused:
            text += f" {len(self.refused)} file(s) of the right name did not match: " + "; ".join(
                f"{p}: {r}" for p, r in self.refused[:3])
        return text


def _stored(project, path: Path) -> str:
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


def relink_image(project, image_id: int, new_path: str | os.PathLike) -> None:
    """Point image `image_id` at `new_path` (same image size required)."""
    rec = project.image(image_id)
    path = Path(new_path).expanduser().resolve()
    if not path.is_file():
        raise ImageMissingError(f"{path} does not exist; choose an existing image file.")
    info = image_info(path)
    if (info.width, info.height) != (rec.width, rec.height):
        raise ValidationError(f"{path.name} is {info.width} x {info.height}, but {rec.name} was "
                          f"{rec.width} x {rec.height}; choose the same image.")
    digest = file_sha256(path)
    other = project.find_image_by_hash(digest)
    if other is not None and other != image_id:
        raise ValidationError(f"{path.name} is already image {other} of this project; choose the "
                          f"file of {rec.name}.")
    with project.transaction() as conn:
        conn.execute("UPDATE images SET path = ?, sha256 = ? WHERE id = ?",
                     (_stored(project, path), digest, int(image_id)))


def missing_image_ids(project, stop: Callable[[], bool] | None = None,
                      page: int = 1000) -> list[int]:
    """Ids of the images whose file does not exist (reads the image list a page at a time)."""
    out, offset = [], 0
    while True:
        records = project.images(offset=offset, limit=page)
        out += [r.id for r in records if not r.abs_path.is_file()]
        if len(records) < page or (stop is not None and stop()):
            return out
        offset += page


def relink_folder(project, folder: str | os.PathLike,
                  stop: Callable[[], bool] | None = None) -> RelinkReport:
    """Re-point every missing image to the file of the same name under `folder` (searched
    recursively; names compare case-insensitively). Where several files share the name,
    the one with the recorded content wins."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise ValidationError(f"{root} is not a folder; choose the folder that holds the images.")
    by_name: dict[str, list[Path]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            by_name.setdefault(name.lower(), []).append(Path(dirpath) / name)
        if stop is not None and stop():
            break
    report = RelinkReport()
    for image_id in missing_image_ids(project, stop):
        rec = project.image(image_id)
        candidates = by_name.get(rec.name.lower(), [])
        if len(candidates) > 1:
            same = [p for p in candidates if file_sha256(p) == rec.sha256]
            candidates = same or candidates
        if not candidates:
            report.not_found.append(rec.path)
            continue
        for candidate in candidates:
            try:
                relink_image(project, image_id, candidate)
            except StudioError as exc:
                report.refused.append((str(candidate), str(exc)))
                continue
            report.relinked.append((image_id, str(candidate)))
            break
        else:
            report.not_found.append(rec.path)
        if stop is not None and stop():
            break
    return report


# --- files changed on disk after import ---------------------------------------------------
@dataclass(frozen=True)
class ChangedImage:
    """An image whose file no longer is what the project recorded."""

    id: int
    path: str
    stored: tuple[int, int]  # width, height recorded at import
    now: tuple[int, int] | None  # what the file's header says now; None: unreadable
    content_changed: bool = False  # same size, other bytes (only when hashes were compared)

    def describe(self) -> str:
        if self.now is None:
            return f"{self.path} (no longer a readable image)"
        if self.now != self.stored:
            return (f"{self.path} (now {self.now[0]} x {self.now[1]}, recorded "
                    f"{self.stored[0]} x {self.stored[1]})")
        return f"{self.path} (other content, same size)"


def changed_images(project, records=None, content: bool = False,
                   stop: Callable[[], bool] | None = None) -> list[ChangedImage]:
    """The images (all, or `records`) whose file's size differs from the recorded one,
    read from the file header (cheap); with `content`, also those whose bytes differ from
    the recorded SHA-256 (reads every file). Missing files are `missing_image_ids`'s."""
    from studio.core.errors import ImageError

    out = []
    for rec in project.images() if records is None else records:
        if stop is not None and stop():
            break
        if not rec.abs_path.is_file():
            continue
        try:
            info = image_info(rec.abs_path)
        except ImageError:
            out.append(ChangedImage(rec.id, rec.path, (rec.width, rec.height), None))
            continue
        now = (info.width, info.height)
        if now != (rec.width, rec.height):
            out.append(ChangedImage(rec.id, rec.path, (rec.width, rec.height), now))
        elif content and file_sha256(rec.abs_path) != rec.sha256:
            out.append(ChangedImage(rec.id, rec.path, now, now, True))
    return out


def check_unchanged(project, records, what: str) -> None:
    """Refuse to `what` (e.g. "train on") images whose files changed size since import:
    their annotations were drawn on the recorded size. Names them and says how to re-read."""
    from studio.core.errors import DataError

    changed = changed_images(project, records)
    if changed:
        shown = "; ".join(c.describe() for c in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise DataError(f"Cannot {what} {len(changed)} image(s) changed on disk since they "
                        f"were imported: {shown}{more}. Check their annotations, then re-read "
                        "them with `studio-cli refresh PROJECT` (or put the original files "
                        "back).")


@dataclass
class RefreshReport:
    refreshed: list[ChangedImage] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def summary(self) -> str:
        resized = sum(c.now != c.stored for c in self.refreshed)
        text = f"Re-read {len(self.refreshed)} changed image(s)"
        text += (f"; {resized} changed size: check their annotations, which were drawn on the "
                 "old size." if resized else ".")
        if self.refused:
            text += " Not re-read: " + "; ".join(f"{p}: {r}" for p, r in self.refused[:3])
        return text


def refresh_images(project, changed: list[ChangedImage]) -> RefreshReport:
    """Record the current size, channels and hash of each changed image (one transaction).
    An unreadable file, or one whose content is now another image's, is left as it was."""
    import time

    report = RefreshReport()
    with project.transaction() as conn:
        for item in changed:
            rec = project.image(item.id)
            if item.now is None:
                report.refused.append((item.path, "not a readable image; put the original "
                                                  "back or remove the image"))
                continue
            info = image_info(rec.abs_path)
            digest = file_sha256(rec.abs_path)
            other = project.find_image_by_hash(digest)
            if other is not None and other != item.id:
                report.refused.append((item.path, f"now the same file as image {other}"))
                continue
            conn.execute("UPDATE images SET width = ?, height = ?, channels = ?, sha256 = ?, "
                         "updated_at = ? WHERE id = ?", (info.width, info.height,
                                                         info.channels, digest, time.time(),
                                                         item.id))
            report.refreshed.append(item)
    return report
