"""The data behind inspecting a detection or instance run, computed in worker threads
(no Qt here).

The network runs ONCE per image, with a very low score threshold and a loose NMS
(:data:`RAW_SCORE`, :data:`RAW_NMS_IOU`); its raw detections (boxes, scores, classes and,
for instance runs, masks cropped to their boxes) stay in memory. Everything the sliders
change is computed from them: the score threshold and a class-wise NMS
(`torchvision.ops.batched_nms`) pick the kept detections, which are matched to the ground
truth greedily by score as COCO does (same class, IoU >= the match threshold, each ground
truth object taken once; mask IoU for instance runs). Per image and split-wide
precision, recall and F1 follow; mAP@0.5 and mAP@[.5:.95] come from the engine's COCO
evaluation of the detections above the engine's evaluation threshold after the current
NMS (they do not depend on the score slider), cached per NMS value. Runs whose model
splits per-pixel maps into objects (the instance task's `maps_split` method) keep the
maps of that one pass too: their split sliders (seed and foreground thresholds) split
them again (`studio.ml.inspect.instance_maps`), and everything above follows. At the run's own
NMS they equal `studio-cli evaluate` for runs that see the whole image (but for a rare
box that a loose NMS followed by the run's drops and the run's alone keeps); runs
predicting tile by tile ("crop" policy) apply their NMS inside each tile too, which the
one loose pass cannot repeat, so there they can differ: the run record's own validation
mAPs are shown beside them.

Images of the split without objects take part as the engine's evaluation has them (as
negatives: their detections are false positives); the browser lists them after the
labelled ones. Images marked for review that hold a model's objects (accepted
detections, pre-labels) are no ground truth for the engine: they stay out of the split
figures until a person marks them otherwise (their own view still compares the
detections with their current objects), and are listed last.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from studio.core.errors import NotFoundError
from studio.core.geometry import MaskGeom, geometry_bbox, rasterize, rle_encode
from studio.ml.datasets import decode
from studio.ml.inspect.instance_maps import InstanceMaps
from studio.ml.inspect.session import InspectImage, RunSession, checkpoint_stamp, is_pending
from studio.ml.predict import Predictor
from studio.ml.tasks import task_kinds, task_of
from studio.ml.tasks.detection.data import read_detection_split
from studio.ml.tasks.detection.matching import (
    Matching,
    Objects,
    counts_figures,
    filter_detections,
    iou_matrix,
    match_detections,
)
from studio.ml.tasks.detection.metrics import DetectionMeter
from studio.ml.tasks.detection.predict import EVAL_SCORE_THRESHOLD
from studio.ml.tasks.registry import task

RAW_SCORE = 0.01  # the network's own threshold: everything a slider may want later
RAW_NMS_IOU = 0.9  # loose: the NMS slider refilters up to this overlap
RAW_MAX_DETECTIONS = 300  # at least; three times the run's own maximum if that is more
# instance runs: the model pastes every mask at full size (float) before we crop them, so
# fewer are kept on big images, never fewer than the run's own maximum
RAW_MASK_BYTES = 512 << 20
DEFAULT_MATCH_IOU = 0.5
STATUSES = ("matched", "false positive", "missed")


@dataclass(frozen=True)
class DetectionParams:
    """What the sliders set: score threshold, NMS IoU and the IoU a match needs; for
    runs that split per-pixel maps into objects also the split's seed and foreground
    thresholds (None for the others)."""

    score: float = 0.5
    nms_iou: float = 0.5
    match_iou: float = DEFAULT_MATCH_IOU
    seed: float | None = None
    foreground: float | None = None

    def split_key(self) -> tuple[float, float] | None:
        return None if self.seed is None else (self.seed, float(self.foreground or 0.0))


def raw_max_detections(task: str, height: int, width: int, run_max: int) -> int:
    """How many detections the one network pass keeps (see RAW_MASK_BYTES)."""
    most = max(RAW_MAX_DETECTIONS, 3 * int(run_max))
    if not task_of(task).has_masks:
        return most
    fits = RAW_MASK_BYTES // max(4 * int(height) * int(width), 1)
    return int(min(max(fits, int(run_max)), most))


def _empty_objects(width: int, height: int, masks: bool) -> Objects:
    return Objects(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32),
                   [] if masks else None, width, height)


def ground_truth(objects, width: int, height: int, masks: bool) -> Objects:
    """Ground truth of one image from ``(class index, kind, geometry)`` triples."""
    if not objects:
        return _empty_objects(width, height, masks)
    boxes, classes, bitmaps = [], [], []
    for label, kind, geometry in objects:
        x, y, w, h = geometry_bbox(kind, geometry)
        boxes.append((x, y, x + w, y + h))
        classes.append(label)
        if masks:
            bitmaps.append(MaskGeom.from_full(rasterize(kind, geometry, height, width)))
    return Objects(np.asarray(boxes, np.float32), np.asarray(classes, np.int64),
                   np.full(len(classes), np.nan, np.float32), bitmaps if masks else None,
                   width, height)


def read_ground_truth(project, image_id: int, task: str, class_ids) -> Objects:
    """One image's ground truth as the engine reads it (the run's classes and kinds)."""
    index = {cid: i for i, cid in enumerate(class_ids)}
    kinds = task_kinds(task)
    rec = project.image(image_id)
    objects = [(index[a.class_id], a.kind, a.geometry) for a in project.annotations(image_id)
               if a.class_id in index and a.kind in kinds]
    return ground_truth(objects, rec.width, rec.height, task_of(task).has_masks)


def raw_objects(det) -> Objects:
    """Engine `Detections` as Objects (masks cropped to their boxes, as the cache keeps
    them; a full-size mask per detection would cost megabytes each)."""
    masks = None if det.masks is None else [MaskGeom.from_full(m) for m in det.masks]
    return Objects(np.asarray(det.boxes, np.float32).reshape(-1, 4),
                   np.asarray(det.classes, np.int64), np.asarray(det.scores, np.float32),
                   masks, int(det.width), int(det.height))


@dataclass
class ObjectRow:
    """One line of the objects list: a kept detection or a missed ground-truth object."""

    source: str  # "prediction" or "ground truth"
    index: int  # raw detection index or ground-truth index
    class_index: int
    score: float  # nan for ground truth
    iou: float
    status: str  # one of STATUSES
    box: tuple[float, float, float, float]  # XYXY


@dataclass
class DetectionResult:
    """One image under one set of slider values."""

    image_id: int
    params: DetectionParams
    raw: Objects
    gt: Objects
    matching: Matching
    figures: dict
    overlay: np.ndarray | None = field(default=None, repr=False)  # instance masks, RGBA

    def rows(self) -> list[ObjectRow]:
        m, raw, gt = self.matching, self.raw, self.gt
        rows = [ObjectRow("prediction", int(i), int(raw.classes[i]), float(raw.scores[i]),
                          float(m.iou[pos]), "matched" if m.match[pos] >= 0 else "false positive",
                          tuple(float(v) for v in raw.boxes[i]))
                for pos, i in enumerate(m.kept)]
        rows += [ObjectRow("ground truth", int(j), int(gt.classes[j]), math.nan, 0.0, "missed",
                           tuple(float(v) for v in gt.boxes[j]))
                 for j in np.flatnonzero(m.gt_match < 0)]
        return rows

    def kept_objects(self) -> list[int]:
        """Raw indices of the kept detections, best first."""
        return [int(i) for i in self.matching.kept]


class DetectionSession(RunSession):
    """One detection or instance run's raw detections of one split. Build it with
    :func:`open_detection_session` in a worker."""

    readout = None  # no post-processing recipe: the semantic split readout does not apply
    budget_skipped = 0  # raw detections are small: every image of the split is kept

    def __init__(self, project, run_id: int, split: str, predictor: Predictor) -> None:
        super().__init__(project, run_id, split, predictor)
        meta = predictor.meta
        self.masks = task_of(self.task).has_masks
        det = meta["config"].get("detection", {})
        self.run_max = int(det.get("max_detections", 100))
        self.default_params = DetectionParams(float(det.get("score_threshold", 0.5)),
                                              min(float(det.get("nms_iou", 0.5)), RAW_NMS_IOU))
        self.split_maps: InstanceMaps | None = None  # per-pixel maps split into objects
        if task(self.task).splits_maps(getattr(predictor, "model", None)):
            self.split_maps = InstanceMaps(self.task, predictor.model, RAW_SCORE,
                                           max(RAW_MAX_DETECTIONS, 3 * self.run_max))
            seed, foreground = self.split_maps.defaults
            self.default_params = replace(self.default_params, seed=seed,
                                          foreground=foreground)
        self.run_metrics: dict = {}  # the run record's best validation mAPs, as map_report
        self.evaluated: list[int] = []  # image ids of the split figures
        self.pending: set[int] = set()  # a model's objects waiting for review: no ground truth
        self.candidates: list[int] = []  # the split's images: evaluated unless pending
        self.raw: dict[int, Objects] = {}
        self.gt: dict[int, Objects] = {}
        self.network_calls = 0
        self.errors: dict[int, int] = {}  # false positives + missed at the run's thresholds
        self.waiting: list = []  # the split's images waiting for review (image records)
        self._ious: dict[tuple, np.ndarray] = {}
        self._maps: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    # --- the network, once per image --------------------------------------------------------
    def predict(self, image_id: int) -> Objects:
        """The raw detections of an image, running the network only the first time."""
        raw = self.raw.get(image_id)
        if raw is not None:
            return raw
        rec = self.project.image(image_id)
        image = decode(rec.abs_path, self.channels)
        with self.predict_lock:
            raw = self.raw.get(image_id)  # another worker may have just predicted it
            if raw is None:
                most = raw_max_detections(self.task, *image.shape[:2], self.run_max)
                model = self.predictor.model if self.split_maps is not None else None
                with task(self.task).keeping_maps(model) as kept:
                    det = self.predictor.detect(image, str(rec.abs_path), image_id,
                                                score_threshold=RAW_SCORE, nms_iou=RAW_NMS_IOU,
                                                max_detections=most)
                self.network_calls += 1
                if kept:
                    self.split_maps.keep(image_id, kept[-1])
                raw = raw_objects(det)
                self.raw[image_id] = raw
        return raw

    def objects(self, image_id: int, params: DetectionParams) -> Objects:
        """The image's raw detections under `params`: the network's (run once), or, for a
        run splitting per-pixel maps at other split values than its own, its cached maps
        split again (`studio.ml.inspect.instance_maps`)."""
        raw = self.predict(image_id)
        key = params.split_key()
        if self.split_maps is None or key is None or key == self.default_params.split_key():
            return raw
        return self.split_maps.objects(image_id, *key)

    def ground_truth(self, image_id: int) -> Objects:
        gt = self.gt.get(image_id)
        if gt is None:
            gt = read_ground_truth(self.project, image_id, self.task, self.class_ids)
            self.gt[image_id] = gt
        return gt

    def refresh_ground_truth(self, image_id: int) -> None:
        """Re-read an image's objects after they changed (accept, undo, labelling); an
        image now waiting for review with a model's objects leaves the split figures, one
        no longer waiting comes back."""
        gt = read_ground_truth(self.project, image_id, self.task, self.class_ids)
        pending = is_pending(self.project, image_id)
        with self._lock:
            self.gt[image_id] = gt
            for k in [k for k in self._ious if k[0] == image_id]:
                self._ious.pop(k, None)
            self._maps.clear()
            (self.pending.add if pending else self.pending.discard)(image_id)
            self.evaluated = [i for i in self.candidates if i not in self.pending]
        e = self.entry(image_id)
        if e is not None:
            e.labelled = len(gt) > 0 and not pending

    def _iou(self, image_id: int, raw: Objects, gt: Objects, split=None) -> np.ndarray:
        with self._lock:
            ious = self._ious.get((image_id, split))
        if ious is None or ious.shape != (len(raw), len(gt)):
            ious = iou_matrix(raw, gt)
            with self._lock:
                self._ious[(image_id, split)] = ious
        return ious

    def matching(self, image_id: int, params: DetectionParams) -> tuple[Objects, Objects,
                                                                          Matching]:
        raw, gt = self.objects(image_id, params), self.ground_truth(image_id)
        kept = filter_detections(raw, params.score, params.nms_iou)
        ious = self._iou(image_id, raw, gt, params.split_key())
        m = match_detections(raw.classes, kept, gt.classes, ious, params.match_iou)
        return raw, gt, m

    # --- per image and split ------------------------------------------------------------------
    def image_result(self, image_id: int, params: DetectionParams) -> DetectionResult:
        raw, gt, m = self.matching(image_id, params)
        figures = counts_figures(m.tp, m.fp, m.fn)
        matched = m.iou[m.match >= 0]
        figures["mean_iou"] = float(matched.mean()) if len(matched) else math.nan
        return DetectionResult(image_id, params, raw, gt, m, figures)

    def split_figures(self, params: DetectionParams,
                      cancelled: Callable[[], bool] | None = None) -> dict | None:
        """Split-wide precision, recall, F1, per-image F1 and errors, and the mAPs at the
        current NMS; None when cancelled midway."""
        tp = fp = fn = 0
        ious = []
        per_image: dict[int, tuple[float, int]] = {}
        for image_id in self.evaluated:
            if cancelled is not None and cancelled():
                return None
            _raw, _gt, m = self.matching(image_id, params)
            tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
            ious.append(m.iou[m.match >= 0])
            per_image[image_id] = (counts_figures(m.tp, m.fp, m.fn)["f1"], m.fp + m.fn)
        out = counts_figures(tp, fp, fn)
        matched = np.concatenate(ious) if ious else np.zeros(0)
        out["mean_iou"] = float(matched.mean()) if len(matched) else math.nan
        out["images"] = len(self.evaluated)
        out["per_image"] = per_image
        out["map"] = self.map_report(params.nms_iou, params)
        return out

    def map_report(self, nms_iou: float, params: DetectionParams | None = None) -> dict:
        """{"box": {"map", "map50", ...}[, "mask": ...]} of the split's detections above
        the engine's evaluation threshold after NMS at `nms_iou` (cached per value; the
        split values of `params` where the run splits maps, the run's own without)."""
        params = params or self.default_params
        key = (round(float(nms_iou), 4), params.split_key())
        with self._lock:
            cached = self._maps.get(key)
        if cached is not None:
            return cached
        meter = DetectionMeter(self.num_classes, self.class_names, masks=self.masks)
        for image_id in self.evaluated:
            raw, gt = self.objects(image_id, params), self.ground_truth(image_id)
            coco_id = meter.add_image(raw.width or gt.width, raw.height or gt.height)
            for j in range(len(gt)):
                x1, y1, x2, y2 = (float(v) for v in gt.boxes[j])
                if gt.masks is not None:
                    meter.add_ground_truth(coco_id, "mask", gt.masks[j], int(gt.classes[j]) + 1)
                else:
                    meter.add_ground_truth(coco_id, "box", (x1, y1, x2 - x1, y2 - y1),
                                           int(gt.classes[j]) + 1)
            meter.results.extend(coco_entries(raw, filter_detections(
                raw, EVAL_SCORE_THRESHOLD, nms_iou), coco_id))
        report = {k: {s: v[s] for s in ("map", "map50", "map75", "ar100")}
                  for k, v in meter.report().items()}
        with self._lock:
            self._maps[key] = report
        return report


def coco_entries(raw: Objects, indices: np.ndarray, image_id: int) -> list[dict]:
    """COCO result entries (category = class index + 1, as DetectionMeter numbers them)."""
    out = []
    for i in indices:
        x1, y1, x2, y2 = (float(v) for v in raw.boxes[i])
        entry = {"image_id": int(image_id), "category_id": int(raw.classes[i]) + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(raw.scores[i])}
        if raw.masks is not None:
            entry["segmentation"] = rle_encode(raw.masks[i].to_full(raw.height, raw.width))
        out.append(entry)
    return out


def recorded_maps(project, run_id: int) -> dict:
    """The mAPs the run recorded on its validation split at its best epoch (the engine's
    evaluation at the run's own thresholds), as {"box": {"map", "map50"}, ...}; empty
    when the run has none."""
    try:
        best = project.run(run_id).best_metrics or {}
    except NotFoundError:
        return {}
    out: dict = {}
    for key, value in best.items():
        kind, _, name = key.partition("_")
        if kind in ("box", "mask") and name in ("map", "map50") and value is not None:
            out.setdefault(kind, {})[name] = float(value)
    return out


def prepare_detection_session(project, run_id: int, split: str, device: str = "auto",
                              predictor: Predictor | None = None) -> DetectionSession:
    """The run's model loaded, the split's ground truth read and its images listed
    (those with objects, then those without, then those waiting for review); nothing
    predicted yet."""
    stamp = None if predictor is not None else checkpoint_stamp(project, run_id)  # before
    predictor = predictor or Predictor.from_run(project, run_id, device=device)  # loading
    session = DetectionSession(project, run_id, split, predictor)
    session.stamp = stamp
    session.run_metrics = recorded_maps(project, run_id)
    src = session.source = read_detection_split(project, session.task, split,
                                                session.class_ids)
    session.pending = project.pending_model_images(split)
    session.waiting = [rec for rec in project.images(split=split) if rec.id in session.pending]
    labelled, empty = [], []
    for sample in src.samples:
        image_id = sample.image_id
        if image_id in session.pending:  # a model's objects: listed last, no ground truth
            continue
        gt = ground_truth(src.objects.get(image_id, []), sample.width, sample.height,
                          session.masks)
        session.gt[image_id] = gt
        session.evaluated.append(image_id)
        session.candidates.append(image_id)
        name = sample.path.replace("\\", "/").rsplit("/", 1)[-1]
        (labelled if len(gt) else empty).append(InspectImage(image_id, name, len(gt) > 0))
    session.candidates += [rec.id for rec in session.waiting]
    session.images = labelled + empty + [InspectImage(rec.id, rec.name, False)
                                         for rec in session.waiting]
    return session


def stream_detections(session: DetectionSession, check: Callable[[], None] | None = None,
                      on_image: Callable[[InspectImage, int, int], None] | None = None
                      ) -> None:
    """Predict the split's images in the listed order, each once (an image the window
    asked for meanwhile is not predicted again); the F1 at the run's own thresholds
    (labelled images) and the errors (false positives + missed) of each are set as it
    lands, then `on_image(entry, done, total)`. `check()` raises to cancel between
    images."""
    params = session.default_params
    total = len(session.images)
    for done, entry in enumerate(list(session.images), start=1):
        if check is not None:
            check()
        if entry.image_id in session.pending:
            session.predict(entry.image_id)  # shown as any other, out of the figures
        else:
            _raw, gt, m = session.matching(entry.image_id, params)
            entry.score = counts_figures(m.tp, m.fp, m.fn)["f1"] if len(gt) else math.nan
            session.errors[entry.image_id] = m.fp + m.fn
        if on_image is not None:
            on_image(entry, done, total)


def finish_detection_session(session: DetectionSession) -> DetectionSession:
    """Rank the images by F1 at the run's own thresholds, worst first (more errors first
    among equals); images without objects after them, most errors first; images
    waiting for review last."""
    errors = session.errors
    waiting = {rec.id for rec in session.waiting}
    listed = [e for e in session.images if e.image_id not in waiting]
    labelled = sorted((e for e in listed if e.labelled), key=lambda e: (
        math.inf if math.isnan(e.score) else e.score, -errors.get(e.image_id, 0), e.image_id))
    empty = sorted((e for e in listed if not e.labelled),
                   key=lambda e: (-errors.get(e.image_id, 0), e.image_id))
    session.images = labelled + empty + [e for e in session.images if e.image_id in waiting]
    return session


def open_detection_session(project, run_id: int, split: str, device: str = "auto",
                           check: Callable[[], None] | None = None,
                           progress: Callable[[tuple[int, int]], None] | None = None,
                           predictor: Predictor | None = None) -> DetectionSession:
    """Predict every image of `split` once (raw detections) and rank them by F1 at the
    run's own thresholds, worst first; images without objects after the labelled ones,
    images waiting for review of a model's objects last (the three steps above at once).

    `check()` raises to cancel between images; `progress((done, total))` after each.
    """
    session = prepare_detection_session(project, run_id, split, device, predictor)
    report = None if progress is None else (lambda _e, done, total: progress((done, total)))
    stream_detections(session, check, report)
    return finish_detection_session(session)
