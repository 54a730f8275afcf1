"""LR schedule cost per optimizer step: `studio.ml.schedule.LRSchedule` against torch's
`LambdaLR` driving the same factor function (the reason the project keeps its own class
is written in schedule.py's docstring; this measures the cost side of that decision).

    python -m benchmarks.bench_schedule
"""

from __future__ import annotations

import statistics
import time

import torch

STEPS = 20_000
REPEATS = 5


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    return opt


def _per_step_us(step) -> float:
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - start) / STEPS * 1e6


def run() -> list[dict]:
    from studio.ml.config import validate_config
    from studio.ml.schedule import LRSchedule

    cfg = validate_config({"task": "classification"}).schedule  # cosine with warm-up
    model = torch.nn.Linear(4, 4)
    ours, theirs = [], []
    for _ in range(REPEATS):
        schedule = LRSchedule(_optimizer(model), cfg, 100, STEPS // 100)
        ours.append(_per_step_us(schedule.step))
        other = LRSchedule(_optimizer(model), cfg, 100, STEPS // 100)
        lambda_lr = torch.optim.lr_scheduler.LambdaLR(_optimizer(model), other.factor)
        theirs.append(_per_step_us(lambda_lr.step))
    return [
        {"name": f"LRSchedule.step, median of {REPEATS}", "value": statistics.median(ours),
         "unit": "us", "target": ""},
        {"name": f"LambdaLR.step (same factor), median of {REPEATS}",
         "value": statistics.median(theirs), "unit": "us", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.3g} {row['unit']}")
