"""COCO mAP for detection and instance segmentation, computed by pycocotools' COCOeval.

The ground truth goes through :func:`studio.core.formats.coco.coco_object`, the same
conversion our COCO export writes, so an exported project evaluated by any COCO tool
gives the same figures. Reported per IoU type ("box", and "mask" for instance runs):
``map`` (AP@[.50:.95]), ``map50``, ``map75``, ``ar100`` and ``per_class``
({name: {"ap", "ap50", "ap75", "pr_curve": {"recall", "precision"}}}); the
precision-recall points are COCOeval's interpolated precision at IoU 0.5 over its 101
recall thresholds (area "all"), for the GUI to draw. A class without ground truth has
``None`` figures; with no ground truth at all the summary figures are 0.

Crowded images: COCOeval's default counts at most 100 detections per image, so an image
of 311 nuclei can never reach a recall above 100/311, whatever the model finds. Here
``max_dets`` (reported) is the larger of 100 and the most objects in one evaluated image
-- a property of the data, not of the model, so two methods are measured alike (COCO AP
is not monotone in maxDets: a model's extra low-scoring detections of one image can rank
above true ones of another) -- and ``map``, ``map50``, ``map75``, ``ar_max`` and the
per-class figures are counted with it; ``map_100``, ``map50_100``,
``map75_100`` and ``ar100`` are COCOeval's default (100 detections) beside them, for
comparison with figures published that way. ``most_objects`` is the largest number of
objects in one image.

Why DSB 2018 validation and held-out figures differed (stage1_test, 65 images, the
benchmark's seeded 70/10/20 split): the 6 validation images hold 209 nuclei, at most
88 in one image, so the 100 cap never bit there; the 13 held-out images hold 1,470
nuclei, five of them more than 100 (146 to 311: dense tissue sections of a kind absent
from validation) and four more than the 200 the model returned per image. Counted at
100 detections, those five images alone cap the held-out recall at 825/1470 = 0.56, so
the held-out mAP50 fell far below validation while the early-stopping figure looked
fine. Counting enough detections (here), letting the model return as many objects as
the data holds (the planner sets ``detections_per_image``) and a validation split with
the dense kind in it remove the artefact; the small validation set remains noisy.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.formats.coco import coco_object
from studio.core.geometry import MaskGeom, rle_encode

SUMMARY = ("map", "map50", "map75", "ar100")
COCO_MAX_DETS = 100  # COCOeval's default detections counted per image
MASK_THRESHOLD = 0.5


def _cpu(value):
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def xyxy_to_xywh(box) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2 - x1, y2 - y1)


def prediction_masks(masks: torch.Tensor) -> np.ndarray:
    """Model mask outputs ((N, 1, H, W) probabilities or (N, H, W)) as bool (N, H, W)."""
    masks = _cpu(masks)
    if masks.ndim == 4:
        masks = masks[:, 0]
    if masks.is_floating_point():
        return (masks >= MASK_THRESHOLD).numpy()
    return masks.bool().numpy()


def detections_to_coco(output: dict, image_id: int, masks: bool, width: int, height: int,
                       category_of: Sequence[int] | None = None) -> list[dict]:
    """COCO result entries ({"image_id", "category_id", "bbox", "score"[, "segmentation"]})
    of one image's model output (labels 1..K; ``category_of[label - 1]`` renames them)."""
    boxes = _cpu(output["boxes"]).float().numpy()
    scores = _cpu(output["scores"]).float().numpy()
    labels = _cpu(output["labels"]).long().numpy()
    bitmaps = prediction_masks(output["masks"]) if masks and len(boxes) else None
    out = []
    for i in range(len(boxes)):
        label = int(labels[i])
        entry = {"image_id": int(image_id),
                 "category_id": int(category_of[label - 1]) if category_of else label,
                 "bbox": [round(v, 3) for v in xyxy_to_xywh(boxes[i])],
                 "score": round(float(scores[i]), 5)}
        if bitmaps is not None:
            entry["segmentation"] = rle_encode(bitmaps[i][:height, :width])
        out.append(entry)
    return out


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def coco_from_dataset(dataset: dict) -> COCO:
    """An in-memory pycocotools COCO object (without its progress prints)."""
    coco = COCO()
    coco.dataset = dataset
    _quiet(coco.createIndex)
    return coco


def most_per_image(entries: Sequence[dict]) -> int:
    """The largest number of entries (objects or detections) that share an image id."""
    counts: dict[int, int] = {}
    for e in entries:
        counts[e["image_id"]] = counts.get(e["image_id"], 0) + 1
    return max(counts.values(), default=0)


def _mean_valid(rows: np.ndarray) -> float:
    valid = rows[rows > -1]
    return float(valid.mean()) if valid.size else 0.0


def evaluate_coco(gt: COCO, results: list[dict], iou_type: str, class_names: Sequence[str],
                  max_dets: int | None = None) -> dict:
    """{"map", "map50", "map75", "ar_max", "max_dets", "map_100", "map50_100",
    "map75_100", "ar100", "most_objects", "per_class"} of ``results`` against ``gt``
    (see the module docstring). ``max_dets`` None: the most objects in one image, at
    least COCO's 100."""
    cat_ids = sorted(gt.getCatIds())
    most_objects = most_per_image(gt.dataset.get("annotations", []))
    if max_dets is None:
        max_dets = max(COCO_MAX_DETS, most_objects)
    per_class = {name: {"ap": None, "ap50": None, "ap75": None,
                        "pr_curve": {"recall": [], "precision": []}} for name in class_names}
    empty = {"map": 0.0, "map50": 0.0, "map75": 0.0, "ar_max": 0.0, "max_dets": max_dets,
             "map_100": 0.0, "map50_100": 0.0, "map75_100": 0.0, "ar100": 0.0,
             "most_objects": most_objects, "per_class": per_class}
    if not gt.getAnnIds() or not gt.getImgIds():
        return empty
    if not results:  # nothing detected: every class with ground truth scores 0
        for cat, name in zip(cat_ids, class_names, strict=False):
            if gt.getAnnIds(catIds=[cat]):
                per_class[name].update(ap=0.0, ap50=0.0, ap75=0.0)
        return empty
    dt = _quiet(gt.loadRes, results)
    ev = COCOeval(gt, dt, iou_type)
    ev.params.imgIds = sorted(gt.getImgIds())
    ev.params.catIds = cat_ids
    # summarize() reads maxDets[2] (100: the default figures); the last entry counts all
    ev.params.maxDets = [1, 10, COCO_MAX_DETS] + ([max_dets] if max_dets > COCO_MAX_DETS
                                                  else [])
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    _quiet(ev.summarize)
    stats = ev.stats
    precision = ev.eval["precision"]  # [T, R, K, A, M]; A=0 all areas, M=-1 max_dets
    recall = ev.eval["recall"]  # [T, K, A, M]
    recall_points = [round(float(r), 4) for r in ev.params.recThrs]
    for k, name in enumerate(class_names[:len(cat_ids)]):
        p = precision[:, :, k, 0, -1]
        if (p < 0).all():
            continue
        curve = np.clip(p[0], 0.0, 1.0)
        per_class[name] = {"ap": _mean_valid(p), "ap50": _mean_valid(p[0]),
                           "ap75": _mean_valid(p[5]),
                           "pr_curve": {"recall": recall_points,
                                        "precision": [round(float(v), 4) for v in curve]}}
    every = precision[:, :, :, 0, -1]
    return {"map": _mean_valid(every), "map50": _mean_valid(every[0]),
            "map75": _mean_valid(every[5]), "ar_max": _mean_valid(recall[:, :, 0, -1]),
            "max_dets": max_dets,
            "map_100": max(0.0, float(stats[0])), "map50_100": max(0.0, float(stats[1])),
            "map75_100": max(0.0, float(stats[2])), "ar100": max(0.0, float(stats[8])),
            "most_objects": most_objects, "per_class": per_class}


def capacity_notes(report: dict, model_limit: int, predict_limit: int | None = None
                   ) -> list[str]:
    """Lines for a run's record when an evaluated image held more objects than the model
    may return (``detections_per_image``) or prediction keeps (``detection.max_detections``):
    those objects could not all be found, whatever the model learnt."""
    most = max((r.get("most_objects", 0) for r in report.values() if isinstance(r, dict)),
               default=0)
    notes = []
    if most > model_limit:
        notes.append(f"An evaluated image holds {most} objects, but the model returns at most "
                     f"{model_limit} per image (model_options.detections_per_image): the rest "
                     "cannot be found. Raise it (the recommended config sets it from the "
                     "data) and train again.")
    if predict_limit is not None and most > predict_limit:
        notes.append(f"An evaluated image holds {most} objects, but prediction keeps at most "
                     f"{predict_limit} per image (detection.max_detections); raise it.")
    return notes


class DetectionMeter:
    """Accumulates model outputs and targets; ``compute()`` gives flat figures for the
    training history and early stopping (``box_map50``, ..., and ``mask_*`` for instance
    runs); ``report()`` the nested COCO report with per-class figures and PR curves."""

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None,
                 masks: bool = False) -> None:
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else [
            str(i) for i in range(self.num_classes)]
        self.masks = bool(masks)
        self.reset()

    def reset(self) -> None:
        self.images: list[dict] = []
        self.objects: list[dict] = []
        self.results: list[dict] = []
        self._report: dict | None = None

    def add_image(self, width: int, height: int) -> int:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "width": int(width), "height": int(height)})
        return image_id

    def add_ground_truth(self, image_id: int, kind: str, geometry, label: int) -> None:
        """One ground-truth object (label 1..K) through the exporter's COCO conversion."""
        info = self.images[image_id - 1]
        obj = coco_object(kind, geometry, info["width"], info["height"])
        obj.update(id=len(self.objects) + 1, image_id=image_id, category_id=int(label))
        self.objects.append(obj)

    def update(self, outputs: Sequence[dict], targets: Sequence[dict]) -> None:
        """One batch: model outputs (eval mode) and the targets of the same images."""
        for output, target in zip(outputs, targets, strict=True):
            boxes = _cpu(target["boxes"]).float()
            labels = _cpu(target["labels"]).long()
            if "masks" in target:
                height, width = target["masks"].shape[-2:]
            elif "masks" in output and output["masks"].ndim >= 3 and len(output["masks"]):
                height, width = output["masks"].shape[-2:]
            else:
                size = target.get("size")
                height, width = (int(size[0]), int(size[1])) if size is not None else (0, 0)
            image_id = self.add_image(width, height)
            gt_masks = _cpu(target["masks"]).bool().numpy() if self.masks else None
            for i in range(len(labels)):
                if gt_masks is not None:
                    self.add_ground_truth(image_id, "mask", MaskGeom.from_full(gt_masks[i]),
                                          int(labels[i]))
                else:
                    self.add_ground_truth(image_id, "box", xyxy_to_xywh(boxes[i]),
                                          int(labels[i]))
            self.results.extend(detections_to_coco(output, image_id, self.masks, width, height))
        self._report = None

    def merge(self, other: DetectionMeter) -> None:
        """Add another meter's images, ground truth and detections (distributed
        validation gathers every rank's meter; COCOeval then runs on all of them)."""
        offset, first_object = len(self.images), len(self.objects)
        for image in other.images:
            self.images.append({**image, "id": image["id"] + offset})
        for n, obj in enumerate(other.objects, 1):
            self.objects.append({**obj, "id": first_object + n,
                                 "image_id": obj["image_id"] + offset})
        self.results.extend({**r, "image_id": r["image_id"] + offset} for r in other.results)
        self._report = None

    def with_results(self, results: list[dict]) -> DetectionMeter:
        """A meter of this one's images and ground truth with other detections (COCO
        result entries): the same images measured again, e.g. at other thresholds."""
        other = copy.copy(self)
        other.results = list(results)
        other._report = None
        return other

    def ground_truth(self) -> dict:
        """The accumulated ground truth as a COCO dataset dict."""
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(self.class_names)]
        return {"images": list(self.images), "annotations": list(self.objects),
                "categories": categories}

    def report(self) -> dict:
        if self._report is None:
            gt = coco_from_dataset(self.ground_truth())
            out = {"box": evaluate_coco(gt, [{k: v for k, v in r.items() if k != "segmentation"}
                                             for r in self.results], "bbox", self.class_names)}
            if self.masks:
                out["mask"] = evaluate_coco(gt, self.results, "segm", self.class_names)
            self._report = out
        return self._report

    def compute(self) -> dict:
        report = self.report()
        flat = {f"{kind}_{key}": report[kind][key] for kind in report for key in SUMMARY}
        flat["coco"] = report
        return flat
