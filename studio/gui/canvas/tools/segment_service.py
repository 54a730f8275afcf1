"""Embeddings for the segment tool, prepared on the canvas's worker, never on the GUI
thread: as soon as an image opens (the newest image wins; the next one is prefetched),
kept in memory (LRU) and on disk in the project's cache by image hash and model, so
reopening an image costs nothing. Decoding a prompt runs on the same worker, the newest
prompt superseding older ones.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from studio.core.errors import StudioError
from studio.gui.segment_settings import SEGMENT
from studio.ml.segment import get_model_spec, image_for_embedding, load_model
from studio.ml.segment.cache import CACHE_FOLDER, EmbeddingCache, cache_key
from studio.ml.segment.weights import is_installed


def _embed(cache: EmbeddingCache, key: str, name: str, device: str, path, size) -> str:
    """Worker: the embedding from the cache, else computed and cached. Returns the key."""
    if cache.get(key) is None:
        model = load_model(name, device)
        img = image_for_embedding(path, *size)
        cache.put(key, model.embed(img, size))
    return key


def _model_installed(name: str) -> bool:
    """Worker: are the model's files there? (Imports osam on first use.)"""
    try:
        return is_installed(get_model_spec(name))
    except StudioError:
        return False


def _decode(name: str, device: str, embedding, points, labels, box):
    return load_model(name, device).decode(embedding, points, labels, box)


class SegmentService(QObject):
    """One canvas's embeddings: which image's is ready, which are on their way. A child of
    the canvas (its connection to the settings goes with it)."""

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.cache: EmbeddingCache | None = None
        self._cache_for: tuple | None = None
        self.current_key: str | None = None
        self.ready_callbacks: list[Callable[[str], None]] = []
        self.error_callbacks: list[Callable[[BaseException], None]] = []
        self.embed_calls = 0  # embeddings requested from the worker (cache misses or not)
        self.armed = False  # the tool was used: embed every image opened from now on
        self._prefetch: list[int] = []
        SEGMENT.changed.connect(self.reset)

    # --- configuration ---------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return SEGMENT.config.model

    def model_ready(self) -> bool:
        """The model's files are there (call once armed: osam is imported by then)."""
        return _model_installed(self.model_name)

    def check_model(self, on_result: Callable[[bool], None]) -> None:
        """Arm the service (embed every image opened from now on) once a worker has
        checked the model's files; then on_result(installed)."""
        def done(ready: bool) -> None:
            self.armed = True
            on_result(ready)

        self.canvas.workers.submit(_model_installed, self.model_name, key="segment-check",
                                   on_result=done, on_error=self._failed)

    def reset(self) -> None:
        """The model or cache settings changed: start again."""
        self._cache_for = None
        self.current_key = None
        if self.armed and not self.canvas.workers.is_shut_down:  # not after the canvas closed
            try:
                self.image_opened()
            except StudioError as exc:
                self._failed(exc)

    def _cache(self) -> EmbeddingCache:
        project = self.canvas.document.project
        c = SEGMENT.config
        want = (id(project), c.memory_items, c.disk_mb)
        if self.cache is None or self._cache_for != want:
            self.cache = EmbeddingCache(project.cache_dir / CACHE_FOLDER, c.memory_items,
                                        c.disk_mb)
            self._cache_for = want
        return self.cache

    def key_for(self, image_id: int) -> str | None:
        rec = self.canvas.document.project.image(image_id)
        return cache_key(self.model_name, rec.sha256 or f"id{image_id}-{rec.path}")

    # --- requests ------------------------------------------------------------------------
    def image_opened(self) -> None:
        """Ask for the shown image's embedding (a no-op until the tool was used)."""
        doc = self.canvas.document
        self.current_key = None
        if not self.armed or doc.image_id is None or doc.image_missing or not self.model_ready():
            return
        self.current_key = self.key_for(doc.image_id)
        self._request(doc.image_id, self.current_key, "segment-embed", self._arrived)

    def on_image_changed(self, _image_id: int) -> None:
        if not self.canvas.workers.is_shut_down:  # the document may outlive its canvas
            self.image_opened()

    def set_prefetch(self, image_ids: list[int]) -> None:
        """Images to embed once the shown one is ready (the next one, usually)."""
        self._prefetch = [int(i) for i in image_ids if i is not None]

    def _request(self, image_id: int, key: str, worker_key: str, done) -> None:
        cache = self._cache()
        if cache.peek(key) is not None:
            done(key)
            return
        rec = self.canvas.document.project.image(image_id)
        c = SEGMENT.config
        self.embed_calls += 1
        self.canvas.workers.submit(_embed, cache, key, c.model, c.device, rec.abs_path,
                                   (rec.width, rec.height), key=worker_key, on_result=done,
                                   on_error=self._failed)

    def _arrived(self, key: str) -> None:
        if key != self.current_key:
            return  # another image is shown now
        for cb in list(self.ready_callbacks):
            cb(key)
        for image_id in self._prefetch[:1]:
            try:
                nxt = self.key_for(image_id)
            except StudioError:
                continue
            if nxt != key:
                self._request(image_id, nxt, "segment-prefetch", lambda _k: None)

    def _failed(self, exc: BaseException) -> None:
        for cb in list(self.error_callbacks):
            cb(exc)

    def embedding(self):
        """The shown image's embedding when ready (memory only), else None."""
        if self.current_key is None or self.cache is None:
            return None
        return self.cache.peek(self.current_key)

    def decode(self, points, labels, box, on_result, on_error) -> None:
        emb = self.embedding()
        c = SEGMENT.config
        self.canvas.workers.submit(_decode, c.model, c.device, emb, points, labels, box,
                                   key="segment-decode", on_result=on_result,
                                   on_error=on_error)
