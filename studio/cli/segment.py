"""studio-cli models (list | pull NAME | import FILE) and segment (boxes to masks).

Models are downloaded only by `models pull`; `segment` never downloads: without the
model's files it says which files are missing and where they go.
"""

from __future__ import annotations

import argparse
import sys
import threading

from studio.core.errors import NotFoundError, ValidationError


def register(sub) -> None:
    p = sub.add_parser("models", help="promptable segmentation models: list, pull, import")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = msub.add_parser("list", help="the models offered, their size, licence and state")
    q.set_defaults(func=cmd_models_list)
    q = msub.add_parser("pull", help="download a model's files (SHA-256 checked; a mirror "
                        "can be named in OSAM_BLOB_ENDPOINT)")
    q.add_argument("name")
    q.set_defaults(func=cmd_models_pull)
    q = msub.add_parser("import", help="install a model file got elsewhere (hash checked)")
    q.add_argument("file", nargs="+")
    q.add_argument("--model", help="the model the file belongs to (default: found by hash)")
    q.set_defaults(func=cmd_models_import)

    p = sub.add_parser("segment", help="boxes to masks with a promptable model")
    p.add_argument("project")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--boxes-to-masks", action="store_true",
                      help="every box becomes a mask object (marked for review)")
    what.add_argument("--revert-last", action="store_true",
                      help="take back the last boxes-to-masks job")
    p.add_argument("--model", default=None, help="model name (default: efficientsam:10m)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (as onnxruntime offers)")
    p.add_argument("--images", nargs="+", default=None,
                   help="image ids or file names (default: every image with a box)")
    p.set_defaults(func=cmd_segment)


def cmd_models_list(args: argparse.Namespace) -> int:
    from studio.ml.segment import DEFAULT_MODEL, list_models
    from studio.ml.segment.weights import is_installed, weights_folder

    print(f"{'name':22s} {'size':>11s}  {'state':9s}  licence")
    for spec in list_models():
        state = "installed" if is_installed(spec) else "-"
        mark = " (default)" if spec.name == DEFAULT_MODEL else ""
        print(f"{spec.name:22s} {spec.size_text:>11s}  {state:9s}  {spec.licence}  "
              f"{spec.title}{mark}")
    print(f"files in {weights_folder()}")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from studio.ml.segment import get_model_spec
    from studio.ml.segment.weights import pull

    spec = get_model_spec(args.name)
    print(f"downloading {spec.title} ({spec.size_text}, licence {spec.licence})")
    last = {}

    def progress(name: str, done: int, total: int | None) -> None:
        pct = int(100 * done / total) if total else -1
        if last.get(name) != pct and (pct % 10 == 0 or pct < 0):
            last[name] = pct
            print(f"  {name}: {done / 1e6:.1f} MB" + (f" ({pct} %)" if pct >= 0 else ""),
                  file=sys.stderr)

    cancel = threading.Event()
    try:
        pull(spec, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    print(f"installed {spec.name}")
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    from studio.ml.segment.weights import install_from_file, is_installed

    for path in args.file:
        spec, dest = install_from_file(path, args.model)
        state = "complete" if is_installed(spec) else "more files needed"
        print(f"installed {path} as {dest.name} of {spec.name} (SHA-256 checked; {state})")
    return 0


def _image_ids(project, wanted: list[str] | None) -> list[int] | None:
    if wanted is None:
        return None
    by_name: dict[str, list[int]] = {}
    for rec in project.images():
        by_name.setdefault(rec.name, []).append(rec.id)
    ids = []
    for w in wanted:
        if w.isdigit():
            project.image(int(w))  # NotFoundError names it
            ids.append(int(w))
        elif w in by_name:
            ids.extend(by_name[w])
        else:
            raise NotFoundError(f"No image {w!r} in the project; give image ids or file names "
                                "(studio-cli info lists them).")
    return ids


def cmd_segment(args: argparse.Namespace) -> int:
    from studio.core.project import Project
    from studio.ml.segment import DEFAULT_MODEL, load_model
    from studio.ml.segment.batch import boxes_to_masks, last_job, revert_job

    with Project.open(args.project) as project:
        if args.revert_last:
            job = last_job(project)
            removed = revert_job(project, job)
            print(f"reverted the job of {job.model}: {removed} mask(s) removed, "
                  f"{len(job.old_status)} image status(es) restored")
            return 0
        if args.device not in ("cpu", "cuda"):
            raise ValidationError(f"Unknown device {args.device!r}; use cpu or cuda.")
        model = load_model(args.model or DEFAULT_MODEL, args.device)
        ids = _image_ids(project, args.images)
        shown = {"pct": -1}

        def progress(done: int, total: int) -> None:
            pct = 100 * done // max(total, 1)
            if pct // 10 != shown["pct"] // 10:
                shown["pct"] = pct
                print(f"  {done}/{total} images", file=sys.stderr)

        job = boxes_to_masks(project, model, ids, progress=progress)
        print(f"{job.masks} mask(s) from {job.boxes} box(es) in {job.images_done} image(s) "
              f"as {job.source} ({job.skipped} skipped: done before or empty); "
              f"{len(job.added)} image(s) marked for review. "
              "Take it back with: studio-cli segment PROJECT --revert-last")
    return 0
