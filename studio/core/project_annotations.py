"""Annotations ("objects") of a project: tags, boxes, polygons and masks.

Geometry in Python: tag -> None; box -> (x, y, w, h); polygon -> float (N, 2) array;
mask -> `MaskGeom` (cropped bitmap). In the database: JSON text, masks as COCO RLE.

Every geometry is clipped to its image on the way in (boxes, polygons and masks alike), so
no stored coordinate lies outside the image; the clipping is logged, and importers report
it. A geometry with nothing inside the image is refused (GeometryError).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from studio.core.errors import GeometryError, NotFoundError, ValidationError
from studio.core.geometry import (
    MaskGeom,
    as_polygon,
    clip_geometry,
    decode_mask_geom,
    encode_mask_geom,
    geometry_area,
    geometry_bbox,
)

_log = logging.getLogger(__name__)

KINDS = ("tag", "box", "polygon", "mask")


def _kind_split_filter(kind: str | None, split: str | None) -> tuple[str, list]:
    """The WHERE clause (or "") and its parameters for annotations `a` of `kind` on images
    `i` of `split`, either or both None for any."""
    where, params = [], []
    if kind is not None:
        where.append("a.kind = ?")
        params.append(kind)
    if split is not None:
        where.append("i.split = ?")
        params.append(split)
    return (" WHERE " + " AND ".join(where) if where else ""), params


@dataclass(eq=False)
class Annotation:
    id: int
    image_id: int
    class_id: int
    kind: str
    geometry: object
    source: str
    score: float | None
    bbox: tuple[float, float, float, float]
    area: float
    created_at: float
    updated_at: float
    attributes: dict = field(default_factory=dict)  # e.g. {"difficult": True}
    hidden: bool = False  # not drawn on the canvas (the person's choice)
    locked: bool = False  # not movable, editable or deletable until unlocked


def normalize_attributes(attributes) -> dict:
    """Attributes as a JSON-safe dict of str -> bool / int / float / str."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ValidationError(f"Object attributes must be a mapping of names to values, got "
                          f"{attributes!r}.")
    out = {}
    for key, value in attributes.items():
        if not isinstance(value, (bool, int, float, str)):
            raise ValidationError(f"Attribute {key!r} must be a yes/no, number or text, got "
                              f"{value!r}.")
        out[str(key)] = value
    return out


def normalize_geometry(kind: str, geometry):
    """Validate a geometry and bring it to its canonical Python form."""
    if kind not in KINDS:
        raise GeometryError(f"Unknown annotation kind {kind!r}; use one of {', '.join(KINDS)}.")
    if kind == "tag":
        return None
    if kind == "box":
        try:
            x, y, w, h = (float(v) for v in geometry)
        except (TypeError, ValueError) as exc:
            raise GeometryError(f"A box must be four numbers (x, y, w, h), got {geometry!r}.") from exc
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
            raise GeometryError(f"A box needs finite coordinates and a non-negative size, got "
                                f"{geometry!r}.")
        return (x, y, w, h)
    if kind == "polygon":
        try:
            pts = as_polygon(geometry)
        except ValueError as exc:
            raise GeometryError(f"Bad polygon: {exc}; give a list of (x, y) points.") from exc
        if len(pts) < 3:
            raise GeometryError(f"A polygon needs at least 3 points, got {len(pts)}.")
        if not np.isfinite(pts).all():
            raise GeometryError("A polygon's coordinates must be finite numbers.")
        return pts
    if isinstance(geometry, MaskGeom):
        return MaskGeom(int(geometry.x), int(geometry.y), np.asarray(geometry.bitmap, dtype=bool))
    arr = np.asarray(geometry)
    if arr.ndim != 2:
        raise GeometryError("A mask must be a MaskGeom or a 2-D array.")
    return MaskGeom.from_full(arr)


def encode_geometry(kind: str, geometry) -> str | None:
    if kind == "tag":
        return None
    if kind == "box":
        return json.dumps(list(geometry))
    if kind == "polygon":
        return json.dumps(np.round(geometry, 4).tolist())
    return json.dumps(encode_mask_geom(geometry))


def decode_geometry(kind: str, text: str | None):
    if kind == "tag":
        return None
    data = json.loads(text)
    if kind == "box":
        return tuple(float(v) for v in data)
    if kind == "polygon":
        return np.asarray(data, dtype=np.float64).reshape(-1, 2)
    return decode_mask_geom(data)


MODEL_SOURCE = "model:"  # source of the annotations a model made: "model:<run id>"


def model_made(ann) -> bool:
    """True for an annotation a model made (stored predictions, pre-labels)."""
    return str(ann.source or "").startswith(MODEL_SOURCE)


_COLS = ("id, image_id, class_id, kind, geometry, source, score, bbox_x, bbox_y, bbox_w, bbox_h,"
         " area, created_at, updated_at, attributes, hidden, locked")


def _from_row(r: tuple) -> Annotation:
    return Annotation(r[0], r[1], r[2], r[3], decode_geometry(r[3], r[4]), r[5], r[6],
                      (r[7], r[8], r[9], r[10]), r[11], r[12], r[13], json.loads(r[14] or "{}"),
                      bool(r[15]), bool(r[16]))


class AnnotationsMixin:
    """Annotation reads and writes for `Project`."""

    def _annotation_row(self, image_id, class_id, kind, geometry, source, score, now,
                        sizes: dict | None = None):
        geometry = normalize_geometry(kind, geometry)
        sizes = {} if sizes is None else sizes
        if image_id not in sizes:
            img = self.image(image_id)
            sizes[image_id] = (img.width, img.height)
        width, height = sizes[image_id]
        if kind != "tag":
            clipped, changed = clip_geometry(kind, geometry, width, height)
            if clipped is None:
                raise GeometryError(f"The {kind} lies outside its {width}x{height} image "
                                    f"{image_id}; draw it inside the image.")
            if changed:
                _log.info("a %s on image %s was clipped to the %sx%s image", kind, image_id,
                          width, height)
            geometry = clipped
        bbox = geometry_bbox(kind, geometry, (width, height))
        if kind == "mask":
            geometry = geometry.tight()
        return (int(image_id), int(class_id), kind, encode_geometry(kind, geometry), source or "manual",
                None if score is None else float(score), *bbox, geometry_area(kind, geometry), now, now)

    def add_annotation(self, image_id: int, class_id: int, kind: str, geometry=None,
                       source: str = "manual", score: float | None = None) -> int:
        return self.add_annotations([dict(image_id=image_id, class_id=class_id, kind=kind,
                                          geometry=geometry, source=source, score=score)])[0]

    def add_annotations(self, items: Iterable[dict]) -> list[int]:
        """Insert many annotations in one transaction; returns their ids in order."""
        now = time.time()
        ids = []
        sizes: dict[int, tuple[int, int]] = {}
        with self.transaction() as conn:
            for it in items:
                row = self._annotation_row(it["image_id"], it["class_id"], it["kind"],
                                           it.get("geometry"), it.get("source", "manual"),
                                           it.get("score"), now, sizes)
                extra = (json.dumps(normalize_attributes(it.get("attributes"))),
                         int(bool(it.get("hidden"))), int(bool(it.get("locked"))))
                try:
                    cur = conn.execute(
                        "INSERT INTO annotations(image_id, class_id, kind, geometry, source, score,"
                        " bbox_x, bbox_y, bbox_w, bbox_h, area, created_at, updated_at,"
                        " attributes, hidden, locked)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, *extra))
                except sqlite3.IntegrityError as exc:
                    raise NotFoundError(
                        f"Cannot add an annotation to image {it['image_id']} with class "
                        f"{it['class_id']}: no such image or class.") from exc
                ids.append(int(cur.lastrowid))
        return ids

    def annotation(self, annotation_id: int) -> Annotation:
        rows = self._query(f"SELECT {_COLS} FROM annotations WHERE id = ?", (annotation_id,))
        if not rows:
            raise NotFoundError(f"There is no annotation with id {annotation_id}.")
        return _from_row(rows[0])

    def annotations(self, image_id: int, kind: str | None = None) -> list[Annotation]:
        if kind is None:
            rows = self._query(f"SELECT {_COLS} FROM annotations WHERE image_id = ? ORDER BY id",
                               (image_id,))
        else:
            rows = self._query(f"SELECT {_COLS} FROM annotations WHERE image_id = ? AND kind = ?"
                               " ORDER BY id", (image_id, kind))
        return [_from_row(r) for r in rows]

    def class_ids_in_use(self, kinds: Iterable[str] = KINDS) -> set[int]:
        """Ids of the classes that annotations of these kinds use."""
        kinds = tuple(kinds)
        marks = ",".join("?" * len(kinds))
        return {r[0] for r in self._query(
            f"SELECT DISTINCT class_id FROM annotations WHERE kind IN ({marks})", kinds)}

    def image_classes(self, kind: str | None = None, split: str | None = None,
                      ground_truth: bool = False) -> list[tuple[int, int]]:
        """(image id, class id) of every annotation (of `kind`, on images of `split`), in
        annotation order, without decoding any geometry. `ground_truth`: leave out what a
        model made on images waiting for review (`pending_model_images`)."""
        where, params = _kind_split_filter(kind, split)
        if ground_truth:
            where += (" AND " if where else " WHERE ") + (
                f"NOT (i.status = 'review' AND a.source LIKE '{MODEL_SOURCE}%')")
        sql = ("SELECT a.image_id, a.class_id FROM annotations a JOIN images i ON i.id = a.image_id"
               + where + " ORDER BY a.id")
        return [(r[0], r[1]) for r in self._query(sql, params)]

    def pending_model_images(self, split: str | None = None) -> set[int]:
        """Images marked for review whose annotations a model made, every one (source
        'model:...'): pre-labels or stored predictions no person has confirmed yet, and
        nothing a person drew. They have no ground truth: training and evaluation leave
        them out until the image is marked otherwise.

        On any image marked for review the model's annotations wait and are no label
        (`model_made`, `image_classes(ground_truth=True)`), but what people drew on the same
        image still is: storing predictions never takes a person's labels out of
        training."""
        sql = ("SELECT DISTINCT a.image_id FROM annotations a JOIN images i ON i.id = "
               "a.image_id WHERE i.status = 'review' AND a.source LIKE 'model:%' AND NOT "
               "EXISTS (SELECT 1 FROM annotations h WHERE h.image_id = a.image_id AND "
               "h.source NOT LIKE 'model:%')")
        params: list = []
        if split is not None:
            sql += " AND i.split = ?"
            params.append(split)
        return {int(r[0]) for r in self._query(sql, params)}

    def waiting_for_review(self, split: str | None = None) -> set[int]:
        """Images marked for review holding any annotation a model made (those with
        annotations people drew too included)."""
        sql = ("SELECT DISTINCT a.image_id FROM annotations a JOIN images i ON i.id = "
               "a.image_id WHERE i.status = 'review' AND a.source LIKE 'model:%'")
        params: list = []
        if split is not None:
            sql += " AND i.split = ?"
            params.append(split)
        return {int(r[0]) for r in self._query(sql, params)}

    def source_counts(self, source: str) -> dict[int, int]:
        """Image id -> how many annotations of `source` it holds (e.g. one run's
        'model:RUN' pre-labels), for the images holding any, in one query."""
        rows = self._query("SELECT image_id, COUNT(*) FROM annotations WHERE source = ? "
                           "GROUP BY image_id ORDER BY image_id", (source,))
        return {int(r[0]): int(r[1]) for r in rows}

    def class_areas(self, kind: str | None = None, split: str | None = None
                    ) -> dict[int, float]:
        """Summed area in pixels of the annotations of each class (of `kind`, on images of
        `split`), from the stored areas: no geometry is decoded. Overlaps count twice."""
        where, params = _kind_split_filter(kind, split)
        sql = ("SELECT a.class_id, SUM(a.area) FROM annotations a JOIN images i ON i.id = "
               "a.image_id" + where + " GROUP BY a.class_id")
        return {int(r[0]): float(r[1] or 0.0) for r in self._query(sql, params)}

    def iter_annotations(self, kind: str | None = None, batch: int = 2000):
        """Every annotation of the project, in id order, without loading all at once."""
        last = 0
        while True:
            if kind is None:
                rows = self._query(f"SELECT {_COLS} FROM annotations WHERE id > ? ORDER BY id LIMIT ?",
                                   (last, batch))
            else:
                rows = self._query(f"SELECT {_COLS} FROM annotations WHERE id > ? AND kind = ?"
                                   " ORDER BY id LIMIT ?", (last, kind, batch))
            if not rows:
                return
            for r in rows:
                yield _from_row(r)
            last = rows[-1][0]

    def update_annotation(self, annotation_id: int, class_id: int | None = None, geometry=None,
                          score: float | None = None) -> None:
        """Change an annotation's class, geometry and/or score (one transaction)."""
        rows = self._query("SELECT image_id, class_id, kind, geometry, source, score FROM annotations"
                           " WHERE id = ?", (annotation_id,))
        if not rows:
            raise NotFoundError(f"There is no annotation with id {annotation_id}.")
        image_id, old_class, kind, old_geometry, source, old_score = rows[0]
        # Only decode the stored geometry when it is kept (decoding a big mask is not free).
        new_geometry = decode_geometry(kind, old_geometry) if geometry is None else geometry
        row = self._annotation_row(image_id, old_class if class_id is None else class_id, kind,
                                   new_geometry, source, old_score if score is None else score,
                                   time.time())
        try:
            self._write(
                "UPDATE annotations SET class_id = ?, geometry = ?, score = ?, bbox_x = ?, bbox_y = ?,"
                " bbox_w = ?, bbox_h = ?, area = ?, updated_at = ? WHERE id = ?",
                (row[1], row[3], row[5], *row[6:11], row[12], annotation_id))
        except sqlite3.IntegrityError as exc:
            raise NotFoundError(f"There is no class with id {class_id}.") from exc

    def delete_annotation(self, annotation_id: int) -> None:
        self.annotation(annotation_id)
        self._write("DELETE FROM annotations WHERE id = ?", (annotation_id,))

    def delete_annotations(self, annotation_ids: Iterable[int]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM annotations WHERE id = ?", [(i,) for i in annotation_ids])

    def replace_model_annotations(self, image_id: int, source: str,
                                  items: Iterable[dict]) -> list[int]:
        """Replace the image's annotations from `source` (e.g. ``model:<run>``) by `items`
        (as `add_annotations` takes them, each given this image and source) in one
        transaction, and mark the image for review when any were added, so that no
        model-made annotation counts as ground truth before a person has checked it.
        Returns the new annotation ids in order."""
        items = [dict(it, image_id=int(image_id), source=source) for it in items]
        with self.transaction() as conn:
            conn.execute("DELETE FROM annotations WHERE image_id = ? AND source = ?",
                         (int(image_id), source))
            ids = self.add_annotations(items)
            if ids:
                self.set_status(int(image_id), "review")
        return ids

    def restore_annotation(self, ann: Annotation) -> None:
        """Put back a deleted annotation with its original id (used by undo)."""
        row = self._annotation_row(ann.image_id, ann.class_id, ann.kind, ann.geometry, ann.source,
                                   ann.score, ann.updated_at)
        self._write(
            "INSERT INTO annotations(id, image_id, class_id, kind, geometry, source, score,"
            " bbox_x, bbox_y, bbox_w, bbox_h, area, created_at, updated_at, attributes, hidden,"
            " locked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ann.id, *row[:11], ann.created_at, ann.updated_at,
             json.dumps(normalize_attributes(ann.attributes)), int(ann.hidden), int(ann.locked)))

    def set_annotation_state(self, annotation_ids: Iterable[int], *, hidden: bool | None = None,
                             locked: bool | None = None) -> None:
        """Hide / show and lock / unlock objects (one transaction)."""
        sets, values = [], []
        for column, value in (("hidden", hidden), ("locked", locked)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(int(bool(value)))
        if not sets:
            return
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(f"UPDATE annotations SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                             [(*values, now, int(i)) for i in annotation_ids])

    def set_annotation_attributes(self, annotation_id: int, attributes: dict) -> None:
        """Replace an object's attributes."""
        self.annotation(annotation_id)
        self._write("UPDATE annotations SET attributes = ?, updated_at = ? WHERE id = ?",
                    (json.dumps(normalize_attributes(attributes)), time.time(), annotation_id))

    def image_note(self, image_id: int) -> str:
        rows = self._query("SELECT note FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFoundError(f"There is no image with id {image_id} in this project.")
        return str(rows[0][0])

    def set_image_note(self, image_id: int, note: str) -> None:
        """A free-text note about an image (what is odd about it, what is left to do)."""
        self.image_note(image_id)
        self._write("UPDATE images SET note = ? WHERE id = ?", (str(note), image_id))
