"""Decoded images ready before they are asked for: the neighbours of the current image.

A module-level cache shared by the window (which prefetches the previous and next images)
and the canvas (which asks the cache before decoding). Decoding runs on two background
threads; a newer `prefetch` call cancels requests that have not started yet, so only the
latest neighbours are decoded. Memory is bounded by bytes, oldest first out.

    prefetch([next_path, previous_path])   # after showing an image
    array = load(path)                      # the canvas: cached, in flight, or decoded now
    qimage = get_qimage(path)               # 8-bit images: a ready QImage of `array`

The QImage is made on the worker thread too (QImage, unlike QPixmap, may be built off
the GUI thread), so showing a prefetched 8-bit image costs only QPixmap.fromImage.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from studio.core.images import load_image

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024 * 1024
_lock = threading.Lock()
_cache: OrderedDict[str, tuple[np.ndarray, QImage | None]] = OrderedDict()
_pending: dict[str, Future] = {}
_executor: ThreadPoolExecutor | None = None
stats = {"hits": 0, "waits": 0, "misses": 0, "decoded": 0}


def _key(path: str | Path) -> str:
    return str(Path(path))


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prefetch")
    return _executor


def _nbytes(entry: tuple[np.ndarray, QImage | None]) -> int:
    array, image = entry
    return array.nbytes + (image.sizeInBytes() if image is not None else 0)


def _store(key: str, array: np.ndarray, image: QImage | None) -> None:
    with _lock:
        _cache[key] = (array, image)
        _cache.move_to_end(key)
        total = sum(_nbytes(e) for e in _cache.values())
        while total > MAX_BYTES and len(_cache) > 1:
            _old, dropped = _cache.popitem(last=False)
            total -= _nbytes(dropped)


def _qimage(array: np.ndarray) -> QImage | None:
    """A QImage owning a copy of an 8-bit grey/RGB/RGBA array; None for other arrays."""
    if array.dtype != np.uint8:
        return None
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    fmt = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888,
           4: QImage.Format.Format_RGBA8888}.get(channels)
    if fmt is None or not array.flags.c_contiguous:
        return None
    return QImage(array.data, w, h, array.strides[0], fmt).copy()


def _decode(key: str, with_qimage: bool = True) -> np.ndarray:
    array = load_image(key)
    array.setflags(write=False)  # shared between threads and views: nobody edits it
    _store(key, array, _qimage(array) if with_qimage else None)
    stats["decoded"] += 1
    return array


def _done(key: str, future: Future) -> None:
    with _lock:
        if _pending.get(key) is future:
            del _pending[key]
    if not future.cancelled() and future.exception() is not None:
        # Not lost: the canvas decodes the file itself when it is shown and reports it.
        log.info("Prefetch of %s failed: %s", key, future.exception())


def get_cached(path: str | Path) -> np.ndarray | None:
    """The decoded image if it is in the cache (never blocks, never decodes)."""
    key = _key(path)
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        _cache.move_to_end(key)
        return entry[0]


def get_qimage(path: str | Path) -> QImage | None:
    """A ready QImage of the cached 8-bit image (None if not cached or not 8-bit)."""
    with _lock:
        entry = _cache.get(_key(path))
        return entry[1] if entry is not None else None


def prefetch(paths: list[str | Path]) -> None:
    """Decode these images in the background; requests not started yet are dropped."""
    keys = [_key(p) for p in paths if p is not None]
    with _lock:
        for key, future in list(_pending.items()):
            if key not in keys and future.cancel():
                del _pending[key]
        todo = [k for k in keys if k not in _cache and k not in _pending]
        for key in todo:
            future = _pool().submit(_decode, key)
            _pending[key] = future
            future.add_done_callback(lambda f, k=key: _done(k, f))


def load(path: str | Path) -> np.ndarray:
    """The decoded image: from the cache, by waiting for its prefetch, or decoded now.

    Errors of the decode (ImageError subclasses) propagate to the caller.
    """
    key = _key(path)
    array = get_cached(key)
    if array is not None:
        stats["hits"] += 1
        return array
    with _lock:
        future = _pending.get(key)
    if future is not None and not future.cancelled():
        stats["waits"] += 1
        try:
            return future.result()
        except Exception:  # decode again here so the caller gets the error itself
            log.debug("Prefetch failed for %s; decoding on request", key)
    stats["misses"] += 1
    return _decode(key, with_qimage=False)  # the caller makes its own display image


def clear() -> None:
    """Forget every cached image (e.g. when another project is opened)."""
    with _lock:
        for future in _pending.values():
            future.cancel()
        _pending.clear()
        _cache.clear()


def wait_idle(timeout: float = 30.0) -> None:
    """Block until the pending prefetches are done (tests and benchmarks)."""
    with _lock:
        futures = list(_pending.values())
    for future in futures:
        try:
            future.result(timeout=timeout)
        except Exception as exc:  # reported again by load() when the image is shown
            log.info("Prefetch failed: %s", exc)
