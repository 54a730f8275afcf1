"""The one training loop: `fit(project, config, callbacks, stop, resume)`.

Shaped like torchvision's reference scripts: `train_one_epoch` and `evaluate` do the
work, `fit` sets up data, model, optimizer and schedule, records the run in the project
store, saves `last.pt` / `best.pt` (see `studio.ml.checkpoints`) and reports progress
through callbacks. The CLI calls it, and so does the GUI's worker thread.

Callbacks: an object or dict with optional `on_batch(info)`, `on_epoch(info)`,
`on_end(summary)` and `on_log(text)`. `on_batch` is called after every optimizer step
with a small dict; a GUI should throttle what it draws. `stop`: a callable returning True
or a `threading.Event`, checked between batches; the run then ends "stopped" with a
usable `last.pt`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from studio.core.errors import ConfigError, StudioError, TrainingError
from studio.ml import checkpoints as ckpts
from studio.ml.engine import LRSchedule, TrainingSession, l1_penalty

HISTORY_SKIP = ("confusion_matrix", "support")


@dataclass
class FitResult:
    run_id: int
    status: str  # "finished" | "stopped"
    best: dict
    history: list[dict]
    checkpoints: dict[str, str]  # {"last": path, "best": path} (absolute)
    model: nn.Module | None = field(default=None, repr=False)


class Callbacks:
    """Uniform access to an object or dict of optional callbacks."""

    def __init__(self, target=None) -> None:
        get = target.get if isinstance(target, dict) else (
            lambda name: getattr(target, name, None))
        self.on_batch = get("on_batch") if target is not None else None
        self.on_epoch = get("on_epoch") if target is not None else None
        self.on_end = get("on_end") if target is not None else None
        self.on_log = get("on_log") if target is not None else None

    def log(self, text: str) -> None:
        if self.on_log is not None:
            self.on_log(text)


def stop_requested(stop) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return bool(stop.is_set())
    return bool(stop())


def _to_device(x, device: torch.device, channels_last: bool = False):
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4 and x.is_floating_point():
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_one_epoch(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    loader, device: torch.device, epoch: int, scaler=None, *,
                    schedule: LRSchedule | None = None, amp: bool = False,
                    channels_last: bool = False, grad_clip: float = 0.0, l1: float = 0.0,
                    batch_augment: Callable | None = None, on_batch: Callable | None = None,
                    stop=None) -> dict:
    """One pass over `loader`. Returns {"loss", "steps", "images", "seconds", "stopped"}.

    Raises TrainingError on a NaN/inf loss.
    """
    from studio.ml.models.transfer import set_frozen_bn_eval

    model.train()
    set_frozen_bn_eval(model)
    steps_per_epoch = len(loader)
    total = 0.0
    steps = images_seen = 0
    start = time.perf_counter()
    stopped = stop_requested(stop)
    if stopped:
        return {"loss": float("nan"), "steps": 0, "images": 0, "seconds": 0.0, "stopped": True}
    for images, targets in loader:
        images = _to_device(images, device, channels_last)
        targets = _to_device(targets, device)
        if batch_augment is not None:
            images, targets = batch_augment(images, targets)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
        loss = loss_fn(logits.float(), targets)
        if l1 > 0:
            loss = loss + l1 * l1_penalty(model)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                f"The loss became {value} at epoch {epoch}, step {steps + 1}: training "
                "diverged. Lower the learning rate (or enable gradient clipping) and train again.")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if schedule is not None:
            schedule.step()
        steps += 1
        images_seen += images.shape[0]
        total += value
        if on_batch is not None:
            elapsed = time.perf_counter() - start
            on_batch({"epoch": epoch, "step": steps, "steps_per_epoch": steps_per_epoch,
                      "loss": value, "lr": max(g["lr"] for g in optimizer.param_groups),
                      "images_per_s": images_seen / elapsed if elapsed > 0 else 0.0})
        if stop_requested(stop):
            stopped = True
            break
    seconds = time.perf_counter() - start
    return {"loss": total / steps if steps else float("nan"), "steps": steps,
            "images": images_seen, "seconds": seconds, "stopped": stopped}


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, meter, loss_fn: nn.Module | None
             = None, *, forward: Callable | None = None, amp: bool = False,
             channels_last: bool = False) -> dict:
    """Loss and the meter's metrics over `loader` (`forward` replaces `model(x)`, e.g. a
    sliding window over whole images)."""
    model.eval()
    meter.reset()
    forward = forward or model
    total, count = 0.0, 0
    for images, targets in loader:
        images = _to_device(images, device, channels_last)
        targets = _to_device(targets, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = forward(images)
        logits = logits.float()
        if loss_fn is not None:
            total += float(loss_fn(logits, targets)) * images.shape[0]
            count += images.shape[0]
        meter.update(logits, targets)
    out = {"loss": total / count if count else float("nan")}
    out.update(meter.compute())
    return out


# --- fit -------------------------------------------------------------------------------
def _is_better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _history_record(epoch: int, train: dict, val: dict | None, lr: float) -> dict:
    record = {"epoch": epoch, "train_loss": train["loss"], "lr": lr,
              "images_per_s": train["images"] / train["seconds"] if train["seconds"] else 0.0}
    if val is not None:
        record["val_loss"] = val["loss"]
        record.update({k: v for k, v in val.items() if k != "loss" and k not in HISTORY_SKIP})
    return record


def _resume_source(project, resume) -> tuple[Path, int | None]:
    if isinstance(resume, int) or (isinstance(resume, str) and resume.isdigit()):
        run_id = int(resume)
        return ckpts.run_checkpoint(project, run_id, "last"), run_id
    return Path(resume), None


RESUME_OVERRIDES = ("epochs", "device", "num_workers", "cpu_threads", "early_stopping",
                    "val_every")


def fit(project, config: dict | None, callbacks=None, stop=None, resume=None) -> FitResult:
    """Train a model on the project's labels as `config` says; see the module docstring.

    `resume`: a run id (continues that run from its last.pt) or a checkpoint path (starts a
    new run from it); the checkpoint's config is used, with `config` overriding only
    epochs, device, num_workers, cpu_threads, early_stopping and val_every.
    """
    from studio.ml.config import merge, validate_config
    from studio.ml.datasets import build_run_data

    cb = Callbacks(callbacks)
    ckpt, resume_run = None, None
    if resume is not None:
        path, resume_run = _resume_source(project, resume)
        ckpt = ckpts.load_checkpoint(path)
        overrides = {k: v for k, v in (config or {}).items() if k in RESUME_OVERRIDES}
        config = merge(ckpt["config"], overrides)
    cfg = validate_config(config, project)
    from studio.ml.devices import describe_device, resolve_device, seed_everything

    device = resolve_device(cfg["device"])
    data = build_run_data(
        project, cfg, class_ids=ckpt["class_ids"] if ckpt else None,
        normalize=ckpt["normalize"] if ckpt else None,
        channels=int(ckpt["config"]["channels"]) if ckpt else None)
    cfg["channels"] = data.channels
    cfg["normalize"] = dict(data.normalize)
    if cfg["loss"].get("class_weights") is not None and len(cfg["loss"]["class_weights"]) != len(
            data.class_ids):
        raise ConfigError(f"'loss.class_weights' has {len(cfg['loss']['class_weights'])} values "
                          f"for {len(data.class_ids)} classes ({', '.join(data.class_names)}).")
    if resume_run is not None:
        run_id = resume_run
        record = project.run(run_id)
        history = [h for h in record.history if h.get("epoch", 0) <= int(ckpt["epoch"])]
        project.update_run(run_id, status="running", history=history, error=None,
                           device=describe_device(device), config=cfg)
    else:
        history = []
        run_id = project.create_run(cfg["task"], cfg)
        project.update_run(run_id, status="running", device=describe_device(device))
    restore = seed_everything(int(cfg["seed"]), bool(cfg["deterministic"]))
    threads = torch.get_num_threads()
    if device.type == "cpu" and int(cfg["cpu_threads"]) > 0:
        torch.set_num_threads(int(cfg["cpu_threads"]))
    session = TrainingSession(project, cfg, data, device, run_id, cb, stop, ckpt, history)
    try:
        return session.run()
    except BaseException as exc:
        session.fail(exc)
        if isinstance(exc, StudioError) or not isinstance(exc, Exception):
            raise
        raise TrainingError(f"Training failed: {type(exc).__name__}: {exc}") from exc
    finally:
        torch.set_num_threads(threads)
        restore()


def evaluate_run(project, run_id: int, split: str = "val", which: str = "best",
                 device: str = "auto", batch_size: int | None = None,
                 tta: bool | None = None) -> dict:
    """Metrics of a trained run's model on a split of the project (loss included).

    `tta`: average over the training flips (see `studio.ml.predict`); None = as the run's
    config "tta" says. The result's "tta" tells which was used.
    """
    from studio.ml.datasets import FullImageTransform, ProjectDataset, make_loader, read_split
    from studio.ml.predict import load_run_model, tta_flips, tta_forward

    model, meta = load_run_model(project, run_id, which, device)
    cfg, task = meta["config"], meta["task"]
    dev = next(model.parameters()).device
    source = read_split(project, task, split, meta["class_ids"])
    if not source.samples:
        raise ConfigError(f"The '{split}' split has no labelled images to evaluate on.")
    norm = meta["normalize"]
    full = task == "semantic" and meta["resize_policy"] == "crop"
    if full:
        transform = FullImageTransform(norm["mean"], norm["std"])
    else:
        from studio.ml import augment

        transform = augment.build_transforms(cfg["augment"], task, cfg["image_size"],
                                             train=False, mean=norm["mean"], std=norm["std"],
                                             resize_policy=cfg["resize_policy"])
    dataset = ProjectDataset(source, transform, meta["channels"])
    loader = make_loader(dataset, 1 if full else (batch_size or cfg["batch_size"]), train=False,
                         device=dev)
    use_tta = bool(cfg.get("tta", False) if tta is None else tta)
    net = tta_forward(model, tta_flips(cfg)) if use_tta else model
    result = evaluate(model, loader, dev, _meter(task, len(meta["class_ids"])),
                      _loss(cfg, len(meta["class_ids"])).to(dev),
                      forward=_window_forward(net, cfg) if full else net)
    result["tta"] = use_tta
    result["images"] = len(source.samples)
    result["split"] = split
    result["class_names"] = meta["class_names"]
    return result


def _meter(task: str, num_classes: int):
    from studio.ml.metrics import ClassificationMeter, SegmentationMeter

    if task == "classification":
        return ClassificationMeter(num_classes)
    return SegmentationMeter(num_classes, ignore_index=255)


def _loss(cfg: dict, num_classes: int) -> nn.Module:
    from studio.ml.losses import build_loss

    return build_loss(cfg["loss"], cfg["task"], num_classes, ignore_index=255)


def _window_forward(model: Callable[[torch.Tensor], torch.Tensor], cfg: dict) -> Callable:
    from studio.ml.predict import sliding_window_logits

    size = int(cfg["image_size"])
    return lambda x: torch.cat([sliding_window_logits(model, xi[None], size, 0.25)
                                for xi in x])

