"""Decoded images ready before they are asked for: the neighbours of the current image.

A `Prefetcher` belongs to one window: the window prefetches the previous and next images
and the canvas asks it before decoding. Decoding runs on the window's worker mechanism
(studio.gui.workers.WorkerPool); a newer `prefetch` call cancels requests that have not
started yet, so only the latest neighbours are decoded. Memory is bounded by bytes,
oldest first out. `shutdown()` (the window's close) stops every decode.

    prefetcher.prefetch([next_path, previous_path])   # after showing an image
    array = prefetcher.load(path)       # the canvas: cached, in flight, or decoded now
    ready = prefetcher.get_display(path)  # 8-bit images: their 32-bit display pixels

The display pixels are made on the worker too (studio.gui.pixels, without holding the
GUI thread up), so showing a prefetched 8-bit image costs only QPixmap.fromImage.

Cancelling never runs a callback in the caller's thread (a `CancelToken` only sets a
flag), so no lock is ever taken twice: the cache's lock guards plain dict operations
and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from studio.core.images import load_image
from studio.gui.pixels import DisplayBuffer, display_buffer
from studio.gui.workers import CancelToken, Task, WorkerPool

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024 * 1024


def _key(path: str | Path) -> str:
    return str(Path(path))


def _nbytes(entry: tuple[np.ndarray, DisplayBuffer | None]) -> int:
    array, shown = entry
    return array.nbytes + (shown.nbytes if shown is not None else 0)


class _Request:
    """One decode in flight: its task, and an event set when it has ended either way."""

    def __init__(self) -> None:
        self.task: Task | None = None
        self.started = False
        self.ended = threading.Event()
        self.failed = False

    def wait(self) -> None:
        """Until the decode has ended; returns at once if it was dropped before it began."""
        while not self.ended.wait(0.05):
            if self.task is None or (self.task.token.cancelled and not self.started):
                return


class Prefetcher(QObject):
    """A byte-bounded cache of decoded images, filled in the background."""

    def __init__(self, workers: WorkerPool | None = None, max_bytes: int = MAX_BYTES,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers if workers is not None else WorkerPool(2, self, name="prefetch")
        self.max_bytes = int(max_bytes)
        self.stats = {"hits": 0, "waits": 0, "misses": 0, "decoded": 0}
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[np.ndarray, DisplayBuffer | None]] = OrderedDict()
        self._pending: dict[str, _Request] = {}

    # --- worker side --------------------------------------------------------------------------
    def _store(self, key: str, array: np.ndarray, shown: DisplayBuffer | None) -> None:
        with self._lock:
            self._cache[key] = (array, shown)
            self._cache.move_to_end(key)
            total = sum(_nbytes(e) for e in self._cache.values())
            while total > self.max_bytes and len(self._cache) > 1:
                _old, dropped = self._cache.popitem(last=False)
                total -= _nbytes(dropped)

    def _decode(self, key: str, with_display: bool = True) -> np.ndarray:
        array = load_image(key)
        array.setflags(write=False)  # shared between threads and views: nobody edits it
        self._store(key, array, display_buffer(array) if with_display else None)
        with self._lock:
            self.stats["decoded"] += 1
        return array

    def _run(self, token: CancelToken, key: str, request: _Request) -> None:
        request.started = True
        try:
            token.check()
            self._decode(key)
        except Exception:
            request.failed = True
            raise  # delivered to on_error on the GUI thread
        finally:
            with self._lock:
                if self._pending.get(key) is request:
                    del self._pending[key]
            request.ended.set()

    # --- GUI side -------------------------------------------------------------------------------
    def get_cached(self, path: str | Path) -> np.ndarray | None:
        """The decoded image if it is in the cache (never blocks, never decodes)."""
        key = _key(path)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            self._cache.move_to_end(key)
            return entry[0]

    def get_display(self, path: str | Path) -> DisplayBuffer | None:
        """Ready display pixels of the cached 8-bit image (None if not cached or not 8-bit);
        wrap them with studio.gui.pixels.qimage_view and keep them while shown."""
        with self._lock:
            entry = self._cache.get(_key(path))
            return entry[1] if entry is not None else None

    def prefetch(self, paths: list[str | Path | None]) -> None:
        """Decode these images in the background; requests not started yet are dropped."""
        keys = [_key(p) for p in paths if p is not None]
        with self._lock:
            for key in [k for k in self._pending if k not in keys]:
                request = self._pending.pop(key)
                if request.task is not None:
                    request.task.cancel()  # sets a flag; never calls back here
            todo = [k for k in keys if k not in self._cache and k not in self._pending]
            requests = {k: _Request() for k in todo}
            self._pending.update(requests)
        for key, request in requests.items():
            request.task = self.workers.submit(
                self._run, key, request, with_token=True,
                on_error=lambda exc, k=key: log.info("Prefetch of %s failed: %s", k, exc))

    def load(self, path: str | Path) -> np.ndarray:
        """The decoded image: from the cache, by waiting for its prefetch, or decoded now.

        Errors of the decode (ImageError subclasses) propagate to the caller.
        """
        key = _key(path)
        array = self.get_cached(key)
        if array is not None:
            self.stats["hits"] += 1
            return array
        with self._lock:
            request = self._pending.get(key)
        if request is not None:
            self.stats["waits"] += 1
            request.wait()
            array = self.get_cached(key)
            if array is not None:
                return array
        self.stats["misses"] += 1
        return self._decode(key, with_display=False)  # the caller makes its own display image

    def clear(self) -> None:
        """Forget every cached image and drop the requests not started (another project)."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            self._cache.clear()
        for request in pending:
            if request.task is not None:
                request.task.cancel()

    def wait_idle(self, msecs: int = 30000) -> bool:
        """Block until the decodes in flight are done (tests and benchmarks)."""
        return self.workers.wait(msecs)

    def shutdown(self, msecs: int = 5000) -> None:
        """Stop: drop what is queued, wait for the decodes running (the window's close)."""
        self.clear()
        self.workers.shutdown(msecs)
