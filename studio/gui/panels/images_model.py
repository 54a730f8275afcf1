"""A virtual table of a project's images: rows come from the store one page at a time.

`rowCount` is a single COUNT query; a row's record is loaded with the page around it when
the view first asks for it, and only a bounded number of pages stay cached. Opening a
project of 100,000 images therefore reads one page, and jumping to the end reads the
last page only. Thumbnails are made in a worker, cached, and shown when ready.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QBrush, QColor, QImage

from studio.core.project import Project
from studio.core.project_images import ImageRecord
from studio.gui.workers import WorkerPool

log = logging.getLogger(__name__)

COLUMNS = ("Name", "Status", "Split", "Objects")
COL_NAME, COL_STATUS, COL_SPLIT, COL_OBJECTS = range(4)
STATUS_LABELS = {"new": "new", "in_progress": "in progress", "done": "done",
                 "review": "needs review"}
STATUS_COLORS = {"new": "#808080", "in_progress": "#d08000", "done": "#2e8b57",
                 "review": "#c0392b"}
THUMB_SIZE = 40
ImageIdRole = Qt.ItemDataRole.UserRole + 1


def array_to_qimage(arr: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 grey / RGB / RGBA array (safe in any thread)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype != np.uint8:
        lo, hi = float(arr.min()), float(arr.max())
        arr = ((arr - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.ascontiguousarray(arr[:, :, 0])
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        fmt, stride = QImage.Format.Format_Grayscale8, w
    elif arr.shape[2] == 3:
        fmt, stride = QImage.Format.Format_RGB888, 3 * w
    else:
        fmt, stride = QImage.Format.Format_RGBA8888, 4 * w
    return QImage(arr.data, w, h, stride, fmt).copy()


def make_thumbnail(path: Path, cache_dir: Path, size: int = THUMB_SIZE) -> QImage:
    """A small QImage of the image file (runs in a worker thread; cached on disk by core)."""
    from studio.core.tiles import thumbnail

    return array_to_qimage(thumbnail(path, cache_dir, size))


class ImageListModel(QAbstractTableModel):
    """Rows: the images matching the current filters, ordered by id."""

    PAGE = 200
    MAX_PAGES = 40
    MAX_THUMBS = 2000

    def __init__(self, parent: QObject | None = None, workers: WorkerPool | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._filters: dict = dict(status=None, split=None, class_id=None, search=None)
        self._count = 0
        self._pages: OrderedDict[int, list[ImageRecord]] = OrderedDict()
        self._ids: list[int] | None = None  # all filtered ids, only loaded for row lookups
        self._thumbs: OrderedDict[str, QImage | None] = OrderedDict()
        self._thumb_wanted: dict[str, int] = {}  # path -> row, waiting for the next batch
        self._thumb_timer = QTimer(self, singleShot=True, interval=60)
        self._thumb_timer.timeout.connect(self._request_thumbnails)
        self._workers = workers
        self.thumbnails_enabled = workers is not None

    # --- configuration -----------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self._project

    def set_project(self, project: Project | None) -> None:
        self._project = project
        self._thumbs.clear()
        self.refresh()

    @property
    def filters(self) -> dict:
        return dict(self._filters)

    def set_filters(self, status=None, split=None, class_id=None, search=None) -> None:
        new = dict(status=status, split=split, class_id=class_id, search=search or None)
        if new != self._filters:
            self._filters = new
            self.refresh()

    def refresh(self) -> None:
        """Re-count and forget cached pages (after imports or filter changes)."""
        self.beginResetModel()
        self._pages.clear()
        self._ids = None
        self._thumb_wanted.clear()
        self._count = self._project.count_images(**self._filters) if self._project else 0
        self.endResetModel()

    def refresh_image(self, image_id: int) -> None:
        """Reload the cached row of one image (status, split or object count changed)."""
        if self._project is None:
            return
        for page_no, page in self._pages.items():
            for i, rec in enumerate(page):
                if rec.id == image_id:
                    page[i] = self._project.image(image_id)
                    row = page_no * self.PAGE + i
                    self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                    return

    # --- lookups -------------------------------------------------------------------------
    @property
    def loaded_rows(self) -> int:
        """How many records are held in memory right now."""
        return sum(len(p) for p in self._pages.values())

    @property
    def pages_loaded(self) -> int:
        return len(self._pages)

    def record(self, row: int) -> ImageRecord | None:
        if not 0 <= row < self._count or self._project is None:
            return None
        page_no, offset = divmod(row, self.PAGE)
        page = self._pages.get(page_no)
        if page is None:
            page = self._project.images(**self._filters, offset=page_no * self.PAGE,
                                        limit=self.PAGE)
            self._pages[page_no] = page
            while len(self._pages) > self.MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        return page[offset] if offset < len(page) else None

    def image_id_at(self, row: int) -> int | None:
        rec = self.record(row)
        return rec.id if rec else None

    def row_of(self, image_id: int) -> int | None:
        """The row of an image under the current filters, or None when filtered out."""
        if self._count and 0 not in self._pages:
            self.record(0)  # the first page is shown anyway, and most lookups end there
        for page_no, page in self._pages.items():
            for i, rec in enumerate(page):
                if rec.id == image_id:
                    return page_no * self.PAGE + i
        if self._project is None:
            return None
        if self._ids is None:
            self._ids = self._project.image_ids(**self._filters)
        i = bisect.bisect_left(self._ids, image_id)
        return i if i < len(self._ids) and self._ids[i] == image_id else None

    # --- Qt model --------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else self._count

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        rec = self.record(index.row())
        if rec is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                return os.path.basename(rec.path)
            if col == COL_STATUS:
                return STATUS_LABELS.get(rec.status, rec.status)
            if col == COL_SPLIT:
                return "" if rec.split == "none" else rec.split
            return rec.n_objects
        if role == ImageIdRole:
            return rec.id
        if role == Qt.ItemDataRole.ToolTipRole:
            tags = rec.n_annotations - rec.n_objects
            return (f"{rec.path}\n{rec.width} x {rec.height}, {rec.channels} channel(s)\n"
                    f"{rec.n_objects} object(s)" + (f", {tags} image tag(s)" if tags else ""))
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS:
            return QBrush(QColor(STATUS_COLORS.get(rec.status, "#000000")))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_OBJECTS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_NAME and self.thumbnails_enabled:
            return self._thumbnail(rec, index.row())
        return None

    # --- thumbnails ------------------------------------------------------------------------
    def _thumbnail(self, rec: ImageRecord, row: int) -> QImage | None:
        """The cached thumbnail, or None after queueing it for the next batch."""
        key = str(rec.abs_path)
        if key in self._thumbs:
            self._thumbs.move_to_end(key)
            return self._thumbs[key]
        if self._workers is not None and key not in self._thumb_wanted:
            self._thumb_wanted[key] = row
            self._thumb_timer.start()  # debounced: rows scrolled past are never made
        return None

    def _request_thumbnails(self) -> None:
        """Make the thumbnails of the rows painted since the last batch, in one task that
        supersedes the previous batch (fast scrolling never piles up work)."""
        if not self._thumb_wanted or self._project is None:
            return
        wanted, self._thumb_wanted = dict(self._thumb_wanted), {}
        self._workers.submit(_thumbnail_batch, list(wanted.items()), self._project.cache_dir,
                             key=("thumbnails", id(self)), with_token=True,
                             on_progress=self._on_thumb)

    def _on_thumb(self, item: tuple[str, int, QImage | None, str | None]) -> None:
        key, row, image, error = item
        if error is not None:
            # An unreadable file shows no thumbnail; opening it shows the error to the person.
            log.warning("No thumbnail for %s: %s", key, error)
        self._thumbs[key] = image
        while len(self._thumbs) > self.MAX_THUMBS:
            self._thumbs.popitem(last=False)
        if row < self._count:
            idx = self.index(row, COL_NAME)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def _thumbnail_batch(token, items: list[tuple[str, int]], cache_dir: Path) -> int:
    """Worker: one thumbnail after the other, each reported as progress; stops when a
    newer batch supersedes this one. Unreadable files are reported with their reason."""
    from studio.core.errors import StudioError

    for key, row in items:
        token.check()
        try:
            token.progress((key, row, make_thumbnail(Path(key), cache_dir), None))
        except (StudioError, OSError) as exc:
            token.progress((key, row, None, str(exc)))
    return len(items)


# --- adding files (runs in a worker; no widgets) ---------------------------------------------
class AddImagesReport:
    """What adding files did: how many were new, already present or skipped (and why)."""

    def __init__(self) -> None:
        self.added = 0
        self.duplicates = 0
        self.skipped: list[tuple[str, str]] = []
        self.added_ids: list[int] = []

    def summary(self) -> str:
        text = f"Added {self.added} image(s); {self.duplicates} were already in the project."
        if self.skipped:
            text += f" Skipped {len(self.skipped)} file(s)."
        return text

    def details(self) -> str:
        return "\n".join(f"{path}: {reason}" for path, reason in self.skipped)


def collect_image_files(paths: list[Path], report: AddImagesReport) -> list[Path]:
    """Image files among `paths`, folders searched recursively; other files are reported."""
    from studio.core.images import is_image_file

    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and is_image_file(child):
                    files.append(child)
        elif path.is_file() and is_image_file(path):
            files.append(path)
        elif path.exists():
            report.skipped.append((str(path), "not an image file this app reads"))
        else:
            report.skipped.append((str(path), "does not exist"))
    return files


def add_images_job(token, project: Project, paths: list[Path]) -> AddImagesReport:
    """Add image files/folders to the project in ONE transaction (cancel = nothing added).

    Unreadable images are skipped with their reason; anything else aborts the whole add.
    """
    from studio.core.errors import ImageError

    report = AddImagesReport()
    files = collect_image_files(paths, report)
    with project.transaction():
        for n, path in enumerate(files):
            token.check()
            try:
                _id, created = project.add_image(path)
            except ImageError as exc:
                report.skipped.append((str(path), str(exc)))
                continue
            if created:
                report.added += 1
                report.added_ids.append(_id)
            else:
                report.duplicates += 1
            if n % 20 == 0:
                token.progress((n + 1, len(files)))
    return report
