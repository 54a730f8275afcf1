"""What every importer and exporter shares: the report, safe paths, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import UnsafePathError


@dataclass
class ImportReport:
    """What an import did: counts, and every skipped item with its reason."""

    format: str
    images: int = 0
    duplicate_images: int = 0
    annotations_by_kind: Counter = field(default_factory=Counter)
    annotations_by_class: Counter = field(default_factory=Counter)
    classes_added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    warnings: list[str] = field(default_factory=list)  # e.g. boxes clipped to the image

    @property
    def annotations(self) -> int:
        return sum(self.annotations_by_kind.values())

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((str(item), reason))

    def count(self, kind: str, class_name: str, n: int = 1) -> None:
        self.annotations_by_kind[kind] += n
        self.annotations_by_class[class_name] += n

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "images": self.images,
            "duplicate_images": self.duplicate_images,
            "annotations": self.annotations,
            "annotations_by_kind": dict(self.annotations_by_kind),
            "annotations_by_class": dict(self.annotations_by_class),
            "classes_added": list(self.classes_added),
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.annotations_by_kind.items())) or "none"
        text = (f"Imported {self.images} images ({self.duplicate_images} already present), "
                f"{self.annotations} annotations ({kinds}).")
        if self.skipped:
            text += f" Skipped {len(self.skipped)}: " + "; ".join(
                f"{i}: {r}" for i, r in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
        return text


@dataclass
class ExportReport:
    format: str
    out_dir: Path
    images: int = 0
    annotations: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((str(item), reason))


def safe_join(base: Path, relative: str) -> Path:
    """`base / relative`, refusing any path that would leave `base` (.., absolute, links)."""
    if relative is None or str(relative).strip() == "":
        raise UnsafePathError("An empty file name in the annotation file.")
    rel = str(relative).replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise UnsafePathError(f"The path {relative!r} is absolute; only paths inside {base} are allowed.")
    base_resolved = Path(base).resolve()
    target = (base_resolved / rel).resolve()
    if target != base_resolved and base_resolved not in target.parents:
        raise UnsafePathError(f"The path {relative!r} points outside the dataset folder {base}.")
    return target


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old file or the whole new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False))
