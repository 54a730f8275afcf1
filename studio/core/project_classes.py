"""Classes of a project: name, colour, hotkey (0-9) and display order."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from studio.core.errors import NotFoundError, ValidationError

# A palette that stays distinguishable on grey microscopy and on colour photos.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
)


@dataclass(frozen=True)
class ClassRecord:
    id: int
    name: str
    color: str
    hotkey: int | None
    position: int


def _check_color(color: str) -> str:
    c = color.strip().lower()
    if len(c) != 7 or c[0] != "#" or any(ch not in "0123456789abcdef" for ch in c[1:]):
        raise ValidationError(f"Colour {color!r} is not of the form #rrggbb; give six hex digits, "
                              "e.g. #ff8800.")
    return c


def _check_name(name: str) -> str:
    n = (name or "").strip()
    if not n:
        raise ValidationError("A class needs a name; type one.")
    bad = sorted({ch for ch in n if unicodedata.category(ch) in ("Cc", "Cs")})
    if bad:  # NUL, tabs, line breaks...: no annotation format can carry them (XML cannot)
        shown = ", ".join(repr(ch) for ch in bad[:3])
        raise ValidationError(f"The class name {n!r} holds control characters ({shown}); "
                              "class names are one line of printable text. Rename it.")
    return n


class ClassesMixin:
    """Class management for `Project` (uses its _query/_write/transaction)."""

    def classes(self) -> list[ClassRecord]:
        rows = self._query("SELECT id, name, color, hotkey, position FROM classes ORDER BY position, id")
        return [ClassRecord(*r) for r in rows]

    def class_record(self, class_id: int) -> ClassRecord:
        rows = self._query("SELECT id, name, color, hotkey, position FROM classes WHERE id = ?",
                           (class_id,))
        if not rows:
            raise NotFoundError(f"There is no class with id {class_id} in this project.")
        return ClassRecord(*rows[0])

    def class_by_name(self, name: str) -> ClassRecord | None:
        rows = self._query("SELECT id, name, color, hotkey, position FROM classes WHERE name = ?",
                           (name,))
        return ClassRecord(*rows[0]) if rows else None

    def add_class(self, name: str, color: str | None = None, hotkey: int | None = None) -> int:
        name = _check_name(name)
        if self.class_by_name(name) is not None:
            raise ValidationError(f"A class named {name!r} already exists; choose another name.")
        with self.transaction() as conn:
            n = conn.execute("SELECT COUNT(*), COALESCE(MAX(position), -1) FROM classes").fetchone()
            color = _check_color(color) if color else PALETTE[n[0] % len(PALETTE)]
            if hotkey is None and n[0] < 9:
                free = {1, 2, 3, 4, 5, 6, 7, 8, 9} - {
                    r[0] for r in conn.execute("SELECT hotkey FROM classes WHERE hotkey IS NOT NULL")}
                hotkey = min(free) if free else None
            elif hotkey is not None:
                self._check_hotkey(hotkey, None)
                conn.execute("UPDATE classes SET hotkey = NULL WHERE hotkey = ?", (hotkey,))
            cur = conn.execute(
                "INSERT INTO classes(name, color, hotkey, position) VALUES (?, ?, ?, ?)",
                (name, color, hotkey, n[1] + 1))
            return int(cur.lastrowid)

    def get_or_add_class(self, name: str, color: str | None = None) -> int:
        existing = self.class_by_name(_check_name(name))
        return existing.id if existing else self.add_class(name, color)

    def rename_class(self, class_id: int, name: str) -> None:
        name = _check_name(name)
        self.class_record(class_id)
        other = self.class_by_name(name)
        if other is not None and other.id != class_id:
            raise ValidationError(f"A class named {name!r} already exists; choose another name.")
        self._write("UPDATE classes SET name = ? WHERE id = ?", (name, class_id))

    def set_class_color(self, class_id: int, color: str) -> None:
        self.class_record(class_id)
        self._write("UPDATE classes SET color = ? WHERE id = ?", (_check_color(color), class_id))

    def _check_hotkey(self, hotkey: int | None, class_id: int | None) -> None:
        if hotkey is None:
            return
        if not 0 <= int(hotkey) <= 9:
            raise ValidationError(f"Hotkey {hotkey} is not a digit; use 0-9.")

    def set_class_hotkey(self, class_id: int, hotkey: int | None) -> None:
        """Give a class a digit hotkey; a class that had that digit loses it."""
        self.class_record(class_id)
        self._check_hotkey(hotkey, class_id)
        with self.transaction() as conn:
            if hotkey is not None:
                conn.execute("UPDATE classes SET hotkey = NULL WHERE hotkey = ? AND id != ?",
                             (hotkey, class_id))
            conn.execute("UPDATE classes SET hotkey = ? WHERE id = ?", (hotkey, class_id))

    def reorder_classes(self, class_ids: Sequence[int]) -> None:
        """Set the display order; ids not listed keep their relative order after these."""
        ids = list(class_ids)
        rest = [c.id for c in self.classes() if c.id not in ids]
        with self.transaction() as conn:
            conn.executemany("UPDATE classes SET position = ? WHERE id = ?",
                             [(i, cid) for i, cid in enumerate(ids + rest)])

    def delete_class(self, class_id: int, move_to: int | None = None) -> int:
        """Delete a class. Its annotations are moved to `move_to`, or deleted when None.

        Returns how many annotations were moved or deleted.
        """
        self.class_record(class_id)
        if move_to is not None:
            if move_to == class_id:
                raise ValidationError("Cannot move a class's annotations onto itself; choose another "
                                      "class.")
            self.class_record(move_to)
        with self.transaction() as conn:
            if move_to is None:
                n = conn.execute("DELETE FROM annotations WHERE class_id = ?", (class_id,)).rowcount
            else:
                n = conn.execute("UPDATE annotations SET class_id = ? WHERE class_id = ?",
                                 (move_to, class_id)).rowcount
            try:
                conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
            except sqlite3.IntegrityError as exc:  # pragma: no cover - guarded above
                raise ValueError(f"class {class_id} is still in use: {exc}") from exc
            return int(n)
