"""YOLO (Ultralytics) txt labels: import and export.

Import rules:
- `source` is a dataset folder with a dataset yaml (data.yaml, or one other *.yaml such as
  coco8.yaml; the yaml file itself may be given), or a folder with classes.txt, images/ and
  labels/ (subfolders train/val/test of images/ give the splits).
- yaml keys: `names` (list, or dict index -> name) is required; `train`/`val`/`test` are a
  folder, a .txt list of images or a list of those, relative to the dataset root. The root is
  the yaml's folder (or `images_dir` when given); a `path` key is used only when it names a
  folder inside it (Ultralytics resolves it against its own settings, which we cannot see).
  No path may leave the dataset root.
- Labels: `.../images/.../x.jpg` -> `.../labels/.../x.txt` (the last `images` part replaced),
  else `x.txt` beside the image. `class cx cy w h` (normalised) -> "box";
  `class x1 y1 x2 y2 ...` (3+ points) -> "polygon". A line with another field count, values
  outside 0..1 or an unknown class index is skipped and reported as file:line.
- Classes: the names used by some label, created in index order (`all_classes=True`: all).

Export writes images/<split>/, labels/<split>/ and data.yaml (names as index -> name, the
project's class order). Images without a split go to train. Boxes -> detection lines, polygons
-> segmentation lines, masks -> one segmentation line per outer contour (holes are lost:
YOLO polygons have none). Image-level tags have no YOLO form and are reported as skipped.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from studio.core import images as imgs
from studio.core.errors import FormatError, UnsafePathError
from studio.core.formats.base import (
    ExportReport,
    ImportReport,
    atomic_copy,
    atomic_write_text,
    exportable_images,
    register_image,
    safe_join,
    unique_name,
)
from studio.core.geometry import clip_box, drop_repeated_points, mask_to_polygons
from studio.core.splits import ASSIGNED_SPLITS, UNASSIGNED

SOURCE = "import:yolo"
SPLIT_KEYS = ASSIGNED_SPLITS  # the yaml keys that list images


# --- reading ------------------------------------------------------------------------------
def _find_yaml(source: Path) -> Path | None:
    if source.is_file():
        if source.suffix.lower() not in (".yaml", ".yml"):
            raise FormatError(f"{source.name} is not a dataset .yaml; give the dataset folder.")
        return source
    if (source / "data.yaml").is_file():
        return source / "data.yaml"
    found = sorted([*source.glob("*.yaml"), *source.glob("*.yml")])
    if len(found) > 1:
        raise FormatError(f"{source} holds several yaml files ({', '.join(f.name for f in found)});"
                          " choose the dataset yaml itself.")
    return found[0] if found else None


def _names(value, path: Path) -> dict[int, str]:
    if isinstance(value, list):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        raise FormatError(f"{path.name}: 'names' must be a list or a mapping index -> name.")
    names = {}
    for k, v in items:
        try:
            index = int(k)
        except (TypeError, ValueError):
            raise FormatError(f"{path.name}: class index {k!r} in 'names' is not a number.") from None
        if not isinstance(v, (str, int)) or not str(v).strip():
            raise FormatError(f"{path.name}: class {index} has an empty name.")
        names[index] = str(v).strip()
    return names


def read_config(yaml_path: Path, images_dir: Path | None,
                report: ImportReport) -> tuple[Path, dict[int, str], dict]:
    """(dataset root, class names, {split: entries}) from a dataset yaml."""
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except RecursionError:
        raise FormatError(f"{yaml_path.name} nests too deeply to be a dataset yaml; check "
                          "that it is the right file.") from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]  # YAML errors span several lines
        raise FormatError(f"{yaml_path.name} is not valid YAML ({reason}).") from None
    except OSError as exc:
        raise FormatError(f"Cannot read {yaml_path}: {exc.strerror or exc}.") from exc
    if not isinstance(data, dict) or "names" not in data:
        raise FormatError(f"{yaml_path.name} has no 'names' key; it is not a YOLO dataset yaml.")
    names = _names(data["names"], yaml_path)
    root = Path(images_dir) if images_dir else yaml_path.parent
    declared = data.get("path")
    if declared and not images_dir:
        try:
            candidate = safe_join(root, str(declared))
            if candidate.is_dir():
                root = candidate
            else:
                raise UnsafePathError("not a folder")
        except UnsafePathError:
            report.warnings.append(f"{yaml_path.name}: 'path: {declared}' is not a folder inside "
                                   f"the dataset; paths resolve from {yaml_path.parent.name}/.")
    splits = {}
    for key in SPLIT_KEYS:
        value = data.get(key)
        if value in (None, ""):
            continue
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, str) for e in entries):
            raise FormatError(f"{yaml_path.name}: '{key}' must be a path or a list of paths.")
        splits[key] = entries
    if not splits:
        raise FormatError(f"{yaml_path.name} names no train, val or test images.")
    return root, names, splits


def _split_images(root: Path, entry: str, report: ImportReport) -> list[Path]:
    try:
        target = safe_join(root, entry)
    except UnsafePathError as exc:
        report.skip(entry, f"refused: {exc}")
        return []
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if imgs.is_image_file(p))
    if target.is_file() and target.suffix.lower() == ".txt":
        rel_dir = target.parent.relative_to(root.resolve())
        out = []
        for line in target.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(safe_join(root, (rel_dir / line.removeprefix("./")).as_posix()))
            except UnsafePathError as exc:
                report.skip(f"{target.name}: {line}", f"refused: {exc}")
        return out
    report.skip(entry, "split folder or list not found")
    return []


def label_path(image: Path, root: Path) -> Path:
    """Where Ultralytics looks for an image's labels (last `images` part -> `labels`)."""
    rel = image.relative_to(root.resolve()) if image.is_relative_to(root.resolve()) else None
    if rel is not None and "images" in rel.parts[:-1]:
        parts = list(rel.parts)
        i = len(parts) - 2 - parts[:-1][::-1].index("images")
        parts[i] = "labels"
        return root.resolve().joinpath(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_label_file(path: Path, n_classes_known: set[int], report: ImportReport) -> list[tuple]:
    """[(class index, kind, normalised values)] of one label file; bad lines reported."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.skip(path.name, f"unreadable label file: {exc}")
        return []
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        where = f"{path.name}:{no}"
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            report.skip(where, "not a line of numbers")
            continue
        if not all(math.isfinite(v) for v in values) or values[0] != int(values[0]):
            report.skip(where, "class index is not an integer")
            continue
        cls, coords = int(values[0]), values[1:]
        if len(tokens) == 5:
            kind = "box"
        elif len(tokens) >= 7 and len(tokens) % 2 == 1:
            kind = "polygon"
        else:
            report.skip(where, f"{len(tokens)} fields: expected 5 (class cx cy w h) or "
                               "class followed by 3+ x y pairs")
            continue
        if any(v < 0 or v > 1 for v in coords):
            report.skip(where, "coordinates outside 0..1 (labels must be normalised)")
            continue
        if cls not in n_classes_known:
            report.skip(where, f"class index {cls} is not in the dataset's names")
            continue
        if kind == "box" and (coords[2] <= 0 or coords[3] <= 0):
            report.skip(where, "box has no area")
            continue
        out.append((cls, kind, coords))
    return out


def _classes_txt_layout(root: Path, images_dir: Path | None) -> tuple[Path, dict, dict]:
    names_file = root / "classes.txt"
    if not names_file.is_file():
        raise FormatError(f"{root} has no dataset yaml and no classes.txt; it is not a YOLO "
                          "dataset folder.")
    lines = names_file.read_text(encoding="utf-8").splitlines()
    names = {i: n.strip() for i, n in enumerate(lines) if n.strip()}
    img_root = Path(images_dir) if images_dir else root / "images"
    if not img_root.is_dir():
        raise FormatError(f"{root} has classes.txt but no images/ folder.")
    splits: dict = {}
    for p in sorted(img_root.rglob("*")):
        if imgs.is_image_file(p):
            first = p.relative_to(img_root).parts[0]
            split = first if first in SPLIT_KEYS and len(p.relative_to(img_root).parts) > 1 \
                else UNASSIGNED
            splits.setdefault(split, []).append(p.resolve())
    return root, names, splits


def import_yolo(project, source: Path, images_dir: Path | None = None,
                report: ImportReport | None = None, all_classes: bool = False,
                copy_images: bool = False) -> ImportReport:
    """Import a YOLO dataset into `project` (call inside a transaction)."""
    source = Path(source)
    report = report or ImportReport("yolo")
    yaml_path = _find_yaml(source)
    if yaml_path is not None:
        root, names, entries = read_config(yaml_path, images_dir, report)
        split_images = {k: [p for e in v for p in _split_images(root, e, report)]
                        for k, v in entries.items()}
    else:
        root, names, split_images = _classes_txt_layout(source, images_dir)
    known = set(names)
    parsed = []  # (image path, split, label rows) for each image, in order
    seen = set()
    for split, paths in split_images.items():
        for image in paths:
            if image in seen:
                continue
            seen.add(image)
            parsed.append((image, split, parse_label_file(label_path(image, root), known, report)))
    used = {row[0] for _, _, rows in parsed for row in rows}
    class_ids = {}
    for index in sorted(names):
        if all_classes or index in used:
            if project.class_by_name(names[index]) is None:
                report.classes_added.append(names[index])
            class_ids[index] = project.get_or_add_class(names[index])
    for image, split, rows in parsed:
        _import_image(project, image, root, split, rows, names, class_ids, copy_images, report)
    return report


def _import_image(project, image: Path, root: Path, split: str, rows: list, names: dict,
                  class_ids: dict, copy_images: bool, report: ImportReport) -> None:
    try:
        item = image.relative_to(root.resolve()).as_posix()
    except ValueError:
        item = image.name
    added = register_image(project, image, report, item, split=split, copy=copy_images)
    if added is None or not added[1]:
        return
    image_id = added[0]
    rec = project.image(image_id)
    w, h = rec.width, rec.height
    out = []
    for cls, kind, v in rows:
        if kind == "box":
            box = ((v[0] - v[2] / 2) * w, (v[1] - v[3] / 2) * h, v[2] * w, v[3] * h)
            geom = clip_box(box, w, h)
            if not np.allclose(geom, box, atol=0.01):
                report.warnings.append(f"{item}: a box reaching outside the image was clipped")
            if geom[2] <= 0 or geom[3] <= 0:
                report.skip(item, "box lies outside the image")
                continue
        else:
            geom = np.asarray(v, dtype=np.float64).reshape(-1, 2) * [w, h]
        out.append(dict(image_id=image_id, class_id=class_ids[cls], kind=kind, geometry=geom,
                        source=SOURCE))
        report.count(kind, names[cls])
    if out:
        project.add_annotations(out)


# --- writing ------------------------------------------------------------------------------
def _fmt(values) -> str:
    return " ".join(f"{float(v):.6f}" for v in values)


def label_lines(ann, index: int, width: int, height: int) -> list[str]:
    """YOLO lines of one stored annotation (a mask may give several, a tag none)."""
    if ann.kind == "box":
        x, y, w, h = clip_box(ann.geometry, width, height)
        if w <= 0 or h <= 0:
            return []
        return [f"{index} {_fmt(((x + w / 2) / width, (y + h / 2) / height, w / width, h / height))}"]
    if ann.kind == "polygon":
        polys = [np.asarray(ann.geometry, dtype=np.float64)]
    elif ann.kind == "mask":
        polys = mask_to_polygons(ann.geometry.to_full(height, width))
    else:
        return []
    lines = []
    for p in polys:
        p = drop_repeated_points(np.clip(p, 0, [width, height]))
        if len(p) < 3:
            continue
        p = p / [width, height]
        lines.append(f"{index} {_fmt(p.reshape(-1))}")
    return lines


def export_yolo(project, out_dir: Path, split: str | None = None) -> ExportReport:
    """Write images/<split>/, labels/<split>/ and data.yaml under `out_dir`."""
    out_dir = Path(out_dir)
    report = ExportReport("yolo", out_dir)
    classes = project.classes()
    index_of = {c.id: i for i, c in enumerate(classes)}
    used: dict[str, set[str]] = {k: set() for k in SPLIT_KEYS}
    n_tags = Counter()
    for rec in exportable_images(project, split, report):
        part = rec.split if rec.split in SPLIT_KEYS else "train"
        stem = unique_name(rec.abs_path.stem, used[part], str(rec.id))  # labels are per stem
        name = stem + rec.abs_path.suffix
        atomic_copy(rec.abs_path, out_dir / "images" / part / name)
        lines = []
        for ann in project.annotations(rec.id):
            if ann.kind == "tag":
                n_tags[part] += 1
                continue
            new = label_lines(ann, index_of[ann.class_id], rec.width, rec.height)
            lines += new
            report.annotations += bool(new)
        target = out_dir / "labels" / part / f"{stem}.txt"
        atomic_write_text(target, "".join(line + "\n" for line in lines))
        report.files.append(target)
        report.images += 1
    if n_tags:
        report.skip("image tags", f"{sum(n_tags.values())} image-level tags have no YOLO form")
    config = {k: f"images/{k}" for k in SPLIT_KEYS if used[k]}
    config["nc"] = len(classes)
    config["names"] = {i: c.name for i, c in enumerate(classes)}
    target = out_dir / "data.yaml"
    atomic_write_text(target, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    report.files.append(target)
    return report
