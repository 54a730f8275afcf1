"""Images of a project: adding (by reference or copied in), finding, filtering, paging,
split and status. A mixin of `studio.core.project.Project`, which owns the connection."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import NotFoundError, ProjectError, ValidationError
from studio.core.fileio import atomic_copy, disk_full_error, is_disk_full
from studio.core.splits import UNASSIGNED, check_split

STATUSES = ("new", "in_progress", "done", "review")



@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    abs_path: Path
    width: int
    height: int
    channels: int
    sha256: str
    split: str
    status: str
    n_annotations: int = 0  # everything, image tags included
    n_objects: int = 0  # boxes, polygons and masks: what the Objects panel lists

    @property
    def name(self) -> str:
        return Path(self.path).name


class ImagesMixin:
    """Image bookkeeping for `Project`."""

    def _store_path(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def resolve_path(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    def find_image_by_hash(self, sha256: str) -> int | None:
        rows = self._query("SELECT id FROM images WHERE sha256 = ?", (sha256,))
        return int(rows[0][0]) if rows else None

    def add_image(
        self,
        path: str | os.PathLike,
        *,
        copy: bool = False,
        split: str = UNASSIGNED,
        status: str = "new",
        width: int | None = None,
        height: int | None = None,
        channels: int | None = None,
        sha256: str | None = None,
    ) -> tuple[int, bool]:
        """Register an image where it lies (or copy it into `images/`).

        Returns (id, created); an image whose content is already in the project returns
        the existing id and False.
        """
        from studio.core import images as imgs

        src = Path(path).expanduser().resolve()
        check_split(split)
        _check_choice("status", status, STATUSES)
        if not src.is_file():
            raise NotFoundError(f"Image file not found: {imgs.printable_name(src)}; check "
                                "that it was not moved.")
        if not imgs.utf8_name(src):
            raise ValidationError(f"The file name {imgs.printable_name(src)} is not valid "
                                  "UTF-8 text, which the project cannot store; rename the file "
                                  "(e.g. with convmv) and add it again.")
        digest = sha256 or imgs.file_sha256(src)
        existing = self.find_image_by_hash(digest)
        if existing is not None:
            return existing, False
        if width is None or height is None or channels is None:
            info = imgs.image_info(src)
            width, height, channels = info.width, info.height, info.channels
        with self.transaction():  # the copy goes again if the row (or the import) fails
            if copy:
                src = self._copy_in(src, digest)
            now = time.time()
            cur = self._write(
                "INSERT INTO images(path, width, height, channels, sha256, split, status,"
                " added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._store_path(src), int(width), int(height), int(channels), digest, split,
                 status, now, now),
            )
        return int(cur.lastrowid), True

    def _copy_in(self, src: Path, digest: str) -> Path:
        """Copy an image into `images/` for the open transaction (removed on rollback)."""
        dest_dir = self.root / "images"
        dest = dest_dir / src.name
        if dest.exists():
            dest = dest_dir / f"{src.stem}_{digest[:8]}{src.suffix}"
        try:
            dest_dir.mkdir(exist_ok=True)
            atomic_copy(src, dest)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(dest_dir, "copy images into") from exc
            raise ProjectError(f"Cannot copy {src.name} into {dest_dir}: "
                               f"{exc.strerror or exc}.") from exc
        self._copied.append(dest)
        return dest

    _IMAGE_COLS = (
        "i.id, i.path, i.width, i.height, i.channels, i.sha256, i.split, i.status,"
        " (SELECT COUNT(*) FROM annotations a WHERE a.image_id = i.id),"
        " (SELECT COUNT(*) FROM annotations a WHERE a.image_id = i.id AND a.kind != 'tag')"
    )

    def _image_from_row(self, row: tuple) -> ImageRecord:
        return ImageRecord(row[0], row[1], self.resolve_path(row[1]), *row[2:])

    def image(self, image_id: int) -> ImageRecord:
        rows = self._query(f"SELECT {self._IMAGE_COLS} FROM images i WHERE i.id = ?", (image_id,))
        if not rows:
            raise NotFoundError(f"There is no image with id {image_id} in this project.")
        return self._image_from_row(rows[0])

    @staticmethod
    def _image_filter(status, split, class_id, search, after_id=None,
                      unlabelled: bool = False) -> tuple[str, list]:
        where, params = [], []
        if unlabelled:  # no annotation at all, and not marked done as an empty image
            where.append("i.status != 'done' AND NOT EXISTS "
                         "(SELECT 1 FROM annotations a WHERE a.image_id = i.id)")
        if after_id is not None:
            where.append("i.id > ?")
            params.append(int(after_id))
        if status is not None:
            where.append("i.status = ?")
            params.append(status)
        if split is not None:
            where.append("i.split = ?")
            params.append(split)
        if class_id is not None:
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = i.id AND a.class_id = ?)")
            params.append(class_id)
        if search:
            where.append("i.path LIKE ? ESCAPE '\\'")
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return (" WHERE " + " AND ".join(where)) if where else "", params

    def images(self, status=None, split=None, class_id=None, search=None, offset: int = 0,
               limit: int | None = None, after_id: int | None = None,
               unlabelled: bool = False) -> list[ImageRecord]:
        """Images matching the filters, ordered by id, one page at a time (optionally only
        those after `after_id`, which pages without OFFSET's cost). `unlabelled`: only
        images without any annotation that are not marked done."""
        where, params = self._image_filter(status, split, class_id, search, after_id,
                                           unlabelled)
        sql = f"SELECT {self._IMAGE_COLS} FROM images i{where} ORDER BY i.id LIMIT ? OFFSET ?"
        rows = self._query(sql, (*params, -1 if limit is None else limit, offset))
        return [self._image_from_row(r) for r in rows]

    def image_ids(self, status=None, split=None, class_id=None, search=None,
                  unlabelled: bool = False) -> list[int]:
        where, params = self._image_filter(status, split, class_id, search,
                                           unlabelled=unlabelled)
        return [r[0] for r in self._query(f"SELECT i.id FROM images i{where} ORDER BY i.id", params)]

    def count_images(self, status=None, split=None, class_id=None, search=None) -> int:
        where, params = self._image_filter(status, split, class_id, search)
        return int(self._query(f"SELECT COUNT(*) FROM images i{where}", params)[0][0])

    def set_split(self, image_ids: int | Sequence[int], split: str) -> None:
        check_split(split)
        ids = [image_ids] if isinstance(image_ids, int) else list(image_ids)
        with self.transaction() as conn:
            conn.executemany("UPDATE images SET split = ?, updated_at = ? WHERE id = ?",
                             [(split, time.time(), i) for i in ids])

    def set_status(self, image_ids: int | Sequence[int], status: str) -> None:
        _check_choice("status", status, STATUSES)
        ids = [image_ids] if isinstance(image_ids, int) else list(image_ids)
        with self.transaction() as conn:
            conn.executemany("UPDATE images SET status = ?, updated_at = ? WHERE id = ?",
                             [(status, time.time(), i) for i in ids])

    def delete_image(self, image_id: int) -> None:
        """Forget an image and its annotations (the file itself stays where it is)."""
        self.image(image_id)
        self._write("DELETE FROM images WHERE id = ?", (image_id,))


def _check_choice(what: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValidationError(f"Unknown {what} {value!r}; use one of: {', '.join(allowed)}.")
