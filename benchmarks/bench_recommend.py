"""Training with nothing but the recommended config (studio.ml.plan) and the mirror answer.

- sklearn digits, the project and split of bench_digits (70/10/20, stratified), answer
  "no" (a mirrored 2 is no 2): held-out test accuracy, target >= 0.98 (the default
  classification config reaches 0.875: flips on, 64 px, selection on accuracy).
- ISBI 2012 membranes, the project and split of bench_isbi (24 train / 6 held out, no
  validation split), answer "yes": held-out pixel accuracy, target >= 0.92.

Each row set also reports the label offset the plan measured, the plan's main choices
and the minutes of planning plus training.

    python -m benchmarks.bench_recommend [--device cuda] [--only digits|isbi]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import bench_digits, bench_isbi


def _describe(plan) -> str:
    c = plan.config
    flips = [op for op in ("hflip", "vflip", "rotation") if c["augment"][op]["enabled"]]
    return (f"   plan: {c['model']} {c['model_options']}, size {c['image_size']} "
            f"({c['resize_policy']}), batch {c['batch_size']}, {c['epochs']} epochs, loss "
            f"{c['loss']['name']}, select on {c['early_stopping']['metric']}, flips "
            f"{flips or 'none'}, tta {c['tta']}")


def _recommended(build, name: str, mirror: str, device: str, measure):
    """Build the project with `build(folder)`, plan it with `mirror`, train the plan and
    return (plan, fit result, minutes of planning and training, measure(project, plan,
    result)); measured before the temporary project goes."""
    from studio.ml.fit import fit
    from studio.ml.plan import recommend

    with tempfile.TemporaryDirectory() as tmp:
        project = build(Path(tmp) / name)
        try:
            start = time.perf_counter()
            plan = recommend(project, mirror=mirror, device=device)
            print(_describe(plan), flush=True)
            result = fit(project, plan.config)
            minutes = (time.perf_counter() - start) / 60
            return plan, result, minutes, measure(project, plan, result)
        finally:
            project.close()


def _skipped(what: str) -> list[dict]:
    return [{"name": f"recommended {what} skipped (../shared/datasets absent)",
             "value": float("nan"), "unit": "", "target": ""}]


def run_digits(device: str = "cpu") -> list[dict]:
    if not bench_digits.DIGITS.is_dir():
        return _skipped("digits")
    from studio.ml.evaluation import evaluate_run

    _plan, result, minutes, test = _recommended(
        bench_digits.build_project, "digits", "no", device,
        lambda project, plan, result: evaluate_run(project, result.run_id, split="test",
                                                   device=device))
    return [
        {"name": "digits test accuracy, recommended config (mirror: no)",
         "value": test["accuracy"], "unit": "", "target": ">= 0.98"},
        {"name": f"digits plan + training time ({device}, {len(result.history)} epochs)",
         "value": minutes, "unit": "min", "target": ""},
    ]


def run_isbi(device: str = "cpu") -> list[dict]:
    if not bench_isbi.ISBI.is_dir():
        return _skipped("ISBI")
    from studio.ml.evaluation import evaluate_run

    def measure(project, plan, result):
        metrics = evaluate_run(project, result.run_id, split="test", device=device)
        return metrics, bench_isbi.best_shift(
            bench_isbi.held_out_maps(project, result.run_id, device, plan.config["tta"]))

    plan, result, minutes, (metrics, (shift, gain)) = _recommended(
        bench_isbi.build_project, "isbi", "yes", device, measure)
    offset = plan.fingerprint["label_offset"]
    return [
        {"name": "ISBI held-out pixel accuracy, recommended config (mirror: yes)",
         "value": metrics["pixel_accuracy"], "unit": "", "target": ">= 0.92"},
        {"name": "ISBI held-out mean IoU, recommended config", "value": metrics["mean_iou"],
         "unit": "", "target": ""},
        {"name": "ISBI label offset measured by the plan, rows (+ = labels above)",
         "value": float(offset["rows"]), "unit": "px", "target": ""},
        {"name": "ISBI label offset measured by the plan, columns", "value":
         float(offset["cols"]), "unit": "px", "target": ""},
        {"name": "ISBI best 1-px shift of the prediction, rows", "value": float(shift[0]),
         "unit": "px", "target": "0"},
        {"name": "ISBI accuracy gained by that shift", "value": gain, "unit": "", "target": "0"},
        {"name": f"ISBI plan + training time ({device}, {len(result.history)} epochs)",
         "value": minutes, "unit": "min", "target": ""},
    ]


def run(device: str = "cpu", only: str | None = None) -> list[dict]:
    rows: list[dict] = []
    if only in (None, "digits"):
        rows += run_digits(device)
    if only in (None, "isbi"):
        rows += run_isbi(device)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=("digits", "isbi"))
    args = parser.parse_args()
    for row in run(args.device, args.only):
        print(f"{row['name']}: {row['value']:.4g} {row['unit']}  (target {row['target']})",
              flush=True)
