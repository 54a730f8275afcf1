"""Held-out predictions for every labelled image of a run's project.

A model has memorised the labels it was trained on, possibly wrong ones, so label-error
scores need predictions from a model that never saw the image. Images outside the run's
training split (its validation and test images, or excluded ones) are predicted by the
run's own model. Images it trained on are split into K folds (stratified by class for
classification, fixed seed); for each fold a model is trained with the run's config on
the training split minus that fold (one `fit`, the same code path as any training) and
predicts only the fold. That costs K trainings; :class:`HeldOutCost` reports it. Fold
runs are removed from the project once their predictions are taken.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from studio.core.errors import ConfigError, TrainingError
from studio.ml.datasets import decode
from studio.ml.loop import stop_requested
from studio.ml.predict import Predictor
from studio.ml.tasks import task_of

# consume(image_id, probabilities, source): classification (C,), semantic (C, H, W)
Consumer = Callable[[int, np.ndarray, str], None]


@dataclass
class HeldOutCost:
    """What the held-out predictions cost."""

    by_run: int = 0  # images the run's own model predicted (it never trained on them)
    by_folds: int = 0  # images predicted by cross-validation fold models
    folds: int = 0  # fold models trained
    epochs: int = 0  # epochs per fold model
    seconds: float = 0.0  # training and predicting, in all
    fold_seconds: list[float] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.by_run} image(s) predicted by the run's own model"
        if self.folds:
            text += (f"; {self.by_folds} training image(s) by {self.folds} cross-validation "
                     f"fold model(s) of {self.epochs} epoch(s) each, trained in "
                     f"{sum(self.fold_seconds):.1f} s")
        return text + f"; {self.seconds:.1f} s in all"


def assign_folds(image_ids: Sequence[int], labels: Sequence[int] | None, folds: int,
                 seed: int = 0) -> list[list[int]]:
    """Split images into `folds` groups; with labels, each class is spread evenly."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(list(image_ids))
    order = rng.permutation(len(ids))
    if labels is not None:
        lab = np.asarray(list(labels))[order]
        order = order[np.argsort(lab, kind="stable")]
    groups: list[list[int]] = [[] for _ in range(folds)]
    for k, i in enumerate(order):
        groups[k % folds].append(int(ids[i]))
    return [sorted(g) for g in groups if g]


def held_out_predictions(project, run_id: int, images: Sequence[tuple[int, str, int]],
                         consume: Consumer, folds: int = 5, epochs: int | None = None,
                         device: str = "auto", which: str = "best", callbacks=None,
                         stop=None) -> HeldOutCost:
    """Call ``consume`` once per image with a held-out prediction.

    ``images``: (image id, file path, label index or -1) of labelled images. ``epochs``
    overrides the run's epoch count for fold models (cheaper, less faithful); ``stop`` is
    passed on to `fit`.
    """
    from studio.ml.config import validate_config
    from studio.ml.fit import fit

    t0 = time.perf_counter()
    cfg = validate_config(project.run(run_id).config)
    trained_on = set(project.image_ids(split=cfg.data.train_split)) - set(cfg.data.exclude)
    cost = HeldOutCost()
    outside = [im for im in images if im[0] not in trained_on]
    inside = [im for im in images if im[0] in trained_on]
    if outside:
        _predict(Predictor.from_run(project, run_id, which, device), outside, "run", consume)
        cost.by_run = len(outside)
    if inside:
        k = min(int(folds), len(inside))
        if k < 2:
            raise ConfigError(f"{len(inside)} labelled training image(s) need held-out "
                              "predictions, but cross-validation needs at least 2 folds of "
                              "one image; use --folds 2 or more.")
        labels = [im[2] for im in inside] if task_of(cfg.task).image_label else None
        groups = assign_folds([im[0] for im in inside], labels, k)
        by_id = {im[0]: im for im in inside}
        fold_cfg = copy.deepcopy(cfg)
        if epochs is not None:
            fold_cfg.training.epochs = int(epochs)
        cost.folds, cost.epochs = len(groups), fold_cfg.training.epochs
        for n, group in enumerate(groups, start=1):
            f0 = time.perf_counter()
            fold_cfg.data.exclude = sorted(set(cfg.data.exclude) | set(group))
            result = fit(project, fold_cfg, callbacks=callbacks, stop=stop)
            try:
                if result.status not in ("finished", "stopped") or stop_requested(stop):
                    raise TrainingError(f"Cross-validation fold {n} ended '{result.status}'; "
                                      "no label-error scores were computed.")
                predictor = Predictor.from_run(project, result.run_id, which, device)
                _predict(predictor, [by_id[i] for i in group], f"fold {n}/{len(groups)}",
                         consume)
            finally:
                project.delete_run(result.run_id)
            cost.fold_seconds.append(time.perf_counter() - f0)
        cost.by_folds = len(inside)
    cost.seconds = time.perf_counter() - t0
    return cost


def _predict(predictor: Predictor, images: Sequence[tuple[int, str, int]], source: str,
             consume: Consumer) -> None:
    channels = predictor.meta["channels"]
    for image_id, path, _ in images:
        result = predictor.predict_array(decode(path, channels), path, image_id)
        consume(image_id, result.probabilities, source)


