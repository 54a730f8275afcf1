"""studio-cli output of detection and instance runs: COCO metrics and results files."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.core.errors import ValidationError
from studio.core.fileio import atomic_write_json
from studio.core.images import printable_name
from studio.core.jsonutil import dumps_strict
from studio.ml.tasks import task_of

SUMMARY = ("map", "map50", "map75", "ar100")


def print_detection_metrics(metrics: dict, as_json: bool) -> int:
    """`evaluate` of a detection run: {"box": {...}, "mask": {...}} as JSON, or a table."""
    kinds = [k for k in ("box", "mask") if k in metrics]
    if as_json:
        print(dumps_strict({k: metrics[k] for k in kinds}))
        return 0
    flips = ", maps averaged over test-time flips" if metrics.get("tta") else ""
    print(f"{metrics.get('split', '')} split, {metrics.get('images', 0)} images{flips}")
    print(f"{'':6s} " + " ".join(f"{k:>7s}" for k in SUMMARY))
    for kind in kinds:
        print(f"{kind:6s} " + " ".join(f"{metrics[kind][k]:7.4f}" for k in SUMMARY))
    for kind in kinds:
        m = metrics[kind]
        if m.get("max_dets", 100) > 100:
            print(f"  {kind} mAP counted with up to {m['max_dets']} detections per image "
                  f"(most objects in one image: {m['most_objects']}); at COCO's default 100: "
                  f"mAP {m['map_100']:.4f}  mAP50 {m['map50_100']:.4f}  "
                  f"mAP75 {m['map75_100']:.4f}")
    for note in metrics.get("notes", []):
        print(f"note: {note}")
    for kind in kinds:
        for name, figures in metrics[kind]["per_class"].items():
            ap = figures["ap"]
            ap50 = figures["ap50"]
            shown = ("no ground truth" if ap is None else f"AP {ap:.4f}  AP50 {ap50:.4f}")
            print(f"  {kind} {name}: {shown}")
    return 0


def _project_images(project) -> dict[Path, int]:
    return {rec.abs_path.resolve(): rec.id for rec in project.images()}


def predict_detections(project, args: argparse.Namespace, paths: list[Path], out: Path) -> int:
    """`predict` of a detection run: `results.json` (COCO results, loadable with
    pycocotools' loadRes), `images.json` (the image ids it uses: project ids for project
    images, else 1, 2, ... in order) and, with --store, the detections saved as objects."""
    from studio.ml.datasets import decode
    from studio.ml.predict import Predictor
    from studio.ml.tasks.detection.predict import coco_results, store_detections, write_coco_results

    known = _project_images(project)
    ids = [known.get(p.resolve()) for p in paths]
    if args.store:
        missing = [str(p) for p, i in zip(paths, ids, strict=True) if i is None]
        if missing:
            raise ValidationError(f"--store saves objects on project images only; not in the "
                              f"project: {', '.join(missing[:3])}"
                              f"{' ...' if len(missing) > 3 else ''}. Import them first.")
    predictor = Predictor.from_run(project, args.run, args.which, args.device)
    meta = predictor.meta
    detections = []
    for path, image_id in zip(paths, ids, strict=True):
        image = decode(path, meta["channels"])
        detections.append(predictor.detect(image, str(path), image_id))
    numbers = ids if all(i is not None for i in ids) else list(range(1, len(paths) + 1))
    # category ids follow our COCO export: position of the class in the project + 1
    order = {c.id: n + 1 for n, c in enumerate(project.classes())}
    categories = [order[cid] for cid in meta["class_ids"]]
    results = coco_results(detections, numbers, categories)
    target = write_coco_results(out / "results.json", results)
    images = [{"id": n, "file_name": printable_name(Path(d.image).name),
               "path": printable_name(d.image), "width": d.width,
               "height": d.height} for n, d in zip(numbers, detections, strict=True)]
    cats = [{"id": c, "name": name} for c, name in zip(categories, meta["class_names"],
                                                      strict=True)]
    atomic_write_json(out / "images.json", {"images": images, "categories": cats})
    print(f"wrote {target} ({len(results)} detections in {len(paths)} images)")
    if args.store:
        stored = store_detections(project, detections, meta["class_ids"], args.run,
                                  masks=task_of(meta["task"]).has_masks)
        waiting = len(project.waiting_for_review())
        print(f"stored {stored} objects as model:{args.run}; {waiting} image(s) now wait for "
              "review (their model objects do not train until a person marks them done; "
              "objects people drew on them still do)")
    return 0
