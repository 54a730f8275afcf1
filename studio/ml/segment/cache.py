"""Embeddings kept for reuse: in memory (least recently used first out) and on disk in
the project's cache, keyed by the image's content hash and the model, so reopening an
image costs a file read instead of a forward pass of the encoder.

Thread-safe: the canvas worker fills it while the GUI thread may ask whether a key is
ready. Disk files are written atomically (without fsync: the cache can be rebuilt) and
the folder is trimmed to its size limit, oldest files first.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from studio.core.fileio import atomic_write_bytes
from studio.ml.segment.engine import Embedding

CACHE_FOLDER = "segment"  # inside the project's cache folder


def cache_key(model: str, sha256: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', model)}-{sha256[:32]}"


class EmbeddingCache:
    """Memory LRU of `memory_items` embeddings over an optional disk folder of at most
    `disk_mb` megabytes (0: no disk cache)."""

    def __init__(self, folder: str | Path | None = None, memory_items: int = 8,
                 disk_mb: int = 1024) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.memory_items = max(1, int(memory_items))
        self.disk_mb = max(0, int(disk_mb))
        self._memory: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()
        self.disk_reads = self.disk_writes = 0

    def path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.npz"

    def peek(self, key: str) -> Embedding | None:
        """The embedding if it is in memory (never reads the disk: safe on any thread)."""
        with self._lock:
            return self._memory.get(key)

    def in_memory(self, key: str) -> bool:
        with self._lock:
            return key in self._memory

    def get(self, key: str) -> Embedding | None:
        """The embedding from memory, else from disk (then kept in memory); None if absent."""
        with self._lock:
            emb = self._memory.get(key)
            if emb is not None:
                self._memory.move_to_end(key)
                return emb
        emb = self._read(key)
        if emb is not None:
            self._remember(key, emb)
        return emb

    def put(self, key: str, emb: Embedding, persist: bool = True) -> None:
        self._remember(key, emb)
        if persist and self.folder is not None and self.disk_mb > 0:
            self._write(key, emb)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def _remember(self, key: str, emb: Embedding) -> None:
        with self._lock:
            self._memory[key] = emb
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    # --- disk -----------------------------------------------------------------------------
    def _read(self, key: str) -> Embedding | None:
        from osam.types import ImageEmbedding

        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = z["meta"].tolist()
                extra = [z[f"extra{i}"] for i in range(int(meta[6]))]
                data = ImageEmbedding(original_height=int(meta[5]), original_width=int(meta[4]),
                                      embedding=z["embedding"], extra_features=extra)
                model = str(z["model"])
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache file is rebuilt
            return None
        self.disk_reads += 1
        path.touch()  # recently used: trimmed last
        return Embedding(model, int(meta[0]), int(meta[1]), (int(meta[2]), int(meta[3])), data)

    def _write(self, key: str, emb: Embedding) -> None:
        d = emb.data
        arrays = {f"extra{i}": a for i, a in enumerate(d.extra_features)}
        meta = np.array([emb.width, emb.height, *emb.embedded_size, d.original_width,
                         d.original_height, len(d.extra_features)], dtype=np.int64)
        buf = io.BytesIO()
        np.savez(buf, embedding=d.embedding, meta=meta, model=np.array(emb.model), **arrays)
        try:
            atomic_write_bytes(self.path(key), buf.getvalue(), sync=False)
        except OSError:
            return  # a full disk costs only the cache
        self.disk_writes += 1
        self._trim()

    def _trim(self) -> None:
        stats = []
        for p in self.folder.glob("*.npz"):
            try:
                st = p.stat()
            except OSError:  # removed meanwhile
                continue
            stats.append((st.st_mtime, st.st_size, p))
        stats.sort()
        total = sum(s for _t, s, _p in stats)
        limit = self.disk_mb * 1_000_000
        for _t, size, p in stats:
            if total <= limit:
                break
            total -= size
            p.unlink(missing_ok=True)
