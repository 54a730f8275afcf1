"""Review queues: which images most need a person's eye.

* ``label-errors``: labelled images ranked by how strongly a held-out prediction
  (:mod:`studio.ml.crossval`) disagrees with their label. Classification: score =
  1 - p(given label), with the class the model proposes (its argmax) and the normalised
  margin (p(given) - max other + 1) / 2. Segmentation: score = 1 - Dice between the
  predicted and the given label map (mean over the classes present in either, pixels
  without a label left out), with the share of labelled pixels whose given class gets
  probability below 0.1 and the class the model puts most often where it disagrees.
* ``next-to-label``: unlabelled images ranked by the run's uncertainty. Classification:
  entropy of the class probabilities over log(C) (0..1), margin beside it. Segmentation:
  mean pixel entropy over log(C), and beside it the worst 16 x 16 grid cell's mean (an
  image uncertain in one region).

Higher score = look at it first. Scores are recomputed on demand; they belong to the run
(and its folds) that made them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from studio.core.errors import ConfigError
from studio.core.splits import SPLITS
from studio.ml.crossval import HeldOutCost, held_out_predictions
from studio.ml.datasets import decode, read_split
from studio.ml.predict import Predictor
from studio.ml.tasks import IGNORE_INDEX, task_kinds, task_of
from studio.ml.tasks.semantic.metrics import pixel_metrics_from_confusion

QUEUES = ("label-errors", "next-to-label")


@dataclass
class QueueEntry:
    image_id: int
    file: str
    score: float
    proposed: str | None = None  # the class the model proposes (label errors)
    given: str | None = None  # the class the image is labelled with (classification)
    source: str = "run"  # which model predicted it: "run" or "fold k/K"
    details: dict = field(default_factory=dict)


@dataclass
class ReviewQueue:
    queue: str
    run_id: int
    split: str | None
    entries: list[QueueEntry]
    cost: HeldOutCost | None = None

    def to_dict(self) -> dict:
        out = {"queue": self.queue, "run": self.run_id, "split": self.split,
               "entries": [asdict(e) for e in self.entries]}
        if self.cost is not None:
            out["cost"] = {**asdict(self.cost), "summary": self.cost.describe()}
        return out


def run_classes(project, run_id: int) -> tuple[str, list[int], list[str]]:
    from studio.ml.checkpoints import load_checkpoint, run_checkpoint

    ckpt = load_checkpoint(run_checkpoint(project, run_id, "best"))
    return ckpt["config"]["task"], list(ckpt["class_ids"]), list(ckpt["class_names"])


def _splits(split: str | None) -> Sequence[str]:
    if split is None:
        return SPLITS
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return (split,)


# --- scores ----------------------------------------------------------------------------------
def classification_error(probs: np.ndarray, given: int) -> tuple[float, int, float]:
    """(1 - p(given), proposed class index, normalised margin)."""
    p = np.asarray(probs, np.float64)
    others = np.delete(p, given)
    margin = (p[given] - (others.max() if others.size else 0.0) + 1) / 2
    return float(1 - p[given]), int(p.argmax()), float(margin)


def segmentation_error(probs: np.ndarray, target: np.ndarray) -> tuple[float, int | None, float]:
    """(1 - mean Dice, class most predicted where prediction and label differ, share of
    labelled pixels whose given class has probability < 0.1)."""
    c = probs.shape[0]
    pred = probs.argmax(0)
    valid = target != IGNORE_INDEX
    t, p = target[valid].astype(np.int64), pred[valid].astype(np.int64)
    if t.size == 0:
        return 0.0, None, 0.0
    cm = np.bincount(t * c + p, minlength=c * c).reshape(c, c)
    dice = pixel_metrics_from_confusion(cm)["mean_dice"]
    wrong = p != t
    proposed = int(np.bincount(p[wrong], minlength=c).argmax()) if wrong.any() else None
    given_p = np.take_along_axis(probs[:, valid], t[None], 0)[0]
    return 1 - dice, proposed, float((given_p < 0.1).mean())


def entropy_scores(probs: np.ndarray) -> tuple[float, float, float]:
    """(normalised mean entropy, worst 16x16-cell mean entropy, mean margin) of
    probabilities (C,) or (C, H, W)."""
    p = np.clip(np.asarray(probs, np.float32), 1e-8, 1.0)
    c = p.shape[0]
    ent = -(p * np.log(p)).sum(0) / math.log(c) if c > 1 else np.zeros(p.shape[1:])
    top2 = -np.partition(-p, 1, axis=0)[:2] if c > 1 else np.stack([p[0], np.zeros_like(p[0])])
    margin = float(np.mean(top2[0] - top2[1]))
    if p.ndim == 1:
        return float(ent), float(ent), margin
    cells = cv2.resize(ent.astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA)
    return float(ent.mean()), float(cells.max()), margin


# --- queues ----------------------------------------------------------------------------------
def label_error_queue(project, run_id: int, split: str | None = None, folds: int = 5,
                      epochs: int | None = None, device: str = "auto", which: str = "best",
                      callbacks=None, stop=None) -> ReviewQueue:
    """Labelled images of `split` (all splits by default), most suspicious first."""
    task, class_ids, names = run_classes(project, run_id)
    images, sources = [], {}
    for s in _splits(split):
        src = read_split(project, task, s, class_ids)
        sources.update({sample.image_id: (src, sample) for sample in src.samples})
        images += [(sm.image_id, sm.path, sm.label) for sm in src.samples]
    if not images:
        raise ConfigError(f"No labelled images{f' in the {split!r} split' if split else ''} "
                          "to look for label errors in.")
    entries: list[QueueEntry] = []

    def consume(image_id: int, probs: np.ndarray, source: str) -> None:
        src, sample = sources[image_id]
        if task_of(task).image_label:
            score, proposed, margin = classification_error(probs, sample.label)
            entries.append(QueueEntry(image_id, sample.path, score, names[proposed],
                                      names[sample.label], source,
                                      {"p_given": float(probs[sample.label]),
                                       "normalized_margin": margin}))
        else:
            score, proposed, low = segmentation_error(probs, src.label_map(image_id))
            entries.append(QueueEntry(image_id, sample.path, score,
                                      None if proposed is None else names[proposed], None,
                                      source, {"dice": 1 - score, "low_confidence_pixels": low}))

    cost = held_out_predictions(project, run_id, images, consume, folds, epochs, device,
                                which, callbacks, stop)
    entries.sort(key=lambda e: (-e.score, e.image_id))
    return ReviewQueue("label-errors", run_id, split, entries, cost)


def unlabelled_images(project, task: str, class_ids: Sequence[int], split: str | None
                      ) -> list:
    """Image records of `split` (all by default) without a label for `task` that training
    would use: no annotation of the task's kinds and the run's classes, or only some on an
    image still waiting for review with a model's annotations (see
    `Project.pending_model_images`). A few queries per split, none per image."""
    kinds, wanted = task_kinds(task), set(class_ids)
    out = []
    for s in _splits(split):
        labelled = {i for kind in kinds for i, c in project.image_classes(kind=kind, split=s)
                    if c in wanted}
        labelled -= project.pending_model_images(s)
        out += [rec for rec in project.images(split=s) if rec.id not in labelled]
    return out


def next_to_label_queue(project, run_id: int, split: str | None = None, device: str = "auto",
                        which: str = "best") -> ReviewQueue:
    """Unlabelled images of `split` (all by default), most uncertain first."""
    predictor = Predictor.from_run(project, run_id, which, device)  # one checkpoint read
    task = predictor.meta["task"]
    records = unlabelled_images(project, task, predictor.meta["class_ids"], split)
    entries = []
    for rec in records:
        probs = predictor.predict_array(decode(rec.abs_path, predictor.meta["channels"]),
                                        str(rec.abs_path), rec.id).probabilities
        mean_ent, worst, margin = entropy_scores(probs)
        details = {"margin": margin}
        if not task_of(task).image_label:
            details["max_cell_entropy"] = worst
        entries.append(QueueEntry(rec.id, str(rec.abs_path), mean_ent, details=details))
    entries.sort(key=lambda e: (-e.score, e.image_id))
    return ReviewQueue("next-to-label", run_id, split, entries)
