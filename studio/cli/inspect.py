"""studio-cli inspection commands: postprocess (recipes applied as a batch job) and review
(label-error and next-to-label queues). No Qt."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.core.errors import ConfigError
from studio.core.jsonutil import dumps_strict
from studio.core.splits import SPLITS


def register(sub) -> None:
    p = sub.add_parser(
        "postprocess", help="clean a run's segmentations with a recipe",
        description="Predict images with a run and apply a post-processing recipe; write the "
                    "label maps to a folder and/or store them as model annotations (images "
                    "marked for review). Print a complete recipe with --print-default-recipe.")
    p.add_argument("project", nargs="?", help="project folder")
    p.add_argument("--run", type=int, help="run whose predictions are cleaned")
    p.add_argument("--recipe", help="recipe JSON (default: the one saved with the run)")
    p.add_argument("--print-default-recipe", action="store_true",
                   help="print a complete default recipe for --task and exit")
    p.add_argument("--task", default="semantic", help="task of the recipe to print")
    p.add_argument("--split", choices=SPLITS, help="images of this split")
    p.add_argument("--unlabelled", action="store_true",
                   help="only images without labels for the run's task (within --split if given)")
    p.add_argument("--out", help="folder for the label maps (PNG, value = class index)")
    p.add_argument("--store", action="store_true",
                   help="store the masks in the project (source model:RUN, status review); "
                        "images with regions from another source are left alone")
    p.add_argument("--save-recipe", action="store_true",
                   help="also save --recipe with the run (its folder's postprocess.json)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_postprocess)

    p = sub.add_parser(
        "review", help="rank images for a person to check",
        description="label-errors: labelled images whose held-out prediction disagrees most "
                    "with their label (training images get cross-validation folds, whose cost "
                    "is reported). next-to-label: unlabelled images the run is least sure of.")
    p.add_argument("project")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--queue", choices=("label-errors", "next-to-label"), required=True)
    p.add_argument("--split", choices=SPLITS, help="only this split (default: all)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (label-errors)")
    p.add_argument("--epochs", type=int, help="epochs per fold model (default: the run's)")
    p.add_argument("--limit", type=int, help="print only the first N images")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_review)


def _open(folder: str):
    from studio.core.project import Project

    return Project.open(folder)


def cmd_postprocess(args: argparse.Namespace) -> int:
    from studio.ml.postprocess import default_recipe, load_recipe, load_run_recipe

    if args.print_default_recipe:
        print(json.dumps(default_recipe(args.task), indent=2))
        return 0
    if not args.project or args.run is None:
        raise ConfigError("Name the project and the run: studio-cli postprocess PROJECT --run R "
                          "--recipe FILE --out DIR (or --store).")
    if not args.out and not args.store:
        raise ConfigError("Say where the masks go: --out DIR, --store, or both.")
    recipe = load_recipe(args.recipe) if args.recipe else None
    if args.out:  # a file, or a read-only disk, is one line before any work
        from studio.core.formats.staging import make_output_folder

        make_output_folder(Path(args.out), "write label maps into")
    from studio.ml.postprocess.batch import postprocess_images
    from studio.ml.postprocess.recipe import save_run_recipe
    from studio.ml.review import unlabelled_images

    with _open(args.project) as project:
        if recipe is None:
            recipe = load_run_recipe(project, args.run)
            if recipe is None:
                raise ConfigError(f"Run {args.run} has no saved recipe; give one with --recipe "
                                  "(see --print-default-recipe).")
        elif args.save_recipe:
            print(f"saved the recipe with run {args.run}: "
                  f"{save_run_recipe(project, args.run, recipe)}")
        if args.unlabelled:
            from studio.ml.review import run_classes

            task, class_ids, _ = run_classes(project, args.run)
            ids = [r.id for r in unlabelled_images(project, task, class_ids, args.split)]
        elif args.split:
            ids = project.image_ids(split=args.split)
        else:
            raise ConfigError("Choose the images: --split SPLIT, --unlabelled, or both.")
        if not ids:
            raise ConfigError("No images match (check --split / --unlabelled).")

        def progress(done: int, total: int) -> None:
            if done == total or done % 10 == 0:
                print(f"  {done}/{total}", flush=True)

        summary = postprocess_images(project, args.run, ids, recipe, out=args.out,
                                     store=args.store, device=args.device, which=args.which,
                                     progress=progress)
    parts = [f"post-processed {summary.images} image(s)"]
    if args.out:
        parts.append(f"wrote {len(summary.written)} label map(s) to {args.out}")
    if args.store:
        parts.append(f"stored {len(summary.stored)} as model:{args.run} annotations "
                     "(marked for review)")
    if summary.skipped_labelled:
        parts.append(f"left {len(summary.skipped_labelled)} image(s) with other labels alone")
    print("; ".join(parts))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from studio.ml.review import label_error_queue, next_to_label_queue

    with _open(args.project) as project:
        if args.queue == "label-errors":
            queue = label_error_queue(project, args.run, args.split, folds=args.folds,
                                      epochs=args.epochs, device=args.device, which=args.which,
                                      callbacks=None if args.json else _FoldLog())
        else:
            queue = next_to_label_queue(project, args.run, args.split, device=args.device,
                                        which=args.which)
    if args.limit is not None:
        queue.entries = queue.entries[:max(args.limit, 0)]
    if args.json:
        print(dumps_strict(queue.to_dict()))
        return 0
    if queue.cost is not None:
        print(f"held-out predictions: {queue.cost.describe()}")
    if not queue.entries:
        print("no images to rank")
        return 0
    label_errors = args.queue == "label-errors"
    header = f"{'rank':>4}  {'id':>6}  {'score':>6}  "
    header += f"{'given':<12} {'proposed':<12} {'model':<9} file" if label_errors else "file"
    print(header)
    for rank, e in enumerate(queue.entries, start=1):
        line = f"{rank:>4}  {e.image_id:>6}  {e.score:6.3f}  "
        if label_errors:
            line += f"{e.given or '-':<12} {e.proposed or '-':<12} {e.source:<9} "
        print(line + e.file)
    return 0


class _FoldLog:
    """Cross-validation progress: one line per fold model's epoch."""

    def on_epoch(self, info: dict) -> None:
        print(f"  cv fold model: epoch {info['epoch']}  train_loss {info['train_loss']:.4g}",
              flush=True)
