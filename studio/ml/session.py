"""The life of one training run: model, optimizer, schedule and loaders set up from a
validated config, epochs run through `studio.ml.loop`, early stopping, the fine-tune
phase, a retry at half the batch size on CUDA out-of-memory, checkpoints (`last.pt`,
`best.pt`, written in the background) and the run's record in the project store.

`studio.ml.fit.fit` creates a session and handles how a run ends; nothing else does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from studio.core.errors import OutOfMemoryError, TrainingError
from studio.ml.builders import build_optimizer, make_model
from studio.ml.checkpoints import (
    FORMAT,
    CheckpointPayload,
    CheckpointWriter,
    load_checkpoint,
    relative_to_project,
)
from studio.ml.config import RunConfig
from studio.ml.datasets import make_loader
from studio.ml.devices import autocast_dtype, memory_format
from studio.ml.distributed import Group
from studio.ml.inference import run_flips
from studio.ml.loop import (
    evaluate,
    history_record,
    is_better,
    overfit_sign,
    stop_requested,
    train_one_epoch,
)
from studio.ml.models import transfer
from studio.ml.schedule import LRSchedule
from studio.ml.tasks.registry import TASK


@dataclass
class FitResult:
    """How a run ended, with its history, checkpoints and (in memory) its model."""

    run_id: int
    status: str  # "finished" | "stopped"
    best: dict
    history: list[dict]
    checkpoints: dict[str, str]  # {"last": path, "best": path} (absolute)
    model: nn.Module | None = field(default=None, repr=False)


class TrainingSession:
    """Model, optimizer, schedule, loaders and bookkeeping of one `fit` call.

    Epochs are numbered from 1; a checkpoint's "epoch" is the number of completed epochs,
    so a resumed run continues with the next one (a partly done epoch is redone).
    """

    def __init__(self, project, cfg: RunConfig, data, device: torch.device, run_id: int, cb,
                 stop,
                 ckpt: dict | None, history: list[dict], group: Group | None = None) -> None:
        self.project, self.cfg, self.data, self.device = project, cfg, data, device
        self.run_id, self.cb, self.ckpt, self.group = run_id, cb, ckpt, group
        # rank 0 alone writes (record, checkpoints); a stop on any rank stops them all
        self.main = group is None or group.main
        self.stop = stop if group is None else (lambda: group.any(stop_requested(stop)))
        self.history = list(history)
        self.t0 = time.perf_counter()
        self.model: nn.Module | None = None
        self.folder = project.run_dir(run_id) if self.main else None
        self.best: dict = {}
        self.bad_epochs = 0
        self.status = "running"
        self.writer = CheckpointWriter()
        self.untuned_said = False

    # --- setup --------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg, data, device, ckpt = self.cfg, self.data, self.device, self.ckpt
        self.amp_dtype = autocast_dtype(cfg, device)  # None: float32
        self.channels_last = memory_format(cfg, device) == torch.channels_last
        num_classes = len(data.class_ids)
        model = make_model(cfg, num_classes, data.channels,
                           None if ckpt else cfg.model.pretrained)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.train_model = model  # what the epochs run: DDP's wrapper in a distributed run
        self.start_epoch = int(ckpt["epoch"]) if ckpt else 0
        self.unfrozen = cfg.model.freeze_mode == "none" or bool(ckpt and ckpt.get("unfrozen"))
        if not self.unfrozen:
            transfer.freeze(model, cfg.model.freeze_mode, cfg.model.freeze_stages)
        if self.group is not None:
            self.train_model = self.group.wrap(model)
        self.optimizer = build_optimizer(model, cfg, cfg.model.backbone_lr_factor)
        self.train_loader = self._train_loader()
        self.val_loader = None
        if data.val is not None:
            self.val_loader = make_loader(
                data.val if self.group is None else self.group.shard(data.val),
                1 if data.full_image_val else cfg.training.batch_size, train=False,
                num_workers=cfg.hardware.num_workers, device=device, seed=cfg.training.seed)
        self.schedule = LRSchedule(self.optimizer, cfg.schedule, len(self.train_loader),
                                   cfg.training.epochs)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.task = task = TASK[cfg.task]
        self.criterion = task.criterion(cfg, num_classes).to(device)
        self.meter = task.meter(num_classes, data.class_names)
        self.forward = task.eval_forward(model, cfg, data.normalize, data.full_image_val)
        # the flips evaluation will average over: a split's thresholds are chosen on them
        self.test_flips = run_flips(cfg)
        self.batch_augment = task.batch_augment(cfg, num_classes)
        es = cfg.early_stopping
        self.metric, self.mode = es.metric, es.mode
        self.stop_early = es.enabled
        if self.val_loader is None and self.metric != "train_loss":
            # The training loss cannot show overfitting, and epoch-to-epoch noise in it
            # would cut a long cosine schedule short: without validation nothing stops early.
            self.cb.log(f"No labelled images in the '{cfg.data.val_split}' split: "
                        "training runs every epoch (no early stopping) and the best model "
                        "is chosen by the training loss.")
            self.metric, self.mode, self.stop_early = "train_loss", "min", False
        self.best = {"metric": self.metric, "mode": self.mode, "value": None, "epoch": None}
        if ckpt is not None:
            self._restore(ckpt)

    def _train_loader(self):
        cfg, group = self.cfg, self.group
        seed = cfg.training.seed
        self.sampler = None if group is None else group.train_sampler(self.data.train, seed)
        return make_loader(self.data.train, cfg.training.batch_size, train=True,
                           num_workers=cfg.hardware.num_workers, device=self.device, seed=seed,
                           sampler=self.sampler)

    def _restore(self, ckpt: dict) -> None:
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            self.cb.log(f"The optimizer state could not be restored ({exc}); starting it fresh.")
        self.schedule.load_state_dict(ckpt.get("scheduler") or {})
        self.schedule.step_count = self.start_epoch * len(self.train_loader)
        self.schedule.apply()
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if ckpt.get("best", {}).get("metric") == self.metric:
            self.best = dict(ckpt["best"])
        self.bad_epochs = int(ckpt.get("bad_epochs", 0))
        self.cb.log(f"Resuming after epoch {self.start_epoch} of {self.cfg.training.epochs}.")

    # --- checkpoints ------------------------------------------------------------------
    def save(self, name: str, epoch: int) -> None:
        """Queue a checkpoint for the background writer (on disk after `writer.close`)."""
        if not self.main:
            return
        payload: CheckpointPayload = {
            "format": FORMAT,
            "task": self.cfg.task,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": int(epoch),
            "config": self.cfg.to_dict(),
            "class_names": list(self.data.class_names),
            "class_ids": list(self.data.class_ids),
            "best": self.best,
            "normalize": dict(self.data.normalize),
            "status": self.status,
            "unfrozen": self.unfrozen,
            "bad_epochs": self.bad_epochs,
        }
        self.writer.submit(self.folder / name, payload)

    def checkpoint_paths(self) -> dict[str, str]:
        if self.folder is None:
            return {}
        return {k: str(self.folder / f"{k}.pt") for k in ("last", "best")
                if (self.folder / f"{k}.pt").is_file()}

    # --- one epoch, retried once at half the batch size on CUDA out-of-memory -----------
    def _train_epoch(self, epoch: int) -> dict:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)  # a new shuffle, the same on every rank
        for attempt in (0, 1):
            oom = None
            try:
                result = train_one_epoch(
                    self.train_model, self.criterion, self.optimizer, self.train_loader, self.device,
                    epoch, self.scaler, schedule=self.schedule,
                    amp_dtype=self.amp_dtype,
                    channels_last=self.channels_last, grad_clip=self.cfg.training.grad_clip,
                    l1=self.cfg.training.l1, batch_augment=self.batch_augment,
                    on_batch=self.cb.on_batch, stop=self.stop)
                if self.group is not None:  # one training loss for the run, not one a rank
                    result["loss"] = self.group.mean(result["loss"])
                return result
            except torch.cuda.OutOfMemoryError as exc:
                if self.group is not None:  # the ranks cannot retry apart
                    raise
                oom = str(exc).splitlines()[0] if str(exc) else "out of memory"
            self.optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            training = self.cfg.training
            size = training.batch_size
            if attempt == 1 or size <= 1:
                raise OutOfMemoryError(
                    f"Out of GPU memory with batch size {size} at image size "
                    f"{self.cfg.data.image_size} ({oom}). Lower 'batch_size' or 'image_size', "
                    "or choose a smaller model.")
            training.batch_size = max(1, size // 2)
            self.cb.log(f"Out of GPU memory at batch size {size}; retrying epoch {epoch} with "
                        f"batch size {training.batch_size}.")
            self.train_loader = self._train_loader()
            state = self.schedule.state_dict()
            self.schedule = LRSchedule(self.optimizer, self.cfg.schedule,
                                       len(self.train_loader), training.epochs)
            self.schedule.load_state_dict(state)
            self.schedule.step_count = (epoch - 1) * len(self.train_loader)
            self.schedule.apply()
        raise AssertionError("unreachable")

    def _maybe_unfreeze(self, epoch: int) -> None:
        k = self.cfg.model.unfreeze_epoch
        if self.unfrozen or k <= 0 or epoch < k:
            return
        transfer.unfreeze_all(self.model)
        if self.group is not None:  # DDP must see the newly trainable parameters
            self.train_model = self.group.wrap(self.model)
        self.unfrozen = True
        factor = self.cfg.model.backbone_lr_factor
        self.optimizer = build_optimizer(self.model, self.cfg, factor)
        self.schedule.rebind(self.optimizer)
        self.cb.log(f"Epoch {epoch}: unfroze all layers; backbone learning rate x{factor:g}.")

    # --- the loop -----------------------------------------------------------------------
    def run(self):
        self._setup()
        cfg, es = self.cfg, self.cfg.early_stopping
        epochs, early, rising = cfg.training.epochs, False, 0
        last_epoch, saved_last = self.start_epoch, None
        previous = self.history[-1] if self.history else None
        self.status = "finished"
        for epoch in range(self.start_epoch + 1, epochs + 1):
            self._maybe_unfreeze(epoch)
            train = self._train_epoch(epoch)
            if train["stopped"]:
                self.status = "stopped"
                self.cb.log(f"Stopped during epoch {epoch}.")
                break
            val = None
            if self.val_loader is not None and (epoch % cfg.training.val_every == 0
                                             or epoch == epochs):
                if self.group is not None:
                    self.group.sync_buffers(self.model)
                # a split's thresholds are chosen on one process's validation maps only
                with self.task.split_tuning(self.model if self.group is None else None,
                                            self.test_flips) as kept:
                    val = evaluate(self.model, self.val_loader, self.device, self.meter,
                                   self.criterion.loss_fn,
                                   # validation stays in float32 on the CPU: a split's
                                   # thresholds are chosen on the maps evaluation sees
                                   forward=self.forward,
                                   amp=self.amp_dtype == torch.float16,
                                   channels_last=self.channels_last,
                                   reduce=None if self.group is None else self.group.merged)
                self._tune_split(val, kept)
            record = history_record(epoch, train, val, self.schedule.lr())
            value = record.get(self.metric)
            if is_better(value, self.best["value"], self.mode, es.min_delta):
                self.best = {"metric": self.metric, "mode": self.mode, "value": float(value),
                             "epoch": epoch, "metrics": dict(record)}
                self.bad_epochs = 0
                self.save("best.pt", epoch)
            elif value is not None:
                self.bad_epochs += 1
            if previous is not None and "val_loss" in record and "val_loss" in previous:
                rising = rising + 1 if overfit_sign(record, previous) else 0
            record["overfitting"] = rising >= cfg.training.overfit_patience
            record["best"] = {k: self.best[k] for k in ("metric", "value", "epoch")}
            record["elapsed"] = time.perf_counter() - self.t0
            self.schedule.epoch_end(record.get("val_loss", record["train_loss"]), "min")
            previous = record
            self.history.append(record)
            if self.main:
                self.project.append_run_epoch(self.run_id, record)
            last_epoch = epoch
            self.save("last.pt", epoch)
            saved_last = epoch
            if self.cb.on_epoch is not None:
                self.cb.on_epoch(dict(record))
            if self.stop_early and self.bad_epochs >= es.patience:
                early = True
                self.cb.log(f"Early stopping after epoch {epoch}: {self.metric} has not improved "
                            f"for {self.bad_epochs} epochs (best {self.best['value']:.4g} at "
                            f"epoch {self.best['epoch']}).")
                break
        if self.status != "finished" or saved_last != last_epoch:
            # a finished run's last epoch is on its way to disk already; a stopped run's
            # weights moved during the unfinished epoch and are saved as they are now
            self.save("last.pt", last_epoch)
        return self._finish(last_epoch, early)

    def _tune_split(self, val: dict, kept) -> None:
        """Keep the split thresholds that measure best on this validation (with the
        weights they were chosen for: the checkpoints carry them in their config), and
        the validation figures at them."""
        found = self.task.tune_split(self.model, self.meter, kept, self.metric)
        if found is None:
            if kept is not None and not kept.complete and not self.untuned_said:
                self.untuned_said = True
                self.cb.log("The validation images are too large to keep their maps: the "
                            "split's thresholds stay as configured.")
            return
        params, figures = found
        heads = self.model.roi_heads
        before = (heads.seed_threshold, heads.mask_threshold)
        heads.seed_threshold, heads.mask_threshold = (params["seed_threshold"],
                                                      params["mask_threshold"])
        self.cfg.model.options.update(params)
        if before != (heads.seed_threshold, heads.mask_threshold):
            key = self.metric if self.metric in figures else "mask_map50"
            self.cb.log(f"Split thresholds chosen on validation: seed {heads.seed_threshold:g}, "
                        f"foreground {heads.mask_threshold:g} ({key} {val.get(key, 0):.3f} -> "
                        f"{figures[key]:.3f}).")
        val.update(figures)

    def _finish(self, last_epoch: int, early: bool) -> FitResult:
        self.writer.close()
        if self.group is not None:
            self.group.sync_buffers(self.model)
            self._check_ranks_agree()
        if not self.main:
            return FitResult(self.run_id, self.status, self.best, self.history, {}, self.model)
        best_path = self.folder / "best.pt"
        if self.status == "finished" and self.cfg.early_stopping.enabled and best_path.is_file():
            self.model.load_state_dict(load_checkpoint(best_path, self.device)["model"])
            self.cb.log(f"Restored the weights of the best epoch ({self.best['epoch']}).")
        paths = self.checkpoint_paths()
        duration = time.perf_counter() - self.t0
        self.project.update_run(
            self.run_id, status=self.status, best_metrics=self.best.get("metrics", {}),
            checkpoints={k: relative_to_project(self.project, Path(v)) for k, v in paths.items()},
            duration_s=duration, ended_at=time.time(), error=None)
        summary = {"run_id": self.run_id, "status": self.status, "best": self.best,
                   "epochs_done": last_epoch, "early_stopped": early, "duration_s": duration,
                   "checkpoints": paths}
        if self.cb.on_end is not None:
            self.cb.on_end(summary)
        return FitResult(self.run_id, self.status, self.best, self.history, paths, self.model)

    def _check_ranks_agree(self) -> None:
        """Every rank must end with the same weights, or the run fails (module docstring
        of `studio.ml.distributed`)."""
        agree, sums = self.group.weights_agree(self.model)
        if not agree:
            raise TrainingError(f"The {len(sums)} processes ended with different weights "
                                f"(checksums {sums}): distributed training went out of step. "
                                "Train again; report this if it repeats.")
        self.cb.log(f"Weights identical on all {len(sums)} processes (checksum {sums[0]:.10g}).")

    def end(self, status: str, error: BaseException | None) -> None:
        """Record a run ended by an exception: "failed" with the reason, or "stopped" (Ctrl-C);
        the checkpoints that exist are listed (the last good last.pt stays)."""
        self.writer.close(raise_errors=False)  # the checkpoints queued before the end
        if not self.main:
            return
        message = (str(error) or type(error).__name__) if error is not None else None
        self.status = status
        self.project.update_run(
            self.run_id, status=status, error=message, best_metrics=self.best.get("metrics", {}),
            checkpoints={k: relative_to_project(self.project, Path(v))
                         for k, v in self.checkpoint_paths().items()},
            duration_s=time.perf_counter() - self.t0, ended_at=time.time())
        if self.cb.on_end is not None:
            self.cb.on_end({"run_id": self.run_id, "status": status, "error": message,
                            "best": self.best})
