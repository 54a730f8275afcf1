"""Filtering and matching of detections, headless: the score threshold and class-wise NMS
pick the kept detections; they are matched to the ground truth greedily by score as COCO
matches (same class, IoU >= a threshold, each ground-truth object taken once; mask IoU
when both sides have masks); precision, recall and F1 follow from the counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms, box_iou

from studio.core.geometry import MaskGeom


@dataclass
class Objects:
    """Boxes XYXY (N, 4) float32, class indices (N,), scores (N,) (ground truth: nan) and,
    for instance runs, one mask per object cropped to its box."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    masks: list[MaskGeom] | None = None
    width: int = 0
    height: int = 0

    def __len__(self) -> int:
        return len(self.classes)


def filter_detections(raw: Objects, score: float, nms_iou: float) -> np.ndarray:
    """Indices of the detections kept at `score` after class-wise NMS at `nms_iou`,
    highest score first."""
    keep = np.flatnonzero(raw.scores >= score)
    if len(keep) == 0:
        return keep.astype(np.int64)
    order = batched_nms(torch.from_numpy(raw.boxes[keep]), torch.from_numpy(raw.scores[keep]),
                        torch.from_numpy(raw.classes[keep]), float(nms_iou))
    return keep[order.numpy()].astype(np.int64)


def mask_iou(a: MaskGeom, b: MaskGeom) -> float:
    """IoU of two cropped masks (only their overlapping boxes are compared)."""
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    area_a, area_b = a.area, b.area
    inter = 0
    if x1 > x0 and y1 > y0:
        pa = a.bitmap[y0 - a.y:y1 - a.y, x0 - a.x:x1 - a.x]
        pb = b.bitmap[y0 - b.y:y1 - b.y, x0 - b.x:x1 - b.x]
        inter = int(np.count_nonzero(pa & pb))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(pred: Objects, gt: Objects) -> np.ndarray:
    """(N, M) IoU of every prediction with every ground-truth object: of the masks when
    both have them (instance runs), else of the boxes."""
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros((len(pred), len(gt)), np.float32)
    boxes = box_iou(torch.from_numpy(pred.boxes), torch.from_numpy(gt.boxes)).numpy()
    if pred.masks is None or gt.masks is None:
        return boxes.astype(np.float32)
    out = np.zeros_like(boxes, np.float32)
    for i, j in zip(*np.nonzero(boxes > 0), strict=True):
        out[i, j] = mask_iou(pred.masks[i], gt.masks[j])
    return out


@dataclass
class Matching:
    """Kept detections (raw indices, best first) against the ground truth."""

    kept: np.ndarray
    match: np.ndarray  # per kept detection: ground-truth index, or -1 (false positive)
    iou: np.ndarray  # per kept detection: IoU with its match (else best same-class IoU)
    gt_match: np.ndarray  # per ground-truth object: kept position, or -1 (missed)

    @property
    def tp(self) -> int:
        return int(np.count_nonzero(self.match >= 0))

    @property
    def fp(self) -> int:
        return int(np.count_nonzero(self.match < 0))

    @property
    def fn(self) -> int:
        return int(np.count_nonzero(self.gt_match < 0))


def match_detections(pred_classes: np.ndarray, kept: np.ndarray, gt_classes: np.ndarray,
                     ious: np.ndarray, threshold: float) -> Matching:
    """COCO's greedy matching: detections in score order (`kept` is), each takes the
    unmatched ground-truth object of its class it overlaps most, if IoU >= `threshold`."""
    m = len(gt_classes)
    match = np.full(len(kept), -1, np.int64)
    best = np.zeros(len(kept), np.float32)
    gt_match = np.full(m, -1, np.int64)
    for pos, i in enumerate(kept):
        if m == 0:
            break
        same = gt_classes == pred_classes[i]
        row = np.where(same, ious[i], -1.0)
        best[pos] = max(float(row.max()), 0.0)
        row = np.where(gt_match < 0, row, -1.0)
        j = int(row.argmax())
        if row[j] >= threshold:
            match[pos], gt_match[j], best[pos] = j, pos, row[j]
    return Matching(kept, match, best, gt_match)


def counts_figures(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 (nan where undefined) with the counts."""
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    if tp + fp + fn == 0:
        f1 = math.nan  # nothing there and nothing found: no figure to rank by
    else:
        f1 = 2 * tp / (2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
