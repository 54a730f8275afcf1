"""Opening an Inspect session of a semantic or classification run: the network runs once
per image of the split.

A session opens in three steps, so a window can show it while it fills in:
:func:`prepare_session` loads the run's model and lists the split's images (no
prediction: quick); :func:`stream_predictions` predicts the labelled images one by one,
scoring each as it lands (semantic: Dice of the plain argmax; classification: the
probability of the labelled class), and reports each to `on_image`;
:func:`finish_session` builds the split readout (semantic) and ranks the images worst
first. (Detection and instance runs open the same way: `detections.prepare_detection_session`.)
Another thread may ask the session for any image meanwhile (`InspectSession.predict`
takes the one already made, or makes it once). :func:`open_session` does all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.ml.datasets import read_split
from studio.ml.inspect.session import (
    DEFAULT_BUDGET,
    InspectImage,
    InspectSession,
    checkpoint_stamp,
)
from studio.ml.predict import Predictor
from studio.ml.readouts import SplitReadout, image_dice, image_stats
from studio.ml.review import unlabelled_images
from studio.ml.tasks import task_of


def prepare_session(project, run_id: int, split: str, budget: int = DEFAULT_BUDGET,
                    device: str = "auto", predictor: Predictor | None = None
                    ) -> InspectSession:
    """The run's model loaded and the split's images listed (labelled first, in the
    split's order, then the unlabelled ones); nothing predicted yet."""
    stamp = None if predictor is not None else checkpoint_stamp(project, run_id)  # before
    predictor = predictor or Predictor.from_run(project, run_id, device=device)  # loading
    session = InspectSession(project, run_id, split, predictor, budget)
    session.stamp = stamp
    src = read_split(project, session.task, split, session.class_ids)
    session.source = src
    labelled = {s.image_id for s in src.samples}
    if task_of(session.task).image_label:  # the labelled class known, p(label) to come
        session.images = [InspectImage(s.image_id, _name(s.path), True, given=int(s.label))
                          for s in src.samples]
    else:
        session.images = [InspectImage(s.image_id, _name(s.path), True) for s in src.samples]
    session.unlabelled = [InspectImage(r.id, r.name, False) for r in unlabelled_images(
        project, session.task, session.class_ids, split) if r.id not in labelled]
    session.images = session.images + session.unlabelled
    return session


def stream_predictions(session: InspectSession, check: Callable[[], None] | None = None,
                       on_image: Callable[[InspectImage, int, int], None] | None = None
                       ) -> None:
    """Predict the split's labelled images in order, each once; `on_image(entry, done,
    total)` after each (its score set). `check()` raises to cancel between images."""
    src = session.source
    total = len(src.samples)
    if task_of(session.task).image_label:
        _classify(session, src, check, on_image)
        return
    used = 0
    session.streamed = []
    for done, sample in enumerate(src.samples, start=1):
        if check is not None:
            check()
        pred = session.predict(sample.image_id)
        target = pred.target
        if target is None:  # labelled when the split was read: as the engine reads it
            target = src.label_map(sample.image_id).astype(np.uint8)
        entry = session.entry(sample.image_id)
        entry.score = image_dice(image_stats(pred.raw, target, session.num_classes,
                                             boundary=False))
        if used + pred.nbytes <= session.cache.max_bytes:
            used += pred.nbytes
            session.readout_ids.append(sample.image_id)
            session.streamed.append((sample.image_id, target, pred.probabilities, pred.image))
        else:
            session.budget_skipped += 1
        if on_image is not None:
            on_image(entry, done, total)


def finish_session(session: InspectSession) -> InspectSession:
    """Build the split readout of the streamed predictions and rank the labelled images
    worst first (unlabelled ones after them)."""
    streamed = session.streamed
    if streamed:
        readout = SplitReadout([t for _i, t, _p, _im in streamed],
                               [p for _i, _t, p, _im in streamed],
                               [im for _i, _t, _p, im in streamed], threads=2)
        for index, (image_id, *_rest) in enumerate(streamed):
            session.entry(image_id).index = index
        session.readout = readout  # last: image_result uses an index only with a readout
    session.streamed = []
    labelled = [e for e in session.images if e.labelled]
    labelled.sort(key=lambda e: (math.inf if math.isnan(e.score) else e.score, e.image_id))
    session.images = labelled + [e for e in session.images if not e.labelled]
    return session


def open_session(project, run_id: int, split: str, budget: int = DEFAULT_BUDGET,
                 device: str = "auto", check: Callable[[], None] | None = None,
                 progress: Callable[[tuple[int, int]], None] | None = None,
                 predictor: Predictor | None = None) -> InspectSession:
    """Predict every labelled image of `split` once and prepare the split readout.

    `check()` raises to cancel between images; `progress((done, total))` after each.
    """
    session = prepare_session(project, run_id, split, budget, device, predictor)
    report = None if progress is None else (lambda _e, done, total: progress((done, total)))
    stream_predictions(session, check, report)
    return finish_session(session)


def _classify(session: InspectSession, src, check, on_image) -> None:
    """Each labelled image's class probabilities (once: an image the window asked for
    meanwhile keeps its own) and p(label) on its entry."""
    total = len(src.samples)
    for done, sample in enumerate(src.samples, start=1):
        if check is not None:
            check()
        entry = session.entry(sample.image_id)
        probs = session.classify(sample.image_id, sample.path)
        entry.score = float(probs[sample.label])
        if on_image is not None:
            on_image(entry, done, total)


def _name(path: str) -> str:
    return Path(path).name
