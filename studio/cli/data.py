"""Data commands of studio-cli: new, import, export, info, split. No Qt, no torch.

Each sub-command sets `func(args) -> int`; failures raise StudioError, which the dispatcher
turns into a one-line message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from pathlib import Path

from studio.core.errors import ConfigError, DataError
from studio.core.formats import FORMATS, export_dataset, import_dataset
from studio.core.project import Project
from studio.core.splits import ASSIGNED_SPLITS, SPLITS


def parse_option(text: str) -> tuple[str, object]:
    """`KEY=VALUE` -> (key, value); the value is read as JSON when it is JSON, else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. class_name=nucleus), got {text!r}")
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # not JSON (or absurd JSON): the text itself
        parsed = value
    return key.strip(), parsed


def _options(fmt: str, direction: str, pairs: list[tuple[str, object]] | None) -> dict:
    """The --option pairs, checked against the keyword options the format's function takes."""
    options = dict(pairs or [])
    if not options:
        return options
    module = importlib.import_module(f"studio.core.formats.{FORMATS[fmt]}")
    func = getattr(module, f"{direction}_{fmt}")
    params = inspect.signature(func).parameters
    fixed = ({"project", "source", "images_dir", "report"} if direction == "import"
             else {"project", "out_dir", "split"})
    allowed = sorted(n for n, p in params.items() if n not in fixed
                     and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    for key in options:
        if key not in allowed:
            raise ConfigError(f"The {fmt} {direction} has no option {key!r}; it takes: "
                              f"{', '.join(allowed) or 'no options'}.")
    return options


def _open(path: str) -> Project:
    return Project.open(Path(path))


# --- commands -----------------------------------------------------------------------------
def cmd_new(args: argparse.Namespace) -> int:
    with Project.create(Path(args.project), name=args.name) as project:
        print(f"Created project {project.name!r} in {project.root}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    pairs = list(args.option or [])
    if args.threshold is not None:
        pairs.append(("threshold", args.threshold))
    options = _options(args.format, "import", pairs)
    with _open(args.project) as project:
        report = import_dataset(project, args.format, Path(args.source),
                                Path(args.images) if args.images else None, **options)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
        return 0
    print(report.summary())
    if report.classes_added:
        print(f"New classes: {', '.join(report.classes_added)}")
    for warning in report.warnings[:5]:
        print(f"warning: {warning}")
    if len(report.warnings) > 5:
        print(f"... and {len(report.warnings) - 5} more warnings (--json lists them all)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    options = _options(args.format, "export", args.option)
    with _open(args.project) as project:
        report = export_dataset(project, args.format, Path(args.out), split=args.split, **options)
    print(f"Exported {report.images} images and {report.annotations} annotations "
          f"({args.format}) to {report.out_dir}.")
    for note in report.notes:
        print(note)
    if report.skipped:
        print(f"Skipped {len(report.skipped)}: " + "; ".join(
            f"{item}: {reason}" for item, reason in report.skipped[:5]))
    return 0


def format_counts(name: str, root: Path, counts: dict) -> str:
    """The human-readable `info` text."""
    ann = counts["annotations"]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(ann["by_kind"].items())) or "none"
    lines = [
        f"Project {name!r} in {root}",
        f"Images: {counts['images']} ("
        + ", ".join(f"{s} {n}" for s, n in counts["splits"].items()) + ")",
        "Status: " + ", ".join(f"{s} {n}" for s, n in counts["statuses"].items()),
        f"Classes: {len(counts['classes'])}",
        f"Annotations: {ann['total']} ({kinds})",
    ]
    lines += [f"  {cls}: {n}" for cls, n in ann["by_class"].items()]
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args.project) as project:
        counts = project.counts()
        if args.json:
            print(json.dumps(counts))
        else:
            print(format_counts(project.name, project.root, counts))
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from studio.core.splits import random_split

    for what in ASSIGNED_SPLITS:
        value = getattr(args, what)
        if not 0 <= value <= 1:
            raise ConfigError(f"--{what} must be a fraction between 0 and 1, got {value}.")
    with _open(args.project) as project:
        if project.count_images() == 0:
            raise DataError(f"The project in {project.root} has no images to split; import some "
                            "first.")
        result = random_split(project, args.train, args.val, args.test, seed=args.seed,
                              stratify=args.stratify, only_unassigned=args.only_unassigned)
    print("Split: " + ", ".join(f"{k} {n}" for k, n in result.items()))
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from studio.core.relink import changed_images, refresh_images

    with _open(args.project) as project:
        changed = changed_images(project, content=args.content)
        if not changed:
            print("Every image file is as recorded"
                  + (" (size and content)." if args.content else " (size; --content also "
                     "compares the bytes)."))
            return 0
        for item in changed:
            print(f"changed: {item.describe()}")
        if args.dry_run:
            print(f"{len(changed)} image(s) changed on disk; run without --dry-run to re-read "
                  "them.")
            return 0
        report = refresh_images(project, changed)
    print(report.summary())
    return 1 if report.refused else 0


# --- parser -------------------------------------------------------------------------------
def register(subparsers) -> None:
    """Add new, import, export, info and split to the studio-cli parser."""
    formats = list(FORMATS)

    p = subparsers.add_parser("new", help="create an empty project")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--name", help="display name (default: the folder name)")
    p.set_defaults(func=cmd_new)

    p = subparsers.add_parser("import", help="import a dataset into a project (all or nothing)")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--format", required=True, choices=formats)
    p.add_argument("--source", required=True, metavar="PATH",
                   help="annotation file or dataset folder")
    p.add_argument("--images", metavar="DIR", help="where the images are, if not beside the "
                   "annotations (instances: the image file a single label image labels)")
    p.add_argument("--option", action="append", type=parse_option, metavar="KEY=VALUE",
                   help="format option, e.g. class_name=nucleus or classes='[\"a\",\"b\"]'")
    p.add_argument("--threshold", type=int, metavar="N",
                   help="masks: read masks as binary, values >= N foreground (for masks saved "
                   "as JPEG; near-binary masks are thresholded at 128 by themselves)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("export", help="export a project's images and annotations")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--format", required=True, choices=formats)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--split", choices=SPLITS, help="only images of this split")
    p.add_argument("--option", action="append", type=parse_option, metavar="KEY=VALUE",
                   help="format option, e.g. class_name=nucleus")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("info", help="counts of images, classes and annotations")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("refresh", help="re-read images whose files changed on disk "
                              "since import (size, channels, content hash)")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--content", action="store_true",
                   help="also compare each file's bytes with the recorded hash (reads them all)")
    p.add_argument("--dry-run", action="store_true", help="only list the changed images")
    p.set_defaults(func=cmd_refresh)

    p = subparsers.add_parser("split", help="assign images to train/val/test at random")
    p.add_argument("project", metavar="PROJECT_DIR")
    p.add_argument("--train", type=float, default=0.7)
    p.add_argument("--val", type=float, default=0.15)
    p.add_argument("--test", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stratify", action="store_true",
                   help="split each class separately so every class is in every part; "
                   "unlabelled images stay out (split 'none')")
    p.add_argument("--only-unassigned", action="store_true",
                   help="leave images that already have a split alone")
    p.set_defaults(func=cmd_split)


__all__ = ["register", "parse_option", "format_counts"]
