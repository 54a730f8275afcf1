"""Tile pyramid and thumbnails, cached on disk for the viewer and the image gallery.

A ``TilePyramid`` cuts an image into ``tile_size`` squares at level 0 (full resolution)
and at every coarser level (each halves width and height, rounding up) until the whole
image fits in one tile. Tiles are uint8 display data: grey (HxW) or RGB (HxWx3); alpha is
dropped and 16-bit images are windowed once for the whole image (``to_uint8`` percentiles).

How a viewer uses it (every call may run on a worker thread):
1. ``TilePyramid(path, project.cache_dir)`` is cheap: header read, manifest read.
2. ``overview()`` gives the whole image at a coarse level fast. For JPEG it uses the
   codec's reduced decode (1/8 size without decoding at full resolution), so a
   20000 x 20000 JPEG paints in about a second. PNG/TIFF/BMP/WebP have no reduced
   decode: the first overview pays one full decode; its levels are kept for
   ``ensure_built`` so the image is decoded once. Later opens read cached tiles.
3. ``ensure_built(progress, stop)`` in a worker writes the remaining tiles, coarse levels
   first; ``cached_tile`` answers without blocking while it runs.

Cache layout: ``<cache_dir>/tiles/<key>-<tile_size>-<ext>/<level>/<ty>_<tx>.<ext>`` with a
``manifest.json`` of finished levels, and ``<cache_dir>/thumbs/<key>-<size>.png``. The key
hashes the file's absolute path, size and modification time (or is given by the caller,
e.g. the content SHA-256 the project stores). Tiles of JPEG sources are JPEG (quality 95,
about 15x faster to write than PNG); other sources get lossless PNG tiles.
Cache files are replaced atomically but not fsynced: a tile that fails to decode after a
crash is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from studio.core.errors import ImageError
from studio.core.fileio import atomic_write_bytes

# cv2 comes through images, which sets OpenCV's pixel limit before the library loads.
from studio.core.images import (
    PIXEL_BUDGET,
    cv2,
    display_range,
    image_info,
    load_image_bgr,
    to_uint8,
)

Progress = Callable[[float], None]
Stop = Callable[[], bool]
_MANIFEST_VERSION = 1
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
_JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95]
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]

log = logging.getLogger(__name__)


def _lock_for(folder: Path) -> threading.RLock:
    """One build lock per cache folder, shared by every pyramid object in the process."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(folder), threading.RLock())


def source_key(path: str | os.PathLike[str]) -> str:
    """Cache key of an image file: hash of absolute path, size and mtime (no content read)."""
    p = Path(path).resolve()
    st = p.stat()
    return hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


def _read_cached(path: Path) -> np.ndarray | None:
    """Decode a cached PNG/JPEG (grey or BGR); a corrupt file is deleted, giving None."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        log.warning("Corrupt cached tile %s removed; it is rebuilt from the image.", path)
        path.unlink(missing_ok=True)
    return img


def _to_rgb(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _display(img: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Native decode (grey/BGR/BGRA, uint8/16) -> uint8 grey or BGR."""
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.dtype != np.uint8:
        lo, hi = window if window is not None else display_range(img)
        img = to_uint8(img, lo, hi)
    return img


def _halve(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class TilePyramid:
    """Multi-resolution tiles of one image, built once and cached under ``cache_dir``."""

    def __init__(self, image_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
                 tile_size: int = 512, *, key: str | None = None,
                 tile_format: str = "auto") -> None:
        if tile_size < 16:
            raise ValueError("tile_size must be at least 16 pixels")
        self.path = Path(image_path)
        self.info = image_info(self.path)  # raises for missing/corrupt/too large files
        self.tile_size = tile_size
        if tile_format == "auto":
            tile_format = "jpg" if self.info.format == "jpeg" else "png"
        if tile_format not in ("jpg", "png"):
            raise ValueError("tile_format must be 'auto', 'jpg' or 'png'")
        self.tile_format = tile_format
        self.width, self.height = self.info.width, self.info.height
        self.channels = 1 if self.info.channels == 1 else 3
        sizes = [(self.width, self.height)]
        while max(sizes[-1]) > tile_size:
            w, h = sizes[-1]
            sizes.append(((w + 1) // 2, (h + 1) // 2))
        self._sizes = sizes
        self.dir = (Path(cache_dir) / "tiles"
                    / f"{key or source_key(self.path)}-{tile_size}-{tile_format}")
        self._lock = _lock_for(self.dir)
        self._stats_lock = threading.Lock()
        self.stats = {"decodes": 0, "tiles_written": 0}
        self._pending: list[np.ndarray | None] | None = None
        self._complete: set[int] = set()
        self._window: tuple[float, float] | None = None
        self._load_manifest()

    @classmethod
    def open(cls, image_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
             tile_size: int = 512, **kwargs: str | None) -> TilePyramid:
        """Same as the constructor (cheap: reads the header and the manifest only)."""
        return cls(image_path, cache_dir, tile_size, **kwargs)  # type: ignore[arg-type]

    # --- geometry ---------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        """Number of levels; level 0 is full resolution, the last fits in one tile."""
        return len(self._sizes)

    def level_size(self, level: int) -> tuple[int, int]:
        """(width, height) of a level in its own pixels."""
        self._check_level(level)
        return self._sizes[level]

    def level_scale(self, level: int) -> tuple[float, float]:
        """Level-0 pixels per level pixel, (sx, sy); about 2**level."""
        w, h = self.level_size(level)
        return self.width / w, self.height / h

    def tile_grid(self, level: int) -> tuple[int, int]:
        """Number of tiles (columns, rows) of a level."""
        w, h = self.level_size(level)
        return -(-w // self.tile_size), -(-h // self.tile_size)

    def tile_rect(self, level: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of a tile in level pixels; edge tiles are smaller."""
        self._check_tile(level, tx, ty)
        w, h = self._sizes[level]
        x, y = tx * self.tile_size, ty * self.tile_size
        return x, y, min(self.tile_size, w - x), min(self.tile_size, h - y)

    def best_level(self, scale: float) -> int:
        """Coarsest level that still has at least one level pixel per screen pixel.

        ``scale`` is screen pixels per level-0 pixel (1.0 = 100 % zoom)."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        level = 0 if scale >= 1 else int(math.floor(math.log2(1.0 / scale) + 1e-9))
        return min(level, self.levels - 1)

    def tiles_for_view(self, level: int, x0: float, y0: float, x1: float,
                       y1: float) -> list[tuple[int, int]]:
        """Tiles (tx, ty) of ``level`` covering the level-0 rectangle [x0, x1) x [y0, y1),
        row by row; empty when the rectangle misses the image."""
        sx, sy = self.level_scale(level)
        nx, ny = self.tile_grid(level)
        t = self.tile_size
        c0, c1 = max(0, math.floor(x0 / sx / t)), min(nx - 1, math.ceil(x1 / sx / t) - 1)
        r0, r1 = max(0, math.floor(y0 / sy / t)), min(ny - 1, math.ceil(y1 / sy / t) - 1)
        return [(tx, ty) for ty in range(r0, r1 + 1) for tx in range(c0, c1 + 1)]

    def _check_level(self, level: int) -> None:
        if not 0 <= level < len(self._sizes):
            raise IndexError(f"level {level} out of range 0..{len(self._sizes) - 1}")

    def _check_tile(self, level: int, tx: int, ty: int) -> None:
        nx, ny = self.tile_grid(level)
        if not (0 <= tx < nx and 0 <= ty < ny):
            raise IndexError(f"tile ({tx}, {ty}) outside the {nx} x {ny} grid of level {level}")

    # --- cache state ----------------------------------------------------------------------
    def _tile_path(self, level: int, tx: int, ty: int) -> Path:
        return self.dir / str(level) / f"{ty}_{tx}.{self.tile_format}"

    def _load_manifest(self) -> None:
        try:
            data = json.loads((self.dir / "manifest.json").read_text("utf-8"))
        except (OSError, ValueError):
            return
        if (data.get("version") != _MANIFEST_VERSION
                or data.get("size") != [self.width, self.height]
                or data.get("levels") != self.levels):
            return  # stale or foreign: rebuild, overwriting tiles as we go
        self._complete = {int(v) for v in data.get("complete", []) if 0 <= v < self.levels}
        window = data.get("window")
        self._window = (float(window[0]), float(window[1])) if window else None

    def _mark_complete(self, levels: list[int]) -> None:
        self._complete.update(levels)
        manifest = {"version": _MANIFEST_VERSION, "size": [self.width, self.height],
                    "levels": self.levels, "complete": sorted(self._complete),
                    "window": list(self._window) if self._window else None,
                    "source": str(self.path)}
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.dir / "manifest.json", json.dumps(manifest).encode(), sync=True)

    @property
    def built_levels(self) -> set[int]:
        """Levels whose tiles are all on disk."""
        with self._lock:
            return set(self._complete)

    def is_built(self) -> bool:
        return len(self.built_levels) == self.levels

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += n

    # --- reading --------------------------------------------------------------------------
    def cached_tile(self, level: int, tx: int, ty: int) -> np.ndarray | None:
        """The tile if it is on disk (never blocks on a build), else None."""
        self._check_tile(level, tx, ty)
        img = _read_cached(self._tile_path(level, tx, ty))
        if img is None:
            if level in self._complete:
                with self._lock:
                    self._complete.discard(level)
            return None
        return _to_rgb(img)

    def tile(self, level: int, tx: int, ty: int) -> np.ndarray:
        """The tile as uint8 grey (HxW) or RGB (HxWx3), building the pyramid if needed."""
        tile = self.cached_tile(level, tx, ty)
        if tile is not None:
            return tile
        with self._lock:
            tile = self.cached_tile(level, tx, ty)
            if tile is None:
                if self._fast_level(level) > 0:
                    self._build_reduced(self._fast_level(level))
                else:
                    self.ensure_built()
                tile = self.cached_tile(level, tx, ty)
        if tile is None:
            raise ImageError(f"Tile {level}/{tx}/{ty} of '{self.path}' could not be written "
                             f"to '{self.dir}'. Check free disk space.", str(self.path))
        return tile

    def level_image(self, level: int) -> np.ndarray:
        """A whole level stitched from its tiles (meant for coarse levels)."""
        w, h = self.level_size(level)
        shape = (h, w) if self.channels == 1 else (h, w, 3)
        out = np.empty(shape, np.uint8)
        nx, ny = self.tile_grid(level)
        for ty in range(ny):
            for tx in range(nx):
                x, y, tw, th = self.tile_rect(level, tx, ty)
                out[y:y + th, x:x + tw] = self.tile(level, tx, ty)
        return out

    def overview_level(self, max_side: int = 2048) -> int:
        """Finest level whose longer side is at most ``max_side``."""
        for level, (w, h) in enumerate(self._sizes):
            if max(w, h) <= max_side:
                return level
        return self.levels - 1

    def overview(self, max_side: int = 2048) -> np.ndarray:
        """The image at ``overview_level(max_side)`` (exactly that level's size), fast."""
        level = self.overview_level(max_side)
        with self._lock:
            if level not in self._complete:
                if self._fast_level(level) > 0:
                    self._build_reduced(self._fast_level(level))
                else:
                    self._build_coarse(level)
            return self.level_image(level)

    def release(self) -> None:
        """Drop decoded levels kept in memory by ``overview`` for a later ``ensure_built``."""
        with self._lock:
            self._pending = None

    # --- building -------------------------------------------------------------------------
    def _fast_level(self, level: int) -> int:
        """Finest level <= ``level`` that JPEG reduced decode gives directly (scale 1/2,
        1/4, 1/8), or 0 when the source has no reduced decode."""
        if self.info.format != "jpeg" or self.info.dtype != "uint8":
            return 0
        return min(3, level)

    def _decode(self, reduce: int = 1) -> np.ndarray:
        img = load_image_bgr(self.path, max_pixels=PIXEL_BUDGET, reduce=reduce)
        self._count("decodes")
        if img.dtype != np.uint8 and self._window is None:
            colour = img[..., :3] if img.ndim == 3 and img.shape[2] == 4 else img
            self._window = display_range(colour)
        return _display(img, self._window)

    def _chain(self, first: int, img: np.ndarray, last: int) -> list[np.ndarray | None]:
        """Levels first..last from the image of level ``first`` (index = level)."""
        if (img.shape[1], img.shape[0]) != self._sizes[first]:
            img = _halve(img, self._sizes[first])
        levels: list[np.ndarray | None] = [None] * first + [img]
        for level in range(first + 1, last + 1):
            levels.append(_halve(levels[-1], self._sizes[level]))
        return levels

    def _build_reduced(self, first: int) -> None:
        """Levels >= first from a JPEG reduced decode (no full-resolution decode)."""
        img = self._decode(reduce=2 ** first)
        levels = self._chain(first, img, self.levels - 1)
        self._write_levels(levels, range(self.levels - 1, first - 1, -1), None, None)

    def _full_levels(self, needed: list[int]) -> tuple[list[np.ndarray | None], bool]:
        """Images of the needed levels: kept ones if they cover it, else decode (True)."""
        levels, self._pending = self._pending, None
        if levels is not None and all(levels[lv] is not None for lv in needed):
            return levels, False
        return self._chain(0, self._decode(), max(needed)), True

    def _build_coarse(self, down_to: int) -> None:
        """Full decode; write levels >= down_to now and keep the rest for ensure_built."""
        needed = [lv for lv in range(down_to, self.levels) if lv not in self._complete]
        if not needed:
            return
        levels, _ = self._full_levels(list(range(self.levels)))
        self._write_levels(levels, sorted(needed, reverse=True), None, None)
        keep = any(lv is not None for lv in levels[:down_to])
        self._pending = levels if keep else None

    def ensure_built(self, progress: Progress | None = None, stop: Stop | None = None) -> bool:
        """Write every missing tile, coarse levels first. Returns False if ``stop()`` said so.

        ``progress(fraction)`` is called from this thread; ``stop`` is polled between tiles.
        Peak memory is about 1.4x the uint8 image (a 20000 x 20000 RGB: about 1.7 GB)."""
        with self._lock:
            todo = [lv for lv in range(self.levels) if lv not in self._complete]
            if not todo:
                if progress:
                    progress(1.0)
                return True
            if stop and stop():
                return False
            levels, decoded = self._full_levels(todo)
            base = 0.3 if decoded else 0.05
            if progress:
                progress(base)
            return self._write_levels(levels, sorted(todo, reverse=True), progress, stop,
                                      base)

    def _write_levels(self, levels: list[np.ndarray | None], order: range | list[int],
                      progress: Progress | None, stop: Stop | None,
                      base: float = 0.0) -> bool:
        """Encode and write tiles of the given levels in parallel; mark each level done."""
        jobs = [(lv, tx, ty) for lv in order if lv not in self._complete
                for ty in range(self.tile_grid(lv)[1]) for tx in range(self.tile_grid(lv)[0])]
        per_level = {lv: sum(1 for j in jobs if j[0] == lv) for lv in order}
        done = {lv: 0 for lv in order}
        finished: list[int] = []
        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tiles") as pool:
            for start in range(0, len(jobs), 4 * workers):
                if stop and stop():
                    return False
                batch = jobs[start:start + 4 * workers]
                for job, _ in zip(batch, pool.map(lambda j: self._write_tile(levels, *j), batch),
                                  strict=True):
                    done[job[0]] += 1
                    if done[job[0]] == per_level[job[0]]:
                        finished.append(job[0])
                        levels[job[0]] = None  # written: free its memory
                if finished:
                    self._mark_complete(finished)
                    finished = []
                if progress:
                    progress(base + (1 - base) * (start + len(batch)) / len(jobs))
        return True

    def _write_tile(self, levels: list[np.ndarray | None], level: int, tx: int,
                    ty: int) -> None:
        path = self._tile_path(level, tx, ty)
        if path.exists():  # left by an earlier, cancelled build
            return
        img = levels[level]
        assert img is not None
        x, y, w, h = self.tile_rect(level, tx, ty)
        ext, params = (".jpg", _JPEG_PARAMS) if self.tile_format == "jpg" else (".png",
                                                                                 _PNG_PARAMS)
        ok, buf = cv2.imencode(ext, img[y:y + h, x:x + w], params)
        if not ok:
            raise ImageError(f"Could not encode tile {level}/{tx}/{ty} of '{self.path}'.",
                             str(self.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.tobytes(), sync=False)  # a rebuildable cache
        self._count("tiles_written")


def thumbnail(image_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str],
              size: int = 128, *, key: str | None = None) -> np.ndarray:
    """uint8 grey (HxW) or RGB (HxWx3) preview whose longer side is ``size`` (never
    enlarged), cached as ``<cache_dir>/thumbs/<key>-<size>.png``. JPEGs use reduced
    decode; 16-bit images are windowed by percentiles; alpha is dropped."""
    p = Path(image_path)
    info = image_info(p)
    out = Path(cache_dir) / "thumbs" / f"{key or source_key(p)}-{size}.png"
    cached = _read_cached(out) if out.exists() else None
    if cached is not None:
        return _to_rgb(cached)
    reduce = 1
    if info.format == "jpeg":
        reduce = next((r for r in (8, 4, 2) if max(info.width, info.height) >= r * size), 1)
    img = _display(load_image_bgr(p, max_pixels=PIXEL_BUDGET, reduce=reduce), None)
    h, w = img.shape[:2]
    if max(h, w) > size:
        scale = size / max(h, w)
        img = _halve(img, (max(1, round(w * scale)), max(1, round(h * scale))))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, cv2.imencode(".png", img)[1].tobytes(), sync=False)
    return _to_rgb(img)


# --- project-level helpers -------------------------------------------------------------------
TILED_PIXELS = 4096 * 4096  # images above this are viewed through their pyramid


def pyramid_key(sha256: str) -> str:
    """Cache name of an image's pyramid: its content hash, so renames keep the cache."""
    return sha256[:24]


def prebuild_pyramids(project, image_ids, stop=None) -> int:
    """Build ahead of viewing the pyramids of the images too big to show whole.

    A JPEG's overview comes fast from a reduced decode, but PNG and TIFF have none: their
    first view would wait for a full decode (about 18 s for 20000 x 20000 PNG). Building
    right after the images are added makes that first view paint at once. Returns how many
    pyramids were completed; `stop()` returning True cancels between tiles.
    """
    built = 0
    for image_id in image_ids:
        if stop is not None and stop():
            break
        rec = project.image(image_id)
        if rec.width * rec.height <= TILED_PIXELS:
            continue
        pyramid = TilePyramid(rec.abs_path, project.cache_dir, key=pyramid_key(rec.sha256))
        if pyramid.ensure_built(stop=stop):
            built += 1
    return built
