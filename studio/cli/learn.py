"""studio-cli learning commands: train, evaluate, predict, export-model."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
from pathlib import Path

from studio.core.errors import ConfigError, ExportError, NotFoundError
from studio.core.fileio import atomic_write_bytes, fit_name
from studio.core.jsonutil import dumps_strict
from studio.core.splits import ASSIGNED_SPLITS
from studio.ml.tasks import TASKS, task_of


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on the project's labels",
                       description="Train a model; prints one line per epoch and the run id "
                                   "alone on the last line.")
    p.add_argument("project", nargs="?", help="project folder")
    p.add_argument("--config", help="run config (JSON or YAML); see --print-default-config")
    p.add_argument("--task", choices=TASKS, help="task (when the config does not say)")
    p.add_argument("--print-default-config", action="store_true",
                   help="print a complete default config for --task and exit")
    p.add_argument("--variant", choices=("cpu", "gpu"),
                   help="which default config to print for detection and instance "
                        "(default: the one for --device, else cpu)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--epochs", type=int, help="override the config's number of epochs")
    p.add_argument("--resume", metavar="RUN", help="continue a run (id) or start from a "
                                                   "checkpoint file")
    p.add_argument("--recommend", action="store_true",
                   help="train with the config recommended from the project's data")
    p.add_argument("--mirror", choices=("yes", "no"),
                   help="with --recommend: can an image be mirrored or rotated without "
                        "changing its label? (cells, aerial images: yes; digits, text: no)")
    p.add_argument("--print-config", action="store_true",
                   help="with --recommend: print the config (JSON, stdout) and its reasons "
                        "(stderr) instead of training")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a trained run on a split")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--split", choices=ASSIGNED_SPLITS, default="val")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--device", default="auto")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average over the training flips (default: as the run's config says)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict images with a trained run")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--images", nargs="+", required=True, help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--device", default="auto")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average over the training flips (default: as the run's config says)")
    p.add_argument("--store", action="store_true",
                   help="detection / instance: also save the detections in the project as "
                        "objects with scores (source model:RUN, status review), replacing that "
                        "run's earlier ones; every image must belong to the project")
    p.add_argument("--postprocess", metavar="RECIPE",
                   help="clean the label maps with a post-processing recipe (JSON)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export-model", help="export a trained run's model")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_export)


def _open(folder: str):
    from studio.core.project import Project

    return Project.open(folder)


def _read_config(path: str) -> dict:
    """The config file `path` through the engine's one reader (JSON or YAML, bounded)."""
    from studio.ml.config import load_config_text
    from studio.ml.config.io import MAX_BYTES

    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {p}: {exc.strerror}.") from exc
    return load_config_text(data, str(p))


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


class _Progress:
    """Epoch lines, plus a batch line at most every `every_s` seconds."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.last = time.monotonic()

    def on_batch(self, info: dict) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(f"  epoch {info['epoch']} step {info['step']}/{info['steps_per_epoch']}  "
                  f"loss {info['loss']:.4g}  lr {info['lr']:.3g}  "
                  f"{info['images_per_s']:.1f} img/s", flush=True)

    def on_epoch(self, info: dict) -> None:
        self.last = time.monotonic()
        parts = [f"epoch {info['epoch']}", f"train_loss {_fmt(info['train_loss'])}"]
        for key in ("val_loss", "accuracy", "macro_f1", "pixel_accuracy", "mean_iou",
                    "mean_dice", "box_map50", "box_map", "mask_map50", "mask_map"):
            if key in info:
                parts.append(f"{key} {_fmt(info[key])}")
        best = info.get("best") or {}
        if best.get("value") is not None:
            parts.append(f"best {best['metric']} {_fmt(best['value'])} @{best['epoch']}")
        if info.get("overfitting"):
            parts.append("OVERFITTING?")
        parts.append(f"{info['elapsed']:.1f}s")
        print("  ".join(parts), flush=True)

    def on_log(self, text: str) -> None:
        print(text, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from studio.ml.config import default_config

    if args.print_default_config:
        from studio.ml.config import recommended_variant

        variant = args.variant or recommended_variant(args.device or "cpu")
        cfg = default_config(args.task or "classification", variant)
        print(json.dumps(cfg, indent=2))
        return 0
    if not args.project:
        raise ConfigError("Name the project folder: studio-cli train PROJECT --config FILE.")
    if args.recommend:
        config = _recommended_config(args)
        if config is None:  # printed, not trained
            return 0
    elif args.print_config or args.mirror:
        raise ConfigError("--print-config and --mirror go with --recommend.")
    else:
        config = _read_config(args.config) if args.config else {}
    if args.task:
        if config.get("task", args.task) != args.task:
            raise ConfigError(f"--task {args.task} contradicts the config's task "
                              f"{config['task']!r}.")
        config["task"] = args.task
    if not config and args.resume is None:
        raise ConfigError("Give a config (--config FILE) or at least --task; print a complete "
                          "one with --print-default-config.")
    if args.device:
        config["device"] = args.device
    if args.epochs is not None:
        config["epochs"] = args.epochs
    from studio.core.project import Project
    from studio.ml.distributed import is_secondary_rank
    from studio.ml.fit import fit

    resume = args.resume
    if resume is not None and str(resume).isdigit():
        resume = int(resume)
    if is_secondary_rank():  # under torchrun: rank 0 holds the project and writes the run
        with Project.open_for_reading(args.project) as project:
            fit(project, config, resume=resume)
        return 0
    with _open(args.project) as project:
        if resume is not None and not isinstance(resume, int):
            from studio.ml.checkpoints import check_resume_checkpoint, load_checkpoint

            check_resume_checkpoint(project, load_checkpoint(Path(resume)), Path(resume),
                                    config.get("task"))
        result = fit(project, config, callbacks=_Progress(), resume=resume)
        best = result.best
        if best.get("value") is not None:
            print(f"{result.status}: best {best['metric']} {_fmt(best['value'])} at epoch "
                  f"{best['epoch']}", flush=True)
        else:
            print(result.status, flush=True)
        print(result.run_id, flush=True)
    return 0


def _recommended_config(args: argparse.Namespace) -> dict | None:
    """train --recommend: the config planned from the project's data, its reasons printed
    (on stderr with --print-config, which prints the config on stdout and returns None)."""
    import sys

    from studio.core.project import Project
    from studio.ml.distributed import is_secondary_rank
    from studio.ml.plan import recommend

    if args.config or args.resume is not None:
        raise ConfigError("--recommend makes the whole config; leave out --config and --resume "
                          "(or print it with --print-config, edit it and pass it as --config).")
    # read-only: under torchrun every rank plans while rank 0 holds the project
    with Project.open_for_reading(args.project) as project:
        plan = recommend(project, task=args.task, mirror=args.mirror,
                         device=args.device or "auto")
    if args.epochs is not None:
        plan.config["epochs"] = args.epochs
        plan.reasons["epochs"] = f"{args.epochs}: given with --epochs."
    if args.print_config:
        print(json.dumps(plan.config, indent=2))
        print(plan.explain(), file=sys.stderr)
        return None
    if not is_secondary_rank():
        print(plan.explain(), flush=True)
    return plan.config


def cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.ml.evaluation import evaluate_run

    with _open(args.project) as project:
        metrics = evaluate_run(project, args.run, split=args.split, which=args.which,
                               device=args.device, tta=args.tta)
    if "box" in metrics:
        from studio.cli.detection import print_detection_metrics

        return print_detection_metrics(metrics, args.json)
    if args.json:
        print(dumps_strict(metrics))
        return 0
    names = metrics.get("class_names", [])
    for key, value in metrics.items():
        if key in ("class_names", "confusion_matrix"):
            continue
        if isinstance(value, list) and len(value) == len(names):
            value = ", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, value, strict=True))
        print(f"{key:18s} {_fmt(value)}")
    return 0


def _image_paths(items: list[str]) -> list[Path]:
    from studio.core.images import is_image_file

    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
        elif p.is_file():
            paths.append(p)
        else:
            raise NotFoundError(f"Image not found: {p}; check the path.")
    if not paths:
        raise NotFoundError("No images to predict: the folders given hold no image files.")
    return paths


def cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from studio.ml.predict import predict

    paths = _image_paths(args.images)
    recipe = None
    if args.postprocess:
        from studio.ml.postprocess import load_recipe

        recipe = load_recipe(args.postprocess)  # a bad recipe fails before any prediction
    from studio.core.formats.staging import make_output_folder

    out = make_output_folder(Path(args.out), "write predictions into")
    with _open(args.project) as project:
        if task_of(project.run(args.run).task).is_detection:
            from studio.cli.detection import predict_detections

            if recipe is not None:
                raise ConfigError("--postprocess applies to semantic segmentation runs; this "
                                  "run detects objects.")
            return predict_detections(project, args, paths, out)
        if args.store:
            raise ConfigError("--store saves detections; this run is not a detection or "
                              "instance run.")
        results = predict(project, args.run, paths, device=args.device, which=args.which,
                          tta=args.tta)
    if not results:
        return 0
    if task_of(results[0].task).image_label:
        if recipe is not None:
            raise ConfigError("--postprocess applies to semantic segmentation runs; this run "
                              "classifies.")
        buf = io.StringIO()
        writer = csv.writer(buf)
        names = results[0].class_names
        writer.writerow(["image", "class", "probability", *[f"p_{n}" for n in names]])
        for r in results:
            writer.writerow([r.image, r.class_name, f"{r.probabilities[r.class_index]:.6f}",
                             *[f"{p:.6f}" for p in r.probabilities]])
        target = out / "predictions.csv"
        # names that are not UTF-8 on disk are written back as the bytes they are
        atomic_write_bytes(target, buf.getvalue().encode("utf-8", "surrogateescape"))
        print(f"wrote {target} ({len(results)} images)")
        return 0
    if recipe is not None:
        from studio.ml.postprocess.batch import postprocess_result

        for r in results:
            r.label_map = postprocess_result(recipe, r)
    used: set[str] = set()
    for r in results:
        stem = Path(r.image).stem
        name = stem
        n = 1
        while name in used:
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        ok, buf = cv2.imencode(".png", r.label_map)
        if not ok:
            raise ExportError(f"Could not encode the mask of {r.image} as PNG.")
        atomic_write_bytes(out / fit_name(f"{name}.png"), buf.tobytes())
    print(f"wrote {len(results)} label maps (value = class index: "
          f"{', '.join(f'{i}={n}' for i, n in enumerate(results[0].class_names))}) to {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.ml.export import export_model

    with _open(args.project) as project:
        path = export_model(project, args.run, args.format, args.out, which=args.which)
    print(f"wrote {path}")
    return 0

