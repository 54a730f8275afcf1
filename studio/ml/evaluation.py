"""Metrics of a trained run's model on a split of its project.

Images reach the model by the path validation and prediction use
(`studio.ml.inference`), so the figures here are the figures of what `predict` gives.
A run's evaluation can be kept in its folder (`evaluate_and_store`, done by the process
that trained it) so a window shows it later without running the model (`stored_report`).
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.errors import ConfigError, StudioError
from studio.core.fileio import atomic_write_text
from studio.core.jsonutil import dumps_strict, nan_for_none
from studio.ml.checkpoints import run_checkpoint
from studio.ml.datasets import make_loader
from studio.ml.flips import tta_forward
from studio.ml.inference import run_flips
from studio.ml.loop import evaluate
from studio.ml.predict import load_run_model
from studio.ml.tasks.detection.metrics import capacity_notes
from studio.ml.tasks.registry import TASK


def evaluate_run(project, run_id: int, split: str = "val", which: str = "best",
                 device: str = "auto", batch_size: int | None = None,
                 tta: bool | None = None) -> dict:
    """Metrics of a trained run's model on a split of the project (loss included).

    `tta`: average over the training flips (see `studio.ml.predict`); None = as the run's
    config "tta" says. The result's "tta" tells which was used.
    """
    model, meta = load_run_model(project, run_id, which, device)
    cfg, task = meta["run_config"], TASK[meta["task"]]
    dev = next(model.parameters()).device
    use_tta = cfg.training.tta if tta is None else bool(tta)
    flips = run_flips(cfg, use_tta)
    if task.is_detection:
        return {**_evaluate_detection(project, model, meta, split, batch_size, flips),
                "tta": use_tta}
    source = task.read_split(project, split, meta["class_ids"])
    if not source.samples:
        raise ConfigError(f"The '{split}' split has no labelled images to evaluate on.")
    norm = meta["normalize"]
    full = task.label_map  # label maps are evaluated on whole images, window by window
    dataset = task.eval_dataset(source, cfg, norm, meta["channels"])
    loader = make_loader(dataset, 1 if full else (batch_size or cfg.training.batch_size),
                         train=False, device=dev)
    net = tta_forward(model, flips) if use_tta else model
    num_classes = len(meta["class_ids"])
    result = evaluate(model, loader, dev, task.meter(num_classes),
                      task.criterion(cfg, num_classes).loss_fn.to(dev),
                      forward=task.eval_forward(net, cfg, norm, full) or net)
    result["tta"] = use_tta
    result["images"] = len(source.samples)
    result["split"] = split
    result["class_names"] = meta["class_names"]
    return result


def _evaluate_detection(project, model, meta, split: str, batch_size: int | None,
                        flips: list[tuple[int, ...]]) -> dict:
    """COCO box (and mask) figures: {"box": {...}, "mask": {...}, "images", "split",
    "class_names"} (see `studio.ml.tasks.detection.metrics`)."""
    cfg, task = meta["run_config"], TASK[meta["task"]]
    dev = next(model.parameters()).device
    source = task.read_split(project, split, meta["class_ids"])
    if not source.samples:
        raise ConfigError(f"The '{split}' split has no images to evaluate on.")
    if not source.object_count:
        raise ConfigError(f"The '{split}' split has no objects for {task.name}: mAP needs "
                          "some labelled objects.")
    dataset = task.eval_dataset(source, cfg, meta["normalize"], meta["channels"])
    loader = make_loader(dataset, batch_size or cfg.training.batch_size, train=False,
                         device=dev)
    meter = task.meter(len(meta["class_ids"]), meta["class_names"])
    with task.flip_averaging(model, flips):
        evaluate(model, loader, dev, meter, None,
                 forward=task.eval_forward(model, cfg, meta["normalize"], False))
    result = dict(meter.report())
    result.update(images=len(source.samples), split=split, class_names=meta["class_names"],
                  notes=capacity_notes(result, model.roi_heads.detections_per_img,
                                       int(cfg.detection.max_detections)))
    return result


# --- reports kept with the run ---------------------------------------------------------
def report_path(project, run_id: int, split: str = "val", which: str = "best") -> Path:
    """Where a run keeps its evaluation on `split` with its `which` checkpoint."""
    return project.run_dir(run_id) / f"report_{split}_{which}.json"


def evaluate_and_store(project, run_id: int, split: str = "val", which: str = "best",
                       device: str = "auto") -> dict:
    """`evaluate_run`, and the result kept in the run's folder, tied to the checkpoint it
    measured (a resumed run's new checkpoint makes it stale)."""
    result = evaluate_run(project, run_id, split, which, device)
    stamp = run_checkpoint(project, run_id, which).stat().st_mtime_ns
    atomic_write_text(report_path(project, run_id, split, which),
                      dumps_strict({"checkpoint_mtime_ns": stamp, "report": result}) + "\n")
    return result


def stored_report(project, run_id: int, split: str = "val", which: str = "best"
                  ) -> dict | None:
    """The report `evaluate_and_store` kept, or None when there is none or its checkpoint
    changed since (absent figures come back as NaN)."""
    path = report_path(project, run_id, split, which)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        stamp = run_checkpoint(project, run_id, which).stat().st_mtime_ns
    except (OSError, ValueError, StudioError):
        return None
    if not isinstance(kept, dict) or kept.get("checkpoint_mtime_ns") != stamp:
        return None
    return nan_for_none(kept.get("report"))
