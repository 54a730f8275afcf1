"""One epoch of training and one pass of evaluation, free of the project store.

Shaped like torchvision's reference scripts: `train_one_epoch` and `evaluate` take a
model, a loader and what to compute; `studio.ml.session` sets them up for a run and
`studio.ml.fit` records the run. The step's objective is a criterion
`criterion(model, images, targets) -> loss` (the task object's, `studio.ml.tasks.registry`),
so a task whose model computes its own losses plugs in without a second loop. Images and
targets may be tensors, lists of tensors or lists of dicts of tensors.

Callbacks: an object or dict with optional `on_batch(info)`, `on_epoch(info)`,
`on_end(summary)` and `on_log(text)`. `on_batch` is called after every optimizer step
with a small dict; a GUI should throttle what it draws. `stop`: a callable returning True
or a `threading.Event`, checked between batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from studio.core.errors import DivergedError
from studio.ml.models.transfer import set_frozen_bn_eval
from studio.ml.schedule import LRSchedule

# per-class and nested figures stay out of the per-epoch history
HISTORY_SKIP = ("confusion_matrix", "support", "coco")


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


def to_device(x, device: torch.device, channels_last: bool = False):
    """Move a tensor, or lists / tuples / dicts of tensors, to `device` (float image
    batches in channels_last when asked)."""
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device, channels_last) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if not isinstance(x, torch.Tensor):
        return x
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4 and x.is_floating_point():
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over trainable weight tensors (biases and norm parameters left out)."""
    terms = [p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim > 1]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def train_one_epoch(model: nn.Module, criterion: Callable, optimizer: torch.optim.Optimizer,
                    loader, device: torch.device, epoch: int, scaler=None, *,
                    schedule: LRSchedule | None = None, amp_dtype: torch.dtype | None = None,
                    channels_last: bool = False, grad_clip: float = 0.0, l1: float = 0.0,
                    batch_augment: Callable | None = None, on_batch: Callable | None = None,
                    stop=None) -> dict:
    """One pass over `loader`. Returns {"loss", "steps", "images", "seconds", "stopped"}.

    With `amp_dtype` the forward pass runs under autocast to it (float16 on CUDA, with
    `scaler`; bfloat16 on a CPU that computes it natively, without one); None: float32.
    Raises TrainingError on a NaN/inf loss.
    """
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
        images = to_device(images, device, channels_last)
        targets = to_device(targets, device)
        if batch_augment is not None:
            images, targets = batch_augment(images, targets)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float16,
                            enabled=amp_dtype is not None):
            loss = criterion(model, images, targets)
        if l1 > 0:
            loss = loss + l1 * l1_penalty(model)
        value = loss.item()
        if not math.isfinite(value):
            raise DivergedError(
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
        images_seen += len(images)
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
             channels_last: bool = False, reduce: Callable | None = None) -> dict:
    """Loss and the meter's metrics over `loader` (`forward` replaces `model(x)`, e.g. a
    sliding window over whole images). `reduce(meter, total, count) -> (meter, total,
    count)` combines the figures of several processes (distributed validation)."""
    model.eval()
    meter.reset()
    forward = forward or model
    total, count = 0.0, 0
    for images, targets in loader:
        images = to_device(images, device, channels_last)
        targets = to_device(targets, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = forward(images)
        if isinstance(logits, torch.Tensor):
            logits = logits.float()
        if loss_fn is not None:
            total += float(loss_fn(logits, targets)) * len(images)
            count += len(images)
        meter.update(logits, targets)
    if reduce is not None:
        meter, total, count = reduce(meter, total, count)
    out = {"loss": total / count if count else float("nan")}
    out.update(meter.compute())
    return out


def is_better(value: float | None, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether `value` improves on `best` by more than `min_delta` in direction `mode`."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def history_record(epoch: int, train: dict, val: dict | None, lr: float) -> dict:
    """One epoch's row of a run's history (train loss, LR, speed, validation figures)."""
    record = {"epoch": epoch, "train_loss": train["loss"], "lr": lr,
              "images_per_s": train["images"] / train["seconds"] if train["seconds"] else 0.0}
    if val is not None:
        record["val_loss"] = val["loss"]
        record.update({k: v for k, v in val.items() if k != "loss" and k not in HISTORY_SKIP})
    return record


def _finite(record: dict, key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def overfit_sign(record: dict, previous: dict | None) -> bool:
    """Whether the validation loss rose while the training loss fell since `previous`.
    False where either epoch lacks a finite figure: detection and instance models have no
    validation loss (NaN), and a stored history, read back on resume, holds NaN as null."""
    if previous is None:
        return False
    now = (_finite(record, "val_loss"), _finite(record, "train_loss"))
    before = (_finite(previous, "val_loss"), _finite(previous, "train_loss"))
    if None in now or None in before:
        return False
    return now[0] > before[0] and now[1] < before[1]
