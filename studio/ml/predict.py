"""Inference with a trained run: class probabilities, or per-pixel probability maps at
each image's original size.

Images reach the network by the same path as in validation (`studio.ml.inference`):
semantic models trained on crops see native-scale tiles (a 4096×4096 image never goes
through the network whole); models trained on resized or letterboxed images get the image
fitted the same way, and their logits are mapped back to the original size.

Test-time augmentation (config "tta": true, or the `tta` argument): the network also sees
the image mirrored by each flip it was trained with (the "hflip" / "vflip" ops of its
augmentation spec, and both together when both are on) and the class probabilities are
averaged. The model then returns log-probabilities instead of logits, so softmax and
argmax still give the averaged probabilities and labels. It costs one forward pass per
view (up to 4) and usually removes some of the noise along thin structures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from studio.core.errors import CheckpointError
from studio.ml.builders import make_model
from studio.ml.checkpoints import (
    CheckpointPayload,
    check_run_checkpoint,
    load_checkpoint,
    run_checkpoint,
)
from studio.ml.config import RunConfig, validate_config
from studio.ml.datasets import decode
from studio.ml.devices import memory_format, resolve_device
from studio.ml.flips import tta_forward
from studio.ml.inference import (
    eval_transform,
    run_flips,
    semantic_logits,
    to_tensor,
)
from studio.ml.tasks import task_of
from studio.ml.tasks.detection.predict import Detections, detect, thresholds, to_detections
from studio.ml.tasks.registry import TASK


@dataclass
class PredictionResult:
    """One image's prediction. Classification: `probabilities` (C,). Semantic:
    `probabilities` (C, H, W) float32 at the original size and `label_map` (H, W) uint8
    (value = position of the class in `class_names`)."""

    image: str
    image_id: int | None
    task: str
    class_names: list[str]
    probabilities: np.ndarray
    label_map: np.ndarray | None = field(default=None, repr=False)

    @property
    def class_index(self) -> int:
        return int(np.argmax(self.probabilities)) if task_of(self.task).image_label else -1

    @property
    def class_name(self) -> str:
        return self.class_names[self.class_index] if task_of(self.task).image_label else ""


# --- loading a run's model -------------------------------------------------------------
def load_run_model(project, run_id: int, which: str = "best", device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, ModelMeta]:
    """The run's model (eval mode, on `device`) and what prediction needs to know about it."""
    path = run_checkpoint(project, run_id, which)
    ckpt = load_checkpoint(path)
    check_run_checkpoint(project, ckpt, path, project.run(run_id).task)
    return _model_and_meta(ckpt, device, run_id, path)


class ModelMeta(TypedDict):
    """What prediction, evaluation and export need to know about a loaded model."""

    run_id: int | None
    checkpoint: str
    task: str
    config: dict[str, Any]  # the run's config as JSON (what windows and files show)
    run_config: RunConfig  # the same, validated and typed (what the engine reads)
    class_names: list[str]
    class_ids: list[int]
    normalize: dict[str, Any]  # {"mean", "std", "source"}
    image_size: int
    channels: int
    resize_policy: str
    epoch: int
    device: str


def _model_and_meta(ckpt: CheckpointPayload, device, run_id: int | None, path: Path
                    ) -> tuple[nn.Module, ModelMeta]:
    cfg = validate_config(ckpt["config"])  # a config stored by any earlier version loads
    channels = cfg.data.channels
    if channels not in (1, 3):
        raise CheckpointError(f"{path} does not say how many channels its model takes "
                              "(its config has channels 'auto'); it was not written by a "
                              "training run.")
    device = resolve_device(device)
    model = make_model(cfg, len(ckpt["class_ids"]), channels)
    model.load_state_dict(ckpt["model"])
    model.to(device, memory_format=memory_format(cfg, device)).eval()  # as in training
    meta: ModelMeta = {
        "run_id": run_id,
        "checkpoint": str(path),
        "task": cfg.task,
        "config": cfg.to_dict(),
        "run_config": cfg,
        "class_names": list(ckpt["class_names"]),
        "class_ids": list(ckpt["class_ids"]),
        "normalize": dict(ckpt["normalize"]),
        "image_size": cfg.data.image_size,
        "channels": channels,
        "resize_policy": cfg.data.resize_policy,
        "epoch": int(ckpt.get("epoch", 0)),
        "device": str(device),
    }
    return model, meta


# --- prediction ------------------------------------------------------------------------
class Predictor:
    """A loaded model plus its preprocessing; `predict_array` on decoded uint8 images."""

    def __init__(self, model: nn.Module, meta: ModelMeta, device: torch.device,
                 tile_overlap: float = 0.25, batch_size: int = 4, tta: bool | None = None
                 ) -> None:
        """`tta`: test-time flip averaging (module docstring); None = the run's config."""
        self.model, self.meta, self.device = model, meta, device
        self.tile_overlap, self.batch_size = tile_overlap, batch_size
        run = meta["run_config"]
        self.tta = run.training.tta if tta is None else bool(tta)
        self._flips = run_flips(run, self.tta)
        self._transform = None

    @classmethod
    def from_run(cls, project, run_id: int, which: str = "best", device="auto",
                 **kwargs) -> Predictor:
        dev = resolve_device(device)
        model, meta = load_run_model(project, run_id, which, dev)
        return cls(model, meta, dev, **kwargs)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if len(self._flips) > 1:
            return tta_forward(self.model, self._flips)(x)
        return self.model(x)

    @torch.no_grad()
    def classify(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) class probabilities."""
        meta = self.meta
        if self._transform is None:
            norm = meta["normalize"]
            self._transform = eval_transform(meta["run_config"], norm["mean"], norm["std"])
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self._transform(img, torch.tensor(0))[0]
                                 for img in images[start:start + self.batch_size]])
            out.append(self._forward(batch).float().softmax(1).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def segment_logits(self, image: np.ndarray) -> torch.Tensor:
        """(1, C, H, W) logits at the image's original size (`studio.ml.inference`)."""
        norm = self.meta["normalize"]
        x = to_tensor(image, norm["mean"], norm["std"]).unsqueeze(0).to(self.device)
        return semantic_logits(self._forward, x, self.meta["run_config"], norm["mean"],
                               norm["std"], self.tile_overlap, self.batch_size)

    @torch.no_grad()
    def detect(self, image: np.ndarray, name: str = "", image_id: int | None = None,
               score_threshold: float | None = None, nms_iou: float | None = None,
               max_detections: int | None = None) -> Detections:
        """Detection / instance runs: the image's objects above the run's score threshold
        (config "detection": score_threshold, nms_iou, max_detections, each overridable
        here, e.g. a low threshold and loose NMS to refilter later; the "crop" policy
        predicts window by window), in the image's own pixels."""
        meta, norm = self.meta, self.meta["normalize"]
        cfg = meta["run_config"]
        det = cfg.detection
        x = to_tensor(image, norm["mean"], norm["std"]).to(self.device)
        score = det.score_threshold if score_threshold is None else score_threshold
        nms = det.nms_iou if nms_iou is None else nms_iou
        most = det.max_detections if max_detections is None else max_detections
        with thresholds(self.model, score, nms, most), \
                TASK[meta["task"]].flip_averaging(self.model, self._flips):
            output = detect(self.model, [x], cfg.data.resize_policy, cfg.data.image_size,
                            det.tile_overlap)[0]
        h, w = image.shape[:2]
        return to_detections(output, meta["class_names"], name, image_id, w, h)

    def classify_image(self, image: np.ndarray, name: str = "", image_id: int | None = None
                       ) -> PredictionResult:
        """Classification runs: the class probabilities of one image."""
        probs = self.classify([image])[0]
        return PredictionResult(name, image_id, self.meta["task"], self.meta["class_names"],
                                probs)

    def segment(self, image: np.ndarray, name: str = "", image_id: int | None = None
                ) -> PredictionResult:
        """Semantic runs: per-pixel class probabilities and the label map of one image."""
        probs = self.segment_logits(image).softmax(1)[0]
        label = probs.argmax(0).to(torch.uint8).cpu().numpy()
        return PredictionResult(name, image_id, self.meta["task"], self.meta["class_names"],
                                probs.cpu().numpy().astype(np.float32), label)

    def predict_array(self, image: np.ndarray, name: str = "", image_id: int | None = None
                      ) -> PredictionResult | Detections:
        """A PredictionResult, or Detections for detection and instance runs: what the
        run's task predicts (`studio.ml.tasks.registry`)."""
        return TASK[self.meta["task"]].predict(self, image, name, image_id)


def predict(project, run_id: int, images: Sequence[int | str | os.PathLike], device="auto",
            batch_size: int = 4, tile_overlap: float = 0.25, which: str = "best",
            tta: bool | None = None) -> list[PredictionResult | Detections]:
    """Predict images given as project image ids or file paths with a run's model
    (`tta`: test-time flip averaging; None = as the run's config says). Detection and
    instance runs give `Detections`."""
    predictor = Predictor.from_run(project, run_id, which, device, tile_overlap=tile_overlap,
                                   batch_size=batch_size, tta=tta)
    results = []
    for item in images:
        if isinstance(item, (int, np.integer)):
            path, image_id = project.image(int(item)).abs_path, int(item)
        else:
            path, image_id = Path(item), None
        image = decode(path, predictor.meta["channels"])
        results.append(predictor.predict_array(image, str(path), image_id))
    return results
