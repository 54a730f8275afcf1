"""Detection and instance segmentation with the default CPU configs, and the loop's speed.

- BCCD (Pascal VOC, its own ImageSets train / val / test split): box mAP50 and
  mAP@[.5:.95] on the test split and the minutes the default detection config takes.
- DSB 2018 nuclei (instance folders): 20 % of the images held out (seeded), 10 % for
  validation, the rest trains; mask mAP50 on the held-out images and the minutes.
- Training-step images/s of `fit` against a plain torchvision loop (the reference
  scripts' `loss = sum(model(images, targets).values())`) on the same model, dataset and
  DataLoader, alternating which goes first; the median of the pairs' ratios (>= 0.97).

Both accuracy runs use the config that `default_config(task, recommended_variant(device))`
gives, with `cpu_threads` 1: on a shared two-core machine a second torch thread mostly
waits for a busy core (it measured several times slower here).

    python -m benchmarks.bench_detection [bccd] [dsb] [speed] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SPEED_IMAGES = 24
SPEED_EPOCHS = 2
SPEED_REPEATS = 3


def _load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def _config(task: str, device: str) -> dict:
    from studio.ml.config import default_config, recommended_variant

    cfg = default_config(task, recommended_variant(device))
    cfg.update(device=device, cpu_threads=1)
    return cfg


def _train_and_test(project, cfg: dict, split: str = "test") -> tuple[dict, float]:
    from studio.ml.evaluation import evaluate_run
    from studio.ml.fit import fit

    start = time.perf_counter()
    result = fit(project, cfg, callbacks={"on_epoch": lambda r: print(
        f"    epoch {r['epoch']}: loss {r['train_loss']:.3f} "
        f"{cfg['early_stopping']['metric']} {r.get(cfg['early_stopping']['metric'], 'n/a')}"
        f"  {r['elapsed'] / 60:.1f} min  ({_load()})", flush=True)})
    minutes = (time.perf_counter() - start) / 60
    return evaluate_run(project, result.run_id, split, device=cfg["device"]), minutes


def bench_bccd(device: str) -> list[dict]:
    from studio.core.formats import import_dataset
    from studio.core.project import Project

    source = DATASETS / "bccd_voc" / "BCCD"
    if not source.is_dir():
        return [{"name": "BCCD detection", "value": float("nan"), "unit": "skipped: no data"}]
    with tempfile.TemporaryDirectory() as tmp, Project.create(Path(tmp) / "bccd") as project:
        import_dataset(project, "voc", source)
        metrics, minutes = _train_and_test(project, _config("detection", device))
    box = metrics["box"]
    return [
        {"name": "BCCD test box mAP50 (default detection config)", "value": box["map50"],
         "unit": "mAP"},
        {"name": "BCCD test box mAP@[.5:.95]", "value": box["map"], "unit": "mAP"},
        {"name": "BCCD training + validation time", "value": minutes, "unit": "min",
         "target": "< 30"},
        *({"name": f"BCCD test AP50 {name}", "value": f["ap50"], "unit": "AP"}
          for name, f in box["per_class"].items()),
    ]


def bench_dsb(device: str) -> list[dict]:
    from studio.core.formats import import_dataset
    from studio.core.project import Project
    from studio.core.splits import random_split

    source = DATASETS / "dsb2018_nuclei" / "stage1_test"
    if not source.is_dir():
        return [{"name": "DSB instance", "value": float("nan"), "unit": "skipped: no data"}]
    with tempfile.TemporaryDirectory() as tmp, Project.create(Path(tmp) / "dsb") as project:
        import_dataset(project, "instances", source)
        random_split(project, 0.7, 0.1, 0.2, seed=0)
        metrics, minutes = _train_and_test(project, _config("instance", device))
    return [
        {"name": "DSB2018 held-out 20% mask mAP50 (default instance config)",
         "value": metrics["mask"]["map50"], "unit": "mAP"},
        {"name": "DSB2018 held-out mask mAP@[.5:.95]", "value": metrics["mask"]["map"],
         "unit": "mAP"},
        {"name": "DSB2018 held-out box mAP50", "value": metrics["box"]["map50"], "unit": "mAP"},
        {"name": "DSB2018 training + validation time", "value": minutes, "unit": "min",
         "target": "< 30"},
    ]


# --- loop speed --------------------------------------------------------------------------
def _speed_project(folder: Path):
    """The first SPEED_IMAGES BCCD training images (all in the train split)."""
    from studio.core.formats import import_dataset
    from studio.core.project import Project

    project = Project.create(folder)
    import_dataset(project, "voc", DATASETS / "bccd_voc" / "BCCD")
    ids = project.image_ids()
    project.set_split(ids, "none")
    project.set_split(ids[:SPEED_IMAGES], "train")
    return project


def _plain_loop(project, cfg, device: torch.device) -> float:
    """torchvision's reference training step on our dataset and DataLoader: images/s."""
    from studio.ml.builders import build_optimizer, make_model
    from studio.ml.datasets import make_loader
    from studio.ml.tasks.detection.data import build_detection_data

    torch.manual_seed(cfg.training.seed)
    data = build_detection_data(project, cfg)
    model = make_model(cfg, len(data.class_ids), data.channels).to(device)
    optimizer = build_optimizer(model, cfg)
    loader = make_loader(data.train, cfg.training.batch_size, train=True, device=device,
                         seed=cfg.training.seed)
    model.train()
    seen, start = 0, None
    for _ in range(SPEED_EPOCHS):
        for images, targets in loader:
            images = [i.to(device) for i in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            loss = sum(model(images, targets).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if start is None:  # the first step warms up
                start = time.perf_counter()
            else:
                seen += len(images)
    return seen / (time.perf_counter() - start)


def _fit_speed(project, cfg) -> float:
    from studio.ml.fit import fit

    state = {"start": None, "seen": 0}

    def on_batch(info: dict) -> None:
        if state["start"] is None:
            state["start"] = time.perf_counter()
        else:
            state["seen"] += cfg.training.batch_size
        state["end"] = time.perf_counter()

    fit(project, cfg, callbacks={"on_batch": on_batch})
    return state["seen"] / (state["end"] - state["start"])


def bench_speed(device: str) -> list[dict]:
    from studio.ml.config import validate_config

    cfg = _config("detection", device)
    cfg.update(epochs=SPEED_EPOCHS, splits={"train": "train", "val": None},
               normalize={"mean": [0.5] * 3, "std": [0.25] * 3},
               early_stopping={"enabled": False}, scheduler={"name": "none",
                                                             "warmup_epochs": 0},
               augment={"hflip": {"enabled": False}, "vflip": {"enabled": False},
                        "brightness": {"enabled": False}, "contrast": {"enabled": False}},
               grad_clip=0.0)
    cfg = validate_config(cfg)
    dev = torch.device(device)
    ratios, ours, plain = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        project = _speed_project(Path(tmp) / "speed")
        torch.set_num_threads(1)
        try:
            for i in range(SPEED_REPEATS):
                order = ("fit", "plain") if i % 2 == 0 else ("plain", "fit")
                got = {}
                for which in order:
                    got[which] = (_fit_speed(project, dict(cfg)) if which == "fit"
                                  else _plain_loop(project, dict(cfg), dev))
                ours.append(got["fit"])
                plain.append(got["plain"])
                ratios.append(got["fit"] / got["plain"])
                print(f"    pair {i + 1}: fit {got['fit']:.3f} img/s, plain "
                      f"{got['plain']:.3f} img/s ({_load()})", flush=True)
        finally:
            project.close()
    return [
        {"name": "fit images/s (Faster R-CNN light, BCCD, median)",
         "value": statistics.median(ours), "unit": "img/s"},
        {"name": "plain torchvision loop images/s (median)", "value": statistics.median(plain),
         "unit": "img/s"},
        {"name": "fit / plain loop (median of pairs)", "value": statistics.median(ratios),
         "unit": "ratio", "target": ">= 0.97"},
    ]


def run(parts=("speed", "bccd", "dsb"), device: str = "cpu") -> list[dict]:
    rows = [{"name": f"CPU {_load()} at start", "value": os.cpu_count() or 0,
             "unit": "cores"}]
    benches = {"bccd": bench_bccd, "dsb": bench_dsb, "speed": bench_speed}
    for part in parts:
        rows += benches[part](device)
    rows.append({"name": f"CPU {_load()} at end", "value": os.cpu_count() or 0,
                 "unit": "cores"})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["speed", "bccd", "dsb"],
                        choices=["speed", "bccd", "dsb"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for row in run(args.parts, args.device):
        print(f"{row['name']}: {row['value']} {row.get('unit', '')} {row.get('target', '')}")
