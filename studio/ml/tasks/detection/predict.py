"""Detection and instance prediction: thresholds, tiling, COCO results, stored objects.

Policies (the run's ``resize_policy``): ``resize`` hands the whole image to the model,
whose own transform scales it to ``min_size`` / ``max_size``; ``crop`` (models trained
on ``image_size`` windows at native scale) predicts window by window, each window padded
to ``image_size`` so the model sees the scale it was trained at. A window keeps only the
detections whose box centre lies in its own share of the overlap, so an object is
reported by exactly one window; a final class-wise NMS removes what is left of doubles.

Thresholds (config ``detection``): ``score_threshold``, ``nms_iou`` (the model's
per-class NMS) and ``max_detections`` per image.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from studio.core.errors import ValidationError
from studio.core.fileio import atomic_write_bytes
from studio.core.geometry import MaskGeom
from studio.ml.config import RunConfig
from studio.ml.inference import gaussian_weights, window_positions
from studio.ml.tasks.detection.metrics import detections_to_coco, prediction_masks

# validation and evaluation score every detection down to this (COCO mAP needs the tail)
EVAL_SCORE_THRESHOLD = 0.05


@dataclass
class Detections:
    """One image's detections: boxes XYXY (N, 4) in pixels, scores, class indices 0..K-1
    (positions in ``class_names``) and, for instance runs, bool masks (N, H, W)."""

    image: str
    image_id: int | None
    class_names: list[str]
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: np.ndarray | None = field(default=None, repr=False)
    width: int = 0
    height: int = 0

    def __len__(self) -> int:
        return len(self.scores)


@contextlib.contextmanager
def thresholds(model: nn.Module, score: float, nms_iou: float, max_detections: int):
    """Set the model's score threshold, NMS IoU and detections per image for a while."""
    heads = model.roi_heads
    old = (heads.score_thresh, heads.nms_thresh, heads.detections_per_img)
    heads.score_thresh, heads.nms_thresh = float(score), float(nms_iou)
    heads.detections_per_img = int(max_detections)
    try:
        yield model
    finally:
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = old


def _empty_like(output: dict, height: int, width: int) -> dict:
    out = {k: v[:0] for k, v in output.items()}
    if "masks" in output:
        out["masks"] = output["masks"].new_zeros((0, 1, height, width))
    return out


def tiled_detect(model: nn.Module, image: torch.Tensor, window: int, overlap: float,
                 nms_iou: float = 0.5, max_detections: int = 100) -> dict:
    """Detections of one (C, H, W) image predicted ``window`` x ``window`` tile by tile."""
    _, height, width = image.shape
    ys, xs = window_positions(height, window, overlap), window_positions(width, window, overlap)
    parts = []
    for j, y0 in enumerate(ys):
        for i, x0 in enumerate(xs):
            tile = image[:, y0:y0 + window, x0:x0 + window]
            th, tw = tile.shape[-2:]
            if th < window or tw < window:
                tile = nn.functional.pad(tile, (0, window - tw, 0, window - th))
            out = model([tile])[0]
            boxes = out["boxes"]
            cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            # this tile's share: from the middle of the overlap with the previous tile to
            # the middle of the overlap with the next one
            lo_x = 0 if i == 0 else (window - (x0 - xs[i - 1])) / 2
            lo_y = 0 if j == 0 else (window - (y0 - ys[j - 1])) / 2
            hi_x = tw if i == len(xs) - 1 else tw - (window - (xs[i + 1] - x0)) / 2
            hi_y = th if j == len(ys) - 1 else th - (window - (ys[j + 1] - y0)) / 2
            keep = (cx >= lo_x) & (cx < hi_x) & (cy >= lo_y) & (cy < hi_y)
            out = {k: v[keep] for k, v in out.items()}
            out["boxes"] = out["boxes"] + out["boxes"].new_tensor([x0, y0, x0, y0])
            out["boxes"][:, 0::2] = out["boxes"][:, 0::2].clamp(0, width)
            out["boxes"][:, 1::2] = out["boxes"][:, 1::2].clamp(0, height)
            if "masks" in out:
                full = out["masks"].new_zeros((len(out["masks"]), 1, height, width))
                full[:, :, y0:y0 + th, x0:x0 + tw] = out["masks"][:, :, :th, :tw]
                out["masks"] = full
            parts.append(out)
    merged = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    if not len(merged["scores"]):
        return _empty_like(merged, height, width)
    keep = batched_nms(merged["boxes"], merged["scores"], merged["labels"], nms_iou)
    keep = keep[:max_detections]
    return {k: v[keep] for k, v in merged.items()}


def detect(model: nn.Module, images: Sequence[torch.Tensor], policy: str = "resize",
           window: int = 0, overlap: float = 0.25) -> list[dict]:
    """Model outputs for normalised (C, H, W) images, in each image's own pixels."""
    if policy == "crop" and window > 0:
        if hasattr(model, "detect_tiled"):  # per-pixel maps: stitched, then split once
            bump = gaussian_weights(window, window)
            return [model.detect_tiled(image, window,
                                       window_positions(image.shape[-2], window, overlap),
                                       window_positions(image.shape[-1], window, overlap),
                                       bump) for image in images]
        heads = model.roi_heads
        return [tiled_detect(model, image, window, overlap, heads.nms_thresh,
                             heads.detections_per_img) for image in images]
    return model(list(images))


def evaluation_forward(model: nn.Module, cfg: RunConfig):
    """`images -> outputs` as validation and evaluation run it: the run's policy, NMS IoU
    and detections per image, scores down to EVAL_SCORE_THRESHOLD (mAP needs the tail)."""
    det = cfg.detection
    policy, size, overlap = cfg.data.resize_policy, cfg.data.image_size, det.tile_overlap

    def forward(images):
        with thresholds(model, EVAL_SCORE_THRESHOLD, det.nms_iou,
                        model.roi_heads.detections_per_img):
            return detect(model, images, policy, size, overlap)

    return forward


def to_detections(output: dict, class_names: Sequence[str], image: str = "",
                  image_id: int | None = None, width: int = 0, height: int = 0) -> Detections:
    """A model output (labels 1..K) as Detections (class indices 0..K-1), on the CPU."""
    masks = prediction_masks(output["masks"]) if "masks" in output else None
    return Detections(image, image_id, list(class_names),
                      output["boxes"].detach().float().cpu().numpy(),
                      output["scores"].detach().float().cpu().numpy(),
                      output["labels"].detach().cpu().numpy().astype(np.int64) - 1, masks,
                      width, height)


# --- COCO results and stored objects ---------------------------------------------------
def coco_results(detections: Sequence[Detections], image_ids: Sequence[int] | None = None,
                 category_ids: Sequence[int] | None = None) -> list[dict]:
    """COCO result entries of many images (``image_ids`` default: each result's image id,
    else its position + 1; ``category_ids[i]`` names class index i, default i + 1)."""
    out = []
    for n, det in enumerate(detections):
        image_id = image_ids[n] if image_ids is not None else (
            det.image_id if det.image_id is not None else n + 1)
        output = {"boxes": torch.from_numpy(det.boxes), "scores": torch.from_numpy(det.scores),
                  "labels": torch.from_numpy(det.classes + 1)}
        if det.masks is not None:
            output["masks"] = torch.from_numpy(det.masks)
        out.extend(detections_to_coco(output, image_id, det.masks is not None, det.width,
                                      det.height, category_ids))
    return out


def write_coco_results(path: str | Path, results: list[dict]) -> Path:
    """Write COCO results JSON (a list of detections, as pycocotools' loadRes reads)."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(results).encode("utf-8"))
    return path


def store_detections(project, detections: Sequence[Detections], class_ids: Sequence[int],
                     run_id: int, masks: bool) -> int:
    """Save detections of project images as objects with scores, source ``model:<run>``,
    and mark the images that received any for review (training leaves them out until a
    person has checked them).

    Earlier objects of the same run on those images are replaced (predicting twice does
    not double them). Detections of images outside the project are refused.
    """
    source = f"model:{run_id}"
    per_image: dict[int, list[dict]] = {}
    for det in detections:
        if det.image_id is None:
            raise ValidationError(f"'{det.image}' is not an image of this project; only project "
                              "images can receive predicted objects.")
        rows = per_image.setdefault(int(det.image_id), [])
        for i in range(len(det)):
            class_id = int(class_ids[int(det.classes[i])])
            if masks and det.masks is not None:
                geom = MaskGeom.from_full(det.masks[i])
                if geom.area == 0:
                    continue
                rows.append(dict(class_id=class_id, kind="mask", geometry=geom,
                                 score=float(det.scores[i])))
            else:
                x1, y1, x2, y2 = (float(v) for v in det.boxes[i])
                rows.append(dict(class_id=class_id, kind="box",
                                 geometry=(x1, y1, x2 - x1, y2 - y1),
                                 score=float(det.scores[i])))
    with project.transaction():
        return sum(len(project.replace_model_annotations(image_id, source, rows))
                   for image_id, rows in per_image.items())
