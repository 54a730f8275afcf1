"""Boxes to masks: every box of the chosen images becomes a mask object made by a
promptable model, as one reversible job.

Each new mask has the source `model:<model name>`, the attribute `from_box` (the box's id,
so a second run skips boxes already done) and lies inside its box (the model's mask is cut
to the box); each image that got masks is marked for review, so no model-made mask counts
as ground truth before a person has looked at it. The boxes stay. Each image is written in
one transaction; the job's record (the masks added, the statuses changed) is saved in the
project, and `revert_job` takes the whole job back in one transaction. Cancelling stops
between images: what was done so far is kept, recorded and revertible like a whole job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core.errors import NotFoundError, StudioError
from studio.core.fileio import atomic_write_json
from studio.core.geometry import MaskGeom
from studio.core.project_annotations import MODEL_SOURCE
from studio.ml.segment.cache import EmbeddingCache, cache_key
from studio.ml.segment.engine import PromptModel, image_for_embedding

JOBS_FOLDER = "segment_jobs"  # in the project folder: job records for revert


@dataclass
class SegmentJob:
    """What a boxes-to-masks job did (enough to take it back)."""

    model: str
    source: str
    added: dict[int, list[int]] = field(default_factory=dict)  # image id -> new mask ids
    old_status: dict[int, str] = field(default_factory=dict)  # images whose status changed
    boxes: int = 0  # boxes seen
    skipped: int = 0  # boxes already done earlier, or whose mask came out empty
    images_done: int = 0
    images_total: int = 0
    cancelled: bool = False
    path: str | None = None  # where the record was saved

    @property
    def masks(self) -> int:
        return sum(len(v) for v in self.added.values())

    def to_json(self) -> dict:
        return dict(model=self.model, source=self.source, boxes=self.boxes,
                    skipped=self.skipped, images_done=self.images_done,
                    images_total=self.images_total, cancelled=self.cancelled,
                    added={str(k): v for k, v in self.added.items()},
                    old_status={str(k): v for k, v in self.old_status.items()})

    @classmethod
    def from_json(cls, data: dict, path: str | None = None) -> SegmentJob:
        return cls(model=data["model"], source=data["source"], boxes=data.get("boxes", 0),
                   skipped=data.get("skipped", 0), images_done=data.get("images_done", 0),
                   images_total=data.get("images_total", 0),
                   cancelled=bool(data.get("cancelled")),
                   added={int(k): [int(i) for i in v] for k, v in data["added"].items()},
                   old_status={int(k): str(v) for k, v in data["old_status"].items()},
                   path=path)


def source_for(model: str) -> str:
    return f"{MODEL_SOURCE}{model}"


def images_with_boxes(project) -> list[int]:
    return sorted({int(a.image_id) for a in project.iter_annotations(kind="box")})


def box_mask(model: PromptModel, embedding, box: Sequence[float]) -> MaskGeom | None:
    """The model's mask for a box (x, y, w, h), cut to the box's pixels."""
    x, y, w, h = (float(v) for v in box)
    geom = model.decode(embedding, None, None, box=(x, y, x + w, y + h))
    if geom is None:
        return None
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = int(np.ceil(x + w)), int(np.ceil(y + h))
    full_h, full_w = y1 - y0, x1 - x0
    if full_w <= 0 or full_h <= 0:
        return None
    cut = MaskGeom(geom.x - x0, geom.y - y0, geom.bitmap).to_full(full_h, full_w)
    if not cut.any():
        return None
    return MaskGeom(x0, y0, cut).tight()


def boxes_to_masks(project, model: PromptModel, image_ids: Sequence[int] | None = None, *,
                   cache: EmbeddingCache | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> SegmentJob:
    """Run the job over `image_ids` (default: every image with a box); see the module doc.
    progress(done, total) after each image; cancelled() is checked between images."""
    ids = images_with_boxes(project) if image_ids is None else [int(i) for i in image_ids]
    job = SegmentJob(model=model.name, source=source_for(model.name), images_total=len(ids))
    try:
        for n, image_id in enumerate(ids):
            if cancelled is not None and cancelled():
                job.cancelled = True
                break
            _one_image(project, model, image_id, job, cache)
            job.images_done = n + 1
            if progress is not None:
                progress(n + 1, len(ids))
    finally:
        if job.added or job.old_status:
            save_job(project, job)
    return job


def _one_image(project, model: PromptModel, image_id: int, job: SegmentJob,
               cache: EmbeddingCache | None) -> None:
    anns = project.annotations(image_id)
    boxes = [a for a in anns if a.kind == "box"]
    if not boxes:
        return
    done = {a.attributes.get("from_box") for a in anns
            if a.kind == "mask" and a.source == job.source}
    todo = [b for b in boxes if b.id not in done]
    job.boxes += len(boxes)
    job.skipped += len(boxes) - len(todo)
    if not todo:
        return
    rec = project.image(image_id)
    key = cache_key(model.name, rec.sha256) if rec.sha256 else None
    emb = cache.get(key) if cache is not None and key else None
    if emb is None:
        img = image_for_embedding(rec.abs_path, rec.width, rec.height)
        emb = model.embed(img, (rec.width, rec.height))
        if cache is not None and key:
            cache.put(key, emb, persist=False)  # a batch would flood the disk cache
    items = []
    for b in todo:
        geom = box_mask(model, emb, b.geometry)
        if geom is None:
            job.skipped += 1
            continue
        items.append(dict(image_id=image_id, class_id=b.class_id, kind="mask", geometry=geom,
                          source=job.source, attributes={"from_box": b.id}))
    if not items:
        return
    with project.transaction():
        new_ids = project.add_annotations(items)
        if rec.status != "review":
            project.set_status(image_id, "review")
    job.added[image_id] = new_ids
    if rec.status != "review":
        job.old_status[image_id] = rec.status


def save_job(project, job: SegmentJob) -> Path:
    folder = Path(project.root) / JOBS_FOLDER
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.json"
    atomic_write_json(path, job.to_json())
    job.path = str(path)
    return path


def last_job(project) -> SegmentJob:
    folder = Path(project.root) / JOBS_FOLDER
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise NotFoundError("No boxes-to-masks job to revert in this project.")
    try:
        return SegmentJob.from_json(json.loads(files[-1].read_text("utf-8")), str(files[-1]))
    except (OSError, ValueError, KeyError) as exc:
        raise StudioError(f"The job record {files[-1].name} is unreadable ({exc}); remove it "
                          "to revert an earlier job.") from exc


def revert_job(project, job: SegmentJob) -> int:
    """Take a job back in one transaction: its masks (those still there) are deleted and
    the statuses it changed restored (where still "review"). Returns masks removed; the
    job's record is removed."""
    ids = [i for v in job.added.values() for i in v]
    removed = 0
    with project.transaction():
        for i in ids:
            try:
                ann = project.annotation(i)
            except NotFoundError:
                continue
            if ann.source == job.source:
                project.delete_annotation(i)
                removed += 1
        for image_id, status in job.old_status.items():
            try:
                if project.image(image_id).status == "review":
                    project.set_status(image_id, status)
            except NotFoundError:
                continue
    if job.path:
        Path(job.path).unlink(missing_ok=True)
    return removed
