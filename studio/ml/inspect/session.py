"""The data behind the Inspect workspace, computed in worker threads (no Qt here).

An :class:`InspectSession` holds one run's predictions of one split: the network runs
once per image while the session opens (:mod:`studio.ml.inspect.opening`), or when an
image outside it is first shown; the probability maps stay in memory up to a byte
budget, and everything a slider changes is
computed from them: the current image through its own :class:`RecipeRunner` (so the
per-image readout never waits for the split), the split through a
:class:`SplitReadout`. Brush edits of a prediction are kept per image and applied on top
of the recipe's mask.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.core.errors import ConfigError
from studio.ml.datasets import decode
from studio.ml.postprocess import RecipeRunner, default_recipe
from studio.ml.predict import Predictor
from studio.ml.readout_boundary import TargetBoundaries
from studio.ml.readouts import SplitReadout, compare, image_stats, readout
from studio.ml.tasks import IGNORE_INDEX, task_of

DEFAULT_BUDGET = 1 << 30  # bytes of probability maps and images kept in memory


@dataclass
class InspectImage:
    """One image of the session: `score` sorts the browser (worst first)."""

    image_id: int
    name: str
    labelled: bool
    score: float = math.nan  # semantic: Dice of the plain argmax; classification: p(given)
    index: int | None = None  # position in the split readout (labelled, in the budget)
    given: int = -1  # classification: the labelled class
    probabilities: np.ndarray | None = field(default=None, repr=False)  # classification (C,)


@dataclass
class Prediction:
    """What one image needs for overlays and recipes."""

    probabilities: np.ndarray  # (C, H, W) float32
    image: np.ndarray  # decoded as the run's model sees it (CRF, superpixels)
    target: np.ndarray | None  # label map (H, W) uint8, 255 = no label; None = unlabelled
    raw: np.ndarray = field(repr=False)  # plain argmax (H, W) uint8, as the predictor gives

    @property
    def nbytes(self) -> int:
        extra = 0 if self.target is None else self.target.nbytes
        return self.probabilities.nbytes + self.image.nbytes + self.raw.nbytes + extra


@dataclass
class ImageResult:
    """The post-processed mask of one image and its readout (None without a label)."""

    image_id: int
    recipe: dict
    prediction: Prediction
    mask: np.ndarray  # after the recipe and brush edits
    figures: dict | None  # {"before", "after", "change"}
    overlays: dict = field(default_factory=dict)  # (kind, heat class) -> RGBA, drawn ahead

    @property
    def raw(self) -> np.ndarray:
        """The plain argmax."""
        return self.prediction.raw


class PredictionCache:
    """Least-recently-used predictions, bounded by their bytes; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, Prediction] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, image_id: int) -> Prediction | None:
        with self._lock:
            item = self._items.get(image_id)
            if item is not None:
                self._items.move_to_end(image_id)
            return item

    def put(self, image_id: int, pred: Prediction, pinned: set[int] | None = None) -> None:
        with self._lock:
            old = self._items.pop(image_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[image_id] = pred
            self._bytes += pred.nbytes
            for key in list(self._items):
                if self._bytes <= self.max_bytes or key == image_id:
                    break
                if pinned and key in pinned:
                    continue
                self._bytes -= self._items.pop(key).nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


class RunSession:
    """What every Inspect session of a run and split holds: the run's predictor, task,
    classes and channels, and the split's images."""

    def __init__(self, project, run_id: int, split: str, predictor: Predictor) -> None:
        self.project, self.run_id, self.split = project, int(run_id), split
        self.predictor = predictor
        meta = predictor.meta
        self.task: str = meta["task"]
        self.class_ids: list[int] = list(meta["class_ids"])
        self.class_names: list[str] = list(meta["class_names"])
        self.channels: int = int(meta["channels"])
        self.images: list[InspectImage] = []
        self.unlabelled: list[InspectImage] = []  # the split's images without labels
        self.source = None  # the split as the engine reads it (opening)
        # (image id, target, probabilities, image) of the images streamed in so far, kept
        # for the split readout that opening builds when all are in
        self.streamed: list[tuple] = []
        self.epoch = int(meta.get("epoch", 0))  # of the checkpoint the predictions come from
        self.stamp: tuple | None = None  # that checkpoint file as it was (checkpoint_stamp)
        self.predict_lock = threading.Lock()
        self._index: dict[int, InspectImage] = {}
        self._indexed: list[InspectImage] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def is_stale(self) -> bool:
        """True when the run saved another checkpoint since the predictions were made (it
        trained on, finished, or was resumed): they no longer show the run's model. One
        query and one stat: cheap enough to ask every few seconds."""
        return self.stamp is not None and checkpoint_stamp(self.project, self.run_id) \
            != self.stamp

    def entry(self, image_id: int) -> InspectImage | None:
        """The split's entry of an image (indexed again when the image list changed)."""
        if self._indexed is not self.images or len(self._index) != len(self.images):
            self._index = {e.image_id: e for e in self.images}
            self._indexed = self.images
        return self._index.get(image_id)


class InspectSession(RunSession):
    """One run's predictions of one split. Build it with :func:`studio.ml.inspect.opening.open_session` in a worker."""

    def __init__(self, project, run_id: int, split: str, predictor: Predictor,
                 budget: int = DEFAULT_BUDGET) -> None:
        super().__init__(project, run_id, split, predictor)
        self.cache = PredictionCache(budget)
        self.readout: SplitReadout | None = None
        self.readout_ids: list[int] = []  # image id of each readout position
        self.budget_skipped = 0  # labelled images left out of the split readout
        self.edits: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (painted, value)
        # images whose labels are now a model's, waiting for review (an accept): no ground
        # truth, so the split figures leave them out and their own readout says so
        self.model_labelled: set[int] = set()
        self.recipe: dict = default_recipe() if task_of(self.task).label_map else {}
        self._runners: OrderedDict[int, RecipeRunner] = OrderedDict()
        self._bounds: OrderedDict[int, TargetBoundaries] = OrderedDict()
        self._image_lock = threading.Lock()
        self._split_lock = threading.Lock()

    # --- predictions ----------------------------------------------------------------------
    def predict(self, image_id: int) -> Prediction:
        """The cached prediction of an image, running the network only on a cache miss."""
        pred = self.cache.get(image_id)
        if pred is not None:
            return pred
        if not task_of(self.task).label_map:
            raise ConfigError(f"Run {self.run_id} does {self.task}; overlays need a semantic "
                              "segmentation run.")
        rec = self.project.image(image_id)
        image = decode(rec.abs_path, self.channels)
        with self.predict_lock:
            pred = self.cache.get(image_id)  # another worker may have just predicted it
            if pred is not None:
                return pred
            result = self.predictor.predict_array(image, str(rec.abs_path), image_id)
            target = read_label_map(self.project, image_id, self.class_ids)
            if target is not None and is_pending(self.project, image_id):
                self.model_labelled.add(image_id)
            pred = Prediction(result.probabilities, image, target, result.label_map)
            self.cache.put(image_id, pred, pinned=set(self.readout_ids))
        return pred

    def classify(self, image_id: int, path=None) -> np.ndarray:
        """Classification: the class probabilities of an image (kept on its entry; the
        network runs once per image even when two threads ask at once). `path`: the
        image's file, when the caller has it at hand."""
        e = self.entry(image_id)
        if e is not None and e.probabilities is not None:
            return e.probabilities
        image = decode(path if path is not None else self.project.image(image_id).abs_path,
                       self.channels)
        with self.predict_lock:
            if e is not None and e.probabilities is not None:  # made meanwhile
                return e.probabilities
            probs = np.asarray(self.predictor.classify([image])[0], np.float32)
            if e is not None:
                e.probabilities = probs
        return probs

    # --- per image ------------------------------------------------------------------------
    def _runner(self, image_id: int, pred: Prediction) -> RecipeRunner:
        runner = self._runners.get(image_id)
        if runner is None:
            runner = RecipeRunner(pred.probabilities, image=pred.image)
            self._runners[image_id] = runner
            while len(self._runners) > 2:  # the current image and the one before it
                self._runners.popitem(last=False)
        return runner

    def _boundaries(self, image_id: int, target: np.ndarray) -> TargetBoundaries:
        bounds = self._bounds.get(image_id)
        if bounds is None:
            bounds = TargetBoundaries(target, self.num_classes)
            self._bounds[image_id] = bounds
            while len(self._bounds) > 2:
                self._bounds.popitem(last=False)
        return bounds

    def apply_edits(self, image_id: int, mask: np.ndarray) -> np.ndarray:
        edit = self.edits.get(image_id)
        if edit is None:
            return mask
        painted, value = edit
        return np.where(painted, value, mask).astype(np.uint8)

    def image_result(self, image_id: int, recipe: dict,
                     cancelled: Callable[[], bool] | None = None) -> ImageResult | None:
        """Mask and readout of one image under `recipe` (None when cancelled first)."""
        pred = self.predict(image_id)
        with self._image_lock:
            if cancelled is not None and cancelled():
                return None
            runner = self._runner(image_id, pred)
            mask = self.apply_edits(image_id, runner.run(recipe))
        raw = pred.raw
        figures = None
        if pred.target is not None:
            e = self.entry(image_id)
            idx = e.index if e is not None else None
            if idx is not None and self.readout is not None:
                bounds = self.readout.boundaries[idx]
                before = self.readout.before[idx]
            else:
                bounds = self._boundaries(image_id, pred.target)
                before = image_stats(raw, pred.target, self.num_classes, boundaries=bounds)
            after = image_stats(mask, pred.target, self.num_classes, boundaries=bounds)
            b, a = readout(before), readout(after)
            figures = {"before": b, "after": a, "change": compare(b, a),
                       "model_labels": image_id in self.model_labelled}
        return ImageResult(image_id, recipe, pred, mask, figures)

    def paint(self, image_id: int, shape: tuple[int, int], x0: int, y0: int,
              patch: np.ndarray, value: int) -> None:
        """Record a brush edit: where `patch` (bool) is true, at (x0, y0) of an image of
        `shape`, the mask takes `value` (a class index, or 255 = unlabelled)."""
        edit = self.edits.get(image_id)
        if edit is None:
            edit = (np.zeros(shape, bool), np.zeros(shape, np.uint8))
            self.edits[image_id] = edit
        h, w = patch.shape
        edit[0][y0:y0 + h, x0:x0 + w] |= patch
        edit[1][y0:y0 + h, x0:x0 + w][patch] = value

    def refresh_target(self, image_id: int) -> None:
        """Re-read an image's labels after they changed (accept, undo, labelling)."""
        pred = self.cache.get(image_id)
        target = read_label_map(self.project, image_id, self.class_ids)
        if target is not None and is_pending(self.project, image_id):
            self.model_labelled.add(image_id)
        else:
            self.model_labelled.discard(image_id)
        if pred is not None:
            pred.target = target
        self._bounds.pop(image_id, None)
        e = self.entry(image_id)
        if e is None or e.index is None or self.readout is None or target is None:
            return
        i, r = e.index, self.readout
        with self._split_lock:
            r.targets[i] = target
            r.boundaries[i] = TargetBoundaries(target, self.num_classes)
            r.before[i] = image_stats(pred.raw if pred is not None else r.masks[i], target,
                                      self.num_classes, boundaries=r.boundaries[i])
            r.after[i] = image_stats(r.masks[i], target, self.num_classes,
                                     boundaries=r.boundaries[i])

    def clear_edits(self, image_id: int) -> None:
        self.edits.pop(image_id, None)

    # --- the split ------------------------------------------------------------------------
    def split_figures(self, recipe: dict, cancelled: Callable[[], bool] | None = None
                      ) -> dict | None:
        """Split-wide readouts under `recipe`; None when cancelled midway."""
        if self.readout is None:
            return None
        with self._split_lock:
            if not self.readout.update(recipe, cancelled=cancelled):
                return None
            for pos, image_id in enumerate(self.readout_ids):
                if image_id in self.edits:
                    mask = self.apply_edits(image_id, self.readout.masks[pos])
                    self.readout.set_mask(pos, mask)
            r, ids = self.readout, self.readout_ids
            kept = [i for i, image_id in enumerate(ids) if image_id not in self.model_labelled]
            if len(kept) == len(ids):
                out = r.split()
            else:  # a model's labels are no ground truth: pooled without them
                b = readout([r.before[i] for i in kept]) if kept else None
                a = readout([r.after[i] for i in kept]) if kept else None
                dice = r.split()
                out = {"before": b, "after": a, "change": compare(b, a) if kept else None,
                       "dice_before": [d if ids[i] not in self.model_labelled else math.nan
                                       for i, d in enumerate(dice["dice_before"])],
                       "dice_after": [d if ids[i] not in self.model_labelled else math.nan
                                      for i, d in enumerate(dice["dice_after"])]}
        out["image_ids"] = list(ids)
        out["left_out"] = len(ids) - len(kept)
        return out


def is_pending(project, image_id: int) -> bool:
    """Marked for review and holding a model's objects (the engine's rule for images left
    out of training and evaluation, `Project.pending_model_images`)."""
    return project.image(image_id).status == "review" and any(
        a.source.startswith("model:") for a in project.annotations(image_id))


def checkpoint_stamp(project, run_id: int) -> tuple | None:
    """(path, modification time, size) of the checkpoint a run predicts with; None when it
    has none (yet)."""
    from studio.core.errors import StudioError
    from studio.ml.checkpoints import run_checkpoint

    try:
        path = run_checkpoint(project, run_id, "best")
        st = path.stat()
    except (StudioError, OSError):
        return None
    return str(path), st.st_mtime_ns, st.st_size


def read_label_map(project, image_id: int, class_ids) -> np.ndarray | None:
    """The label map of one image, or None when it has no regions of the run's classes."""
    from studio.core.rasterize import label_map

    labels = label_map(project, image_id, list(class_ids)).astype(np.uint8)
    return labels if (labels != IGNORE_INDEX).any() else None


def confusion(session: InspectSession) -> tuple[np.ndarray, dict[tuple[int, int], list[int]]]:
    """Classification: (C x C counts, rows given / columns predicted; the image ids of each
    cell)."""
    c = session.num_classes
    counts = np.zeros((c, c), np.int64)
    cells: dict[tuple[int, int], list[int]] = {}
    for e in session.images:
        if e.probabilities is None or e.given < 0:
            continue
        p = int(np.argmax(e.probabilities))
        counts[e.given, p] += 1
        cells.setdefault((e.given, p), []).append(e.image_id)
    return counts, cells


def top_k(probabilities: np.ndarray, names: list[str], k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(-np.asarray(probabilities))[:k]
    return [(names[i], float(probabilities[i])) for i in order]
