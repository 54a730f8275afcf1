"""Optimizers and learning-rate schedules for the training loop.

The schedule is one object stepped after every optimizer step (and told each epoch's
validation figure for "plateau"). The LR of every param group is its `initial_lr` times
a factor that is a pure function of the global step (linear warm-up, then step decay /
cosine / one-cycle) times the plateau scale. Because of that, when the fine-tune phase
rebuilds the optimizer with new param groups, the schedule simply continues at the same
step with the new groups' base LRs: warm-up and decay stay where they were.
One-cycle here cycles the LR only (not the momentum).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from studio.core.errors import ConfigError, TrainingError
from studio.ml.checkpoints import FORMAT, CheckpointWriter
from studio.ml.models import transfer


def build_optimizer(model: nn.Module, cfg: dict, backbone_lr_factor: float = 1.0
                    ) -> torch.optim.Optimizer:
    """The configured optimizer over the model's trainable parameters (backbone / head
    groups, backbone at lr * backbone_lr_factor)."""
    opt = cfg["optimizer"]
    lr, wd = float(opt["lr"]), float(opt.get("weight_decay", 0.0))
    groups = transfer.optimizer_param_groups(model, lr, backbone_lr_factor, wd)
    if not groups:
        raise ConfigError("Every parameter of the model is frozen: nothing to train. Choose a "
                          "freeze mode that leaves the head trainable.")
    for group in groups:
        group["initial_lr"] = group["lr"]
    name = opt["name"]
    if name == "sgd":
        momentum = float(opt.get("momentum", 0.9))
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=wd,
                               nesterov=bool(opt.get("nesterov", False)) and momentum > 0)
    betas = tuple(float(b) for b in opt.get("betas", (0.9, 0.999)))
    eps = float(opt.get("eps", 1e-8))
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=float(opt.get("momentum", 0.0)),
                                   eps=eps, weight_decay=wd)
    raise ConfigError(f"Unknown optimizer {name!r}; use sgd, adam, adamw or rmsprop.")


class LRSchedule:
    """Warm-up + none/step/cosine/plateau/onecycle, stepped per optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: dict, steps_per_epoch: int,
                 epochs: int) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.name = cfg.get("name", "none")
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total_steps = max(1, self.steps_per_epoch * int(epochs))
        self.warmup_steps = int(round(float(cfg.get("warmup_epochs", 0)) * self.steps_per_epoch))
        self.step_count = 0
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self.apply()

    # --- the factor ---------------------------------------------------------------------
    def factor(self, step: int) -> float:
        cfg = self.cfg
        if self.name == "onecycle":
            return self._onecycle(step)
        warm = 1.0
        if self.warmup_steps > 0 and step < self.warmup_steps:
            warm = 0.1 + 0.9 * step / self.warmup_steps
        if self.name == "step":
            epoch = step // self.steps_per_epoch
            return warm * float(cfg.get("gamma", 0.1)) ** (epoch // int(cfg.get("step_size", 10)))
        if self.name == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            floor = float(cfg.get("min_lr_factor", 0.0))
            return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
        return warm * self.plateau_scale  # none, plateau

    def _onecycle(self, step: int) -> float:
        cfg = self.cfg
        start = 1.0 / float(cfg.get("div_factor", 25.0))
        end = start / float(cfg.get("final_div_factor", 1e4))
        up = max(1, int(float(cfg.get("pct_start", 0.3)) * self.total_steps))
        if step < up:
            t = step / up
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * t))
        t = min(1.0, (step - up) / max(1, self.total_steps - up))
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))

    # --- stepping ----------------------------------------------------------------------
    def apply(self) -> None:
        f = self.factor(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * f

    def step(self) -> None:
        self.step_count += 1
        self.apply()

    def epoch_end(self, value: float | None, mode: str = "min") -> bool:
        """Tell the plateau schedule an epoch's figure; True when the LR was reduced."""
        if self.name != "plateau" or value is None or not math.isfinite(value):
            return False
        better = (self.plateau_best is None
                  or (value < self.plateau_best if mode == "min" else value > self.plateau_best))
        if better:
            self.plateau_best, self.plateau_bad = float(value), 0
            return False
        self.plateau_bad += 1
        if self.plateau_bad > int(self.cfg.get("patience", 3)):
            self.plateau_scale *= float(self.cfg.get("factor", 0.5))
            self.plateau_bad = 0
            self.apply()
            return True
        return False

    def rebind(self, optimizer: torch.optim.Optimizer) -> None:
        """Continue the schedule on a rebuilt optimizer (fine-tune phase)."""
        self.optimizer = optimizer
        self.apply()

    def lr(self) -> float:
        return float(max(g["lr"] for g in self.optimizer.param_groups))

    def state_dict(self) -> dict:
        return {"name": self.name, "step_count": self.step_count,
                "plateau_scale": self.plateau_scale, "plateau_best": self.plateau_best,
                "plateau_bad": self.plateau_bad}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state.get("step_count", 0))
        self.plateau_scale = float(state.get("plateau_scale", 1.0))
        best = state.get("plateau_best")
        self.plateau_best = None if best is None else float(best)
        self.plateau_bad = int(state.get("plateau_bad", 0))
        self.apply()


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over trainable weight tensors (biases and norm parameters left out)."""
    terms = [p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim > 1]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def model_options(cfg: dict) -> dict:
    """The model options of a config, with its "dropout" passed on where the model has one."""
    from studio.ml.models.registry import get_spec

    options = dict(cfg.get("model_options") or {})
    spec = get_spec(cfg["model"])
    if cfg.get("dropout") is not None and "dropout" in spec.default_options:
        options.setdefault("dropout", float(cfg["dropout"]))
    return options


def make_model(cfg: dict, num_classes: int, in_channels: int, pretrained=None) -> nn.Module:
    """Build the configured model (pretrained weights only when asked for)."""
    from studio.ml.models.registry import build_model

    return build_model(cfg["model"], num_classes, in_channels=in_channels,
                       pretrained=pretrained, options=model_options(cfg))


# --- the state of one fit() ------------------------------------------------------------
class TrainingSession:
    """Model, optimizer, schedule, loaders and bookkeeping of one `fit` call.

    Epochs are numbered from 1; a checkpoint's "epoch" is the number of completed epochs,
    so a resumed run continues with the next one (a partly done epoch is redone).
    """

    def __init__(self, project, cfg: dict, data, device: torch.device, run_id: int, cb, stop,
                 ckpt: dict | None, history: list[dict]) -> None:
        self.project, self.cfg, self.data, self.device = project, cfg, data, device
        self.run_id, self.cb, self.stop, self.ckpt = run_id, cb, stop, ckpt
        self.history = list(history)
        self.t0 = time.perf_counter()
        self.model: nn.Module | None = None
        self.folder = project.run_dir(run_id)
        self.best: dict = {}
        self.bad_epochs = 0
        self.status = "running"
        self.writer = CheckpointWriter()

    # --- setup --------------------------------------------------------------------------
    def _setup(self) -> None:
        from studio.ml import augment
        from studio.ml.datasets import make_loader
        from studio.ml.devices import memory_format
        from studio.ml.models import transfer
        from studio.ml.train import _loss, _meter, _window_forward

        cfg, data, device, ckpt = self.cfg, self.data, self.device, self.ckpt
        cuda = device.type == "cuda"
        self.amp = bool(cfg["amp"]) and cuda
        self.channels_last = memory_format(cfg, device) == torch.channels_last
        num_classes = len(data.class_ids)
        model = make_model(cfg, num_classes, data.channels, None if ckpt else cfg["pretrained"])
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.start_epoch = int(ckpt["epoch"]) if ckpt else 0
        self.unfrozen = cfg["freeze"]["mode"] == "none" or bool(ckpt and ckpt.get("unfrozen"))
        if not self.unfrozen:
            transfer.freeze(model, cfg["freeze"]["mode"], int(cfg["freeze"]["n_stages"]))
        self.optimizer = build_optimizer(model, cfg, cfg["finetune"]["backbone_lr_factor"])
        self.train_loader = self._train_loader()
        self.val_loader = None
        if data.val is not None:
            self.val_loader = make_loader(
                data.val, 1 if data.full_image_val else cfg["batch_size"], train=False,
                num_workers=cfg["num_workers"], device=device, seed=cfg["seed"])
        self.schedule = LRSchedule(self.optimizer, cfg["scheduler"], len(self.train_loader),
                                   cfg["epochs"])
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.loss_fn = _loss(cfg, num_classes).to(device)
        self.meter = _meter(cfg["task"], num_classes)
        self.forward = _window_forward(model, cfg) if data.full_image_val else None
        batch_augment = augment.BatchAugment(cfg["augment"], cfg["task"], num_classes)
        self.batch_augment = batch_augment if batch_augment.enabled else None
        es = cfg["early_stopping"]
        self.metric, self.mode = es["metric"], es["mode"]
        self.stop_early = bool(es["enabled"])
        if self.val_loader is None and self.metric != "train_loss":
            # The training loss cannot show overfitting, and epoch-to-epoch noise in it
            # would cut a long cosine schedule short: without validation nothing stops early.
            self.cb.log(f"No labelled images in the '{cfg['splits'].get('val')}' split: "
                        "training runs every epoch (no early stopping) and the best model "
                        "is chosen by the training loss.")
            self.metric, self.mode, self.stop_early = "train_loss", "min", False
        self.best = {"metric": self.metric, "mode": self.mode, "value": None, "epoch": None}
        if ckpt is not None:
            self._restore(ckpt)

    def _train_loader(self):
        from studio.ml.datasets import make_loader

        cfg = self.cfg
        return make_loader(self.data.train, cfg["batch_size"], train=True,
                           num_workers=cfg["num_workers"], device=self.device, seed=cfg["seed"])

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
        self.cb.log(f"Resuming after epoch {self.start_epoch} of {self.cfg['epochs']}.")

    # --- checkpoints ------------------------------------------------------------------
    def save(self, name: str, epoch: int) -> None:
        """Queue a checkpoint for the background writer (on disk after `writer.close`)."""
        payload = {
            "format": FORMAT,
            "task": self.cfg["task"],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": int(epoch),
            "config": self.cfg,
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
        return {k: str(self.folder / f"{k}.pt") for k in ("last", "best")
                if (self.folder / f"{k}.pt").is_file()}

    # --- one epoch, retried once at half the batch size on CUDA out-of-memory -----------
    def _train_epoch(self, epoch: int) -> dict:
        from studio.ml.train import train_one_epoch

        for attempt in (0, 1):
            oom = None
            try:
                return train_one_epoch(
                    self.model, self.loss_fn, self.optimizer, self.train_loader, self.device,
                    epoch, self.scaler, schedule=self.schedule, amp=self.amp,
                    channels_last=self.channels_last, grad_clip=float(self.cfg["grad_clip"]),
                    l1=float(self.cfg["l1"]), batch_augment=self.batch_augment,
                    on_batch=self.cb.on_batch, stop=self.stop)
            except torch.cuda.OutOfMemoryError as exc:
                oom = str(exc).splitlines()[0] if str(exc) else "out of memory"
            self.optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            size = self.cfg["batch_size"]
            if attempt == 1 or size <= 1:
                raise TrainingError(
                    f"Out of GPU memory with batch size {size} at image size "
                    f"{self.cfg['image_size']} ({oom}). Lower 'batch_size' or 'image_size', "
                    "or choose a smaller model.")
            self.cfg["batch_size"] = max(1, size // 2)
            self.cb.log(f"Out of GPU memory at batch size {size}; retrying epoch {epoch} with "
                        f"batch size {self.cfg['batch_size']}.")
            self.train_loader = self._train_loader()
            state = self.schedule.state_dict()
            self.schedule = LRSchedule(self.optimizer, self.cfg["scheduler"],
                                       len(self.train_loader), self.cfg["epochs"])
            self.schedule.load_state_dict(state)
            self.schedule.step_count = (epoch - 1) * len(self.train_loader)
            self.schedule.apply()
        raise AssertionError("unreachable")

    def _maybe_unfreeze(self, epoch: int) -> None:
        from studio.ml.models import transfer

        k = int(self.cfg["finetune"]["unfreeze_epoch"])
        if self.unfrozen or k <= 0 or epoch < k:
            return
        transfer.unfreeze_all(self.model)
        self.unfrozen = True
        factor = float(self.cfg["finetune"]["backbone_lr_factor"])
        self.optimizer = build_optimizer(self.model, self.cfg, factor)
        self.schedule.rebind(self.optimizer)
        self.cb.log(f"Epoch {epoch}: unfroze all layers; backbone learning rate x{factor:g}.")

    # --- the loop -----------------------------------------------------------------------
    def run(self):
        from studio.ml.train import FitResult, _history_record, _is_better, evaluate

        self._setup()
        cfg, es = self.cfg, self.cfg["early_stopping"]
        epochs, early, rising = int(cfg["epochs"]), False, 0
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
            if self.val_loader is not None and (epoch % cfg["val_every"] == 0 or epoch == epochs):
                val = evaluate(self.model, self.val_loader, self.device, self.meter, self.loss_fn,
                               forward=self.forward, amp=self.amp,
                               channels_last=self.channels_last)
            record = _history_record(epoch, train, val, self.schedule.lr())
            value = record.get(self.metric)
            if _is_better(value, self.best["value"], self.mode, float(es["min_delta"])):
                self.best = {"metric": self.metric, "mode": self.mode, "value": float(value),
                             "epoch": epoch, "metrics": dict(record)}
                self.bad_epochs = 0
                self.save("best.pt", epoch)
            elif value is not None:
                self.bad_epochs += 1
            if previous is not None and "val_loss" in record and "val_loss" in previous:
                rose = (record["val_loss"] > previous["val_loss"]
                        and record["train_loss"] < previous["train_loss"])
                rising = rising + 1 if rose else 0
            record["overfitting"] = rising >= int(cfg["overfit_patience"])
            record["best"] = {k: self.best[k] for k in ("metric", "value", "epoch")}
            record["elapsed"] = time.perf_counter() - self.t0
            self.schedule.epoch_end(record.get("val_loss", record["train_loss"]), "min")
            previous = record
            self.history.append(record)
            self.project.append_run_epoch(self.run_id, record)
            last_epoch = epoch
            self.save("last.pt", epoch)
            saved_last = epoch
            if self.cb.on_epoch is not None:
                self.cb.on_epoch(dict(record))
            if self.stop_early and self.bad_epochs >= int(es["patience"]):
                early = True
                self.cb.log(f"Early stopping after epoch {epoch}: {self.metric} has not improved "
                            f"for {self.bad_epochs} epochs (best {self.best['value']:.4g} at "
                            f"epoch {self.best['epoch']}).")
                break
        if self.status != "finished" or saved_last != last_epoch:
            # a finished run's last epoch is on its way to disk already; a stopped run's
            # weights moved during the unfinished epoch and are saved as they are now
            self.save("last.pt", last_epoch)
        return self._finish(last_epoch, early, FitResult)

    def _finish(self, last_epoch: int, early: bool, result_type):
        from studio.ml.checkpoints import load_checkpoint, relative_to_project

        self.writer.close()
        best_path = self.folder / "best.pt"
        if self.status == "finished" and self.cfg["early_stopping"]["enabled"] and \
                best_path.is_file():
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
        return result_type(self.run_id, self.status, self.best, self.history, paths, self.model)

    def fail(self, exc: BaseException) -> None:
        """Record a failed run (the last good last.pt stays)."""
        self.writer.close(raise_errors=False)  # the checkpoints queued before the failure
        message = str(exc) or type(exc).__name__
        self.status = "failed"
        self.project.update_run(self.run_id, status="failed", error=message,
                                duration_s=time.perf_counter() - self.t0, ended_at=time.time())
        if self.cb.on_end is not None:
            self.cb.on_end({"run_id": self.run_id, "status": "failed", "error": message,
                            "best": self.best})
