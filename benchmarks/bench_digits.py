"""sklearn digits (1797 8x8 grey images, 10 classes) with the simple CNN.

The class folders `images/<digit>/` are imported as classification tags into a temporary
project, split 70/10/20 (seeded, stratified by class); `fit` trains `simple_cnn` and the
held-out test split is scored. Target: test accuracy >= 0.98.

    python -m benchmarks.bench_digits [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
DIGITS = DATASETS / "sklearn_digits" / "images"

CONFIG = {
    "task": "classification",
    "model": "simple_cnn",
    "model_options": {"depth": 3, "width": 32, "fc": [128], "dropout": 0.3},
    "image_size": 16,
    "epochs": 40,
    "batch_size": 64,
    "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
    # digits are not mirror-symmetric: no flips; small shifts instead
    "augment": {"hflip": {"enabled": False},
                "translate": {"enabled": True, "p": 0.5, "fraction": [0.08, 0.08]}},
    # select on validation loss: on ~180 validation digits accuracy saturates within a few
    # epochs and would keep an early, under-trained model
    "early_stopping": {"enabled": True, "metric": "val_loss", "mode": "min", "patience": 15},
}


def build_project(folder: Path):
    from studio.core.project import Project
    from studio.core.splits import random_split

    project = Project.create(folder, name="digits")
    with project.transaction():
        for digit in range(10):
            cid = project.add_class(str(digit))
            for path in sorted((DIGITS / str(digit)).glob("*.png")):
                iid, created = project.add_image(path, width=8, height=8, channels=1)
                if created:
                    project.add_annotation(iid, cid, "tag", None)
    random_split(project, 0.7, 0.1, 0.2, seed=0, stratify=True)
    return project


def run(device: str = "cpu") -> list[dict]:
    if not DIGITS.is_dir():
        return [{"name": "digits skipped (../shared/datasets absent)", "value": float("nan"),
                 "unit": "", "target": ""}]
    from studio.ml.evaluation import evaluate_run
    from studio.ml.fit import fit

    with tempfile.TemporaryDirectory() as tmp:
        project = build_project(Path(tmp) / "digits")
        try:
            start = time.perf_counter()
            result = fit(project, {**CONFIG, "device": device})
            seconds = time.perf_counter() - start
            test = evaluate_run(project, result.run_id, split="test", device=device)
        finally:
            project.close()
    return [
        {"name": "digits test accuracy (simple_cnn)", "value": test["accuracy"], "unit": "",
         "target": ">= 0.98"},
        {"name": "digits test images", "value": float(test["images"]), "unit": "", "target": ""},
        {"name": f"digits training time ({device}, {len(result.history)} epochs)",
         "value": seconds, "unit": "s", "target": ""},
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    for row in run(parser.parse_args().device):
        print(f"{row['name']}: {row['value']:.4g} {row['unit']}  (target {row['target']})")
