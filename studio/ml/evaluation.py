"""Metrics of a trained run's model on a split of its project.

Images reach the model by the path validation and prediction use
(`studio.ml.inference`), so the figures here are the figures of what `predict` gives.
"""

from __future__ import annotations

from studio.core.errors import ConfigError
from studio.ml.builders import build_criterion, build_meter
from studio.ml.datasets import ProjectDataset, make_loader, read_split
from studio.ml.inference import eval_transform, tta_flips, tta_forward, window_forward
from studio.ml.loop import evaluate
from studio.ml.predict import load_run_model


def evaluate_run(project, run_id: int, split: str = "val", which: str = "best",
                 device: str = "auto", batch_size: int | None = None,
                 tta: bool | None = None) -> dict:
    """Metrics of a trained run's model on a split of the project (loss included).

    `tta`: average over the training flips (see `studio.ml.predict`); None = as the run's
    config "tta" says. The result's "tta" tells which was used.
    """
    model, meta = load_run_model(project, run_id, which, device)
    cfg, task = meta["config"], meta["task"]
    dev = next(model.parameters()).device
    source = read_split(project, task, split, meta["class_ids"])
    if not source.samples:
        raise ConfigError(f"The '{split}' split has no labelled images to evaluate on.")
    norm = meta["normalize"]
    full = task == "semantic"
    dataset = ProjectDataset(source, eval_transform(cfg, norm["mean"], norm["std"]),
                             meta["channels"])
    loader = make_loader(dataset, 1 if full else (batch_size or cfg["batch_size"]), train=False,
                         device=dev)
    use_tta = bool(cfg.get("tta", False) if tta is None else tta)
    net = tta_forward(model, tta_flips(cfg)) if use_tta else model
    num_classes = len(meta["class_ids"])
    result = evaluate(model, loader, dev, build_meter(task, num_classes),
                      build_criterion(cfg, num_classes).loss_fn.to(dev),
                      forward=window_forward(net, cfg, norm["mean"], norm["std"]) if full else net)
    result["tta"] = use_tta
    result["images"] = len(source.samples)
    result["split"] = split
    result["class_names"] = meta["class_names"]
    return result
