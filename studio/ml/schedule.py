"""Learning-rate schedules for the training loop.

The schedule is one object stepped after every optimizer step (and told each epoch's
validation figure for "plateau"). The LR of every param group is its `initial_lr` times
a factor that is a pure function of the global step (linear warm-up, then step decay /
cosine / one-cycle) times the plateau scale. Because of that, when the fine-tune phase
rebuilds the optimizer with new param groups, the schedule simply continues at the same
step with the new groups' base LRs: warm-up and decay stay where they were.
One-cycle here cycles the LR only (not the momentum).

Why not torch.optim.lr_scheduler: warm-up, step, cosine and one-cycle are each a pure
function of the step, which `LambdaLR(optimizer, factor, last_epoch=step)` could carry
(and rebuild on the fine-tune optimizer). The plateau schedule cannot be chained to it:
`ReduceLROnPlateau` scales the group's current LR, and LambdaLR's next step overwrites
the LR with `initial_lr * factor(step)`, so the reduction is lost after one step. The
plateau scale therefore has to live inside the factor, as its state must live in the
checkpoint (step count, scale, best, bad epochs), and a LambdaLR would only wrap this
class's `factor` again. It would also cost more per step (benchmarks/bench_schedule.py,
2-core shared machine: 1.2 us per `LRSchedule.step` against 5.9 us for `LambdaLR.step`
over the same factor), negligible against a training step either way: the reason to
keep this class is the plateau composition and its checkpointed state.
"""

from __future__ import annotations

import math

import torch

from studio.ml.config import ScheduleConfig


class LRSchedule:
    """Warm-up + none/step/cosine/plateau/onecycle, stepped per optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig,
                 steps_per_epoch: int, epochs: int) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.name = cfg.name
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total_steps = max(1, self.steps_per_epoch * int(epochs))
        self.warmup_steps = int(round(cfg.warmup_epochs * self.steps_per_epoch))
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
            return warm * cfg.gamma ** (epoch // cfg.step_size)
        if self.name == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            floor = cfg.min_lr_factor
            return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
        return warm * self.plateau_scale  # none, plateau

    def _onecycle(self, step: int) -> float:
        cfg = self.cfg
        start = 1.0 / cfg.div_factor
        end = start / cfg.final_div_factor
        up = max(1, int(cfg.pct_start * self.total_steps))
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
        if self.plateau_bad > self.cfg.patience:
            self.plateau_scale *= self.cfg.factor
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

