"""Trainer overhead: `fit` against a plain hand-written PyTorch loop.

Both train the same model (same seed) on the same dataset object with the same DataLoader
settings, loss and optimizer, on the same device, for the same number of epochs, without
validation. Timing starts after the first optimizer step (warm-up) and ends after the last
epoch, so `fit`'s per-step callbacks, LR schedule, NaN check, per-epoch checkpoints and
store writes are all inside the measured time. The two run in `REPEATS` back-to-back
pairs, which of them goes first alternating, and the figure is the median of the pairs'
ratios: on a shared machine the speed drifts over minutes, and a pair sees the same
drift on both sides; the best run of each is reported too. Target: fit images/s >= 0.97 x
the plain loop's.

    python -m benchmarks.bench_trainer [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

N_IMAGES = 384  # epochs of ~1 s: long enough that timer noise stays below 1 %
SIZE = 48
EPOCHS = 3
REPEATS = 7
CONFIG = {
    "task": "classification",
    "model": "simple_cnn",
    "model_options": {"depth": 3, "width": 32, "fc": [64]},
    "image_size": SIZE,
    "batch_size": 16,
    "epochs": EPOCHS,
    "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0},
    "scheduler": {"name": "none", "warmup_epochs": 0},
    "augment": {"hflip": {"enabled": False}},
    "early_stopping": {"enabled": False},
    "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    "splits": {"train": "train", "val": None},
    "amp": False,
    "seed": 0,
    # one thread for both loops: on a shared 2-core machine two threads make the timings
    # swing by 30 % from run to run, which would drown the overhead being measured
    "cpu_threads": 1,
}


def build_project(folder: Path):
    import cv2

    from studio.core.project import Project

    project = Project.create(folder, name="bench")
    classes = [project.add_class(name) for name in ("dark", "bright")]
    rng = np.random.default_rng(0)
    (folder / "img").mkdir()
    for i in range(N_IMAGES):
        arr = rng.integers(0, 128, (SIZE, SIZE, 3), dtype=np.uint8) + (100 if i % 2 else 0)
        path = folder / "img" / f"{i:03d}.png"
        cv2.imwrite(str(path), arr)
        iid, _ = project.add_image(path, split="train")
        project.add_annotation(iid, classes[i % 2], "tag", None)
    return project


def plain_loop(project, cfg, device: torch.device) -> tuple[float, float]:
    """The textbook loop on fit's own data pipeline (`cfg`: the validated RunConfig);
    images/s after the first step, by the wall clock and by this process's CPU time."""
    torch.manual_seed(cfg.training.seed)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.hardware.cpu_threads)
    try:
        return _plain_epochs(project, cfg, device)
    finally:
        torch.set_num_threads(threads)  # as fit does: later benchmarks get every core


def _plain_epochs(project, cfg, device: torch.device) -> tuple[float, float]:
    from studio.ml.builders import make_model
    from studio.ml.datasets import build_run_data, make_loader
    from studio.ml.devices import memory_format
    from studio.ml.losses import build_loss

    data = build_run_data(project, cfg)
    loader = make_loader(data.train, cfg.training.batch_size, train=True, device=device,
                         seed=cfg.training.seed)
    model = make_model(cfg, len(data.class_ids), data.channels).to(device)
    layout = memory_format(cfg, device)  # the layout fit uses on this device
    model.to(memory_format=layout)
    loss_fn = build_loss(cfg.loss, "classification", len(data.class_ids)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr, weight_decay=0.0)
    start, images, running = None, 0, 0.0
    for _ in range(cfg.training.epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x = x.contiguous(memory_format=layout)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
            if start is None:
                start, cpu_start = time.perf_counter(), time.process_time()
            else:
                images += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (images / (time.perf_counter() - start),
            images / (time.process_time() - cpu_start))


def fit_loop(project, cfg) -> tuple[float, float]:
    from studio.ml.fit import fit

    marks: dict[str, float] = {}
    counted = {"images": 0}

    def on_batch(info: dict) -> None:
        if "start" not in marks:
            marks["start"], marks["cpu_start"] = time.perf_counter(), time.process_time()
        else:
            counted["images"] += cfg.training.batch_size

    def on_end(summary: dict) -> None:
        marks["end"], marks["cpu_end"] = time.perf_counter(), time.process_time()

    fit(project, cfg, callbacks={"on_batch": on_batch, "on_end": on_end})
    return (counted["images"] / (marks["end"] - marks["start"]),
            counted["images"] / (marks["cpu_end"] - marks["cpu_start"]))


def run(device: str = "cpu") -> list[dict]:
    from studio.ml.config import validate_config
    from studio.ml.devices import resolve_device

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        project = build_project(Path(tmp) / "proj")
        try:
            cfg = validate_config({**CONFIG, "device": device}, project)
            fit_loop(project, cfg)  # warm caches and allocator once
            plain, ours = [], []
            for i in range(REPEATS):
                if i % 2:
                    ours.append(fit_loop(project, cfg))
                    plain.append(plain_loop(project, cfg, dev))
                else:
                    plain.append(plain_loop(project, cfg, dev))
                    ours.append(fit_loop(project, cfg))
        finally:
            project.close()
    wall = statistics.median(f[0] / p[0] for p, f in zip(plain, ours, strict=True))
    cpu = statistics.median(f[1] / p[1] for p, f in zip(plain, ours, strict=True))
    return [
        {"name": f"plain loop ({dev.type}), median of {REPEATS}",
         "value": statistics.median(w for w, _ in plain), "unit": "img/s", "target": ""},
        {"name": f"fit ({dev.type}), median of {REPEATS}",
         "value": statistics.median(w for w, _ in ours), "unit": "img/s", "target": ""},
        {"name": "fit / plain loop throughput (wall clock, median pair)", "value": wall,
         "unit": "", "target": ">= 0.97"},
        # On a shared virtual machine the wall clock also counts time the CPU was lent to
        # others; CPU time counts only the work each loop did, so it isolates the overhead.
        {"name": "fit / plain loop throughput (per CPU second, median pair)", "value": cpu,
         "unit": "", "target": ">= 0.97"},
        # Noise only ever adds time, so each loop's fastest run is the closest to its own
        # cost (the reasoning behind timeit's best-of): the least noisy of the three.
        {"name": f"fit / plain loop throughput (best of {REPEATS} each)",
         "value": max(w for w, _ in ours) / max(w for w, _ in plain), "unit": "",
         "target": ">= 0.97"},
    ]

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    for row in run(parser.parse_args().device):
        print(f"{row['name']}: {row['value']:.4g} {row['unit']}  (target {row['target']})")
