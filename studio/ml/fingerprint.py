"""A dataset's fingerprint: the facts about a project that a training plan is derived from.

`fingerprint(project, task, device)` returns a plain JSON-able dict (see its docstring):
image sizes and channels, images per split and how many are labelled, class frequencies
and their imbalance, object sizes and the label offset for segmentation, and the device
with its memory. Label statistics come from the train split only (the held-out splits
must not steer the plan). It decodes up to a few dozen train images and label maps, so
a GUI calls it from a worker.
"""

from __future__ import annotations

import os
import random
from collections import Counter

import numpy as np

from studio.core.errors import ConfigError
from studio.core.splits import SPLITS
from studio.ml.tasks import task_of

MAX_LABEL_IMAGES = 40  # label maps read for pixel frequencies and object sizes
MAX_OFFSET_IMAGES = 20  # images decoded for the label-offset probe
OFFSET_REACH = 3  # px: the label-offset probe searches shifts of up to this many pixels
# a label offset blocks the flip that would reverse it only when it is at least a whole
# pixel and at least this fraction of the thinnest objects' median diameter: a flip then
# moves the label by twice the offset, off the structure it marks
OFFSET_MIN_PX = 1.0
OFFSET_OBJECT_FRACTION = 0.05


def labelled_tasks(project) -> list[str]:
    """The tasks this project's labels point to: tags -> classification, regions ->
    semantic, box objects -> detection. Regions also serve detection and instance
    segmentation, which are planned when asked for by name."""
    from studio.ml.tasks import task_class_ids

    tasks = [t for t in ("classification", "semantic") if task_class_ids(project, t)]
    if project.class_ids_in_use(("box",)):
        tasks.append("detection")
    return tasks


def device_facts(device: str = "auto") -> dict:
    """{"requested", "type", "name", "memory_gb", "free_gb", "threads", "bf16"} of the
    device that `device` resolves to (memory only for CUDA; "bf16": a CPU that computes
    bfloat16 natively)."""
    import torch

    from studio.ml.devices import cpu_computes_bf16, describe_device, resolve_device

    dev = resolve_device(device)
    facts = {"requested": str(device), "type": dev.type, "name": describe_device(dev),
             "memory_gb": None, "free_gb": None, "threads": torch.get_num_threads(),
             "bf16": dev.type == "cpu" and cpu_computes_bf16()}
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        facts.update(memory_gb=round(total / 2**30, 2), free_gb=round(free / 2**30, 2))
    return facts


def _sizes(records) -> dict:
    heights = np.array([r.height for r in records], dtype=np.int64)
    widths = np.array([r.width for r in records], dtype=np.int64)
    short = np.minimum(heights, widths)
    return {
        "median": [int(np.median(heights)), int(np.median(widths))],
        "min": [int(heights.min()), int(widths.min())],
        "max": [int(heights.max()), int(widths.max())],
        "median_short_side": int(np.median(short)),
        "total_pixels": int((heights * widths).sum()),
        # the short sides of the images differ by more than a factor of two
        "varied": bool(short.max() > 2 * short.min()),
    }


def _labelled_ids(project, task: str, split: str | None, class_ids: list[int]) -> set[int]:
    from studio.ml.tasks import task_kinds

    wanted = set(class_ids)
    ids: set[int] = set()
    for kind in task_kinds(task):
        # as training reads them (read_split): a model's annotations waiting for review
        # are no label, a person's on the same image are
        ids |= {i for i, c in project.image_classes(kind=kind, split=split, ground_truth=True)
                if c in wanted}
    return ids


def _class_stats(counts: list[float], names: list[str]) -> dict:
    total = float(sum(counts))
    fractions = [c / total if total else 0.0 for c in counts]
    present = [c for c in counts if c > 0]
    imbalance = (max(present) / min(present)) if present else 1.0
    rarest = int(np.argmin(counts)) if counts else 0
    return {"names": names, "counts": counts, "fractions": [round(f, 4) for f in fractions],
            "imbalance": round(float(imbalance), 3), "rarest": names[rarest] if names else None,
            "missing_in_train": [n for n, c in zip(names, counts, strict=True) if c == 0]}


def _classification_counts(project, split: str, class_ids: list[int]) -> list[float]:
    label: dict[int, int] = {}
    for image_id, class_id in project.image_classes(kind="tag", split=split):
        if class_id in class_ids:
            label[image_id] = class_id  # the latest tag wins, as in the datasets
    counts = Counter(label.values())
    return [float(counts.get(cid, 0)) for cid in class_ids]


def _peak(minus: float, centre: float, plus: float) -> float:
    """Sub-pixel position, within +-0.5, of the maximum of a parabola through (-1, 0, +1)
    whose centre is the highest of the three (0 when the three do not bend down)."""
    den = minus - 2.0 * centre + plus
    return float(np.clip(0.5 * (minus - plus) / den, -0.5, 0.5)) if den < 0 else 0.0


def label_offset(image: np.ndarray, labels: np.ndarray, class_index: int,
                 reach: int = OFFSET_REACH) -> tuple | None:
    """(rows, cols, strength): the shift of the image relative to the mask of class
    `class_index` at which the image's intensity pattern matches the mask best, searched
    over whole shifts of up to `reach` px along each axis and refined to a sub-pixel
    position around the best one (so always within +-`reach`).

    +rows means the label sits above the structure it marks. Labels drawn exactly on the
    structure give about 0; strength is the |correlation| of mask and intensity at the best
    shift (None when the class is absent or the mask does not follow the image's intensity).
    """
    m = reach
    h, w = image.shape[:2]
    if h <= 2 * m + 2 or w <= 2 * m + 2:
        return None
    inner = labels[m:h - m, m:w - m]
    valid = inner != 255
    n = int(valid.sum())
    if n < 64:
        return None
    mask = (inner == class_index) & valid
    k = int(mask.sum())
    if k == 0 or k == n:
        return None
    weight = valid.astype(np.float32)
    centred = (mask - np.float32(k / n)) * weight  # zero mean over the labelled pixels
    norm2 = float((centred * centred).sum(dtype=np.float64))
    img = image.astype(np.float32)
    img -= np.float32(img.mean())

    def corr(dy: int, dx: int) -> float:
        b = img[m + dy:h - m + dy, m + dx:w - m + dx]
        bw = b * weight
        s1 = float(bw.sum(dtype=np.float64))
        var = float((bw * b).sum(dtype=np.float64)) - s1 * s1 / n
        if var <= 1e-9 * n:
            return 0.0
        return float((centred * b).sum(dtype=np.float64)) / float(np.sqrt(norm2 * var))

    shifts = list(range(-reach, reach + 1))
    cache: dict[tuple[int, int], float] = {}

    def line(axis: int, at: int) -> list[float]:
        keys = [(d, at) if axis == 0 else (at, d) for d in shifts]
        for key in keys:
            if key not in cache:
                cache[key] = corr(*key)
        return [cache[key] for key in keys]

    def best(values: list[float]) -> int:
        return shifts[int(np.argmax(np.abs(values)))]

    # a coordinate search: rows at no column shift, columns at the best row shift, rows
    # again at the best column shift (an offset along one axis blurs the other's search)
    along_cols = line(1, best(line(0, 0)))
    along_rows = line(0, best(along_cols))
    strongest = max(along_rows + along_cols, key=abs)
    if abs(strongest) < 0.1:
        return None
    sign = 1.0 if strongest > 0 else -1.0

    def locate(values: list[float]) -> float:
        s = [sign * v for v in values]
        top = int(np.argmax(s))
        if 0 < top < len(s) - 1:
            return shifts[top] + _peak(s[top - 1], s[top], s[top + 1])
        return float(shifts[top])  # at the edge of the search: at least this far

    return locate(along_rows), locate(along_cols), abs(strongest)


def _object_diameters(labels: np.ndarray, n_classes: int) -> list[list[float]]:
    """Equivalent diameters (px) of the connected regions of each class, regions covering a
    quarter of the image or more left out (they are background, not objects)."""
    import cv2

    out: list[list[float]] = [[] for _ in range(n_classes)]
    limit = 0.25 * labels.size
    for k in range(n_classes):
        mask = (labels == k).astype(np.uint8)
        if not mask.any():
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = stats[1:n, cv2.CC_STAT_AREA]
        out[k] += [float(2.0 * np.sqrt(a / np.pi)) for a in areas if a < limit]
    return out


def offset_limit(median_diameters: dict) -> float:
    """The smallest label offset (px) that is a reason to keep a flip off: a whole pixel,
    or more for objects whose thinnest class is wide (OFFSET_OBJECT_FRACTION of it)."""
    sizes = [d for d in median_diameters.values() if d]
    thinnest = min(sizes) if sizes else 0.0
    return round(max(OFFSET_MIN_PX, OFFSET_OBJECT_FRACTION * thinnest), 2)


def _semantic_stats(project, image_ids: list[int], class_ids: list[int], names: list[str],
                    seed: int = 0) -> tuple[list[float], dict, dict]:
    """Pixel counts per class, object sizes and the label offset, from up to
    MAX_LABEL_IMAGES of the labelled train images (a seeded sample)."""
    from studio.core.rasterize import label_map
    from studio.ml.datasets import decode

    chosen = sorted(image_ids)
    if len(chosen) > MAX_LABEL_IMAGES:
        chosen = sorted(random.Random(seed).sample(chosen, MAX_LABEL_IMAGES))
    counts = np.zeros(len(class_ids), dtype=np.float64)
    labelled = total = 0
    diameters: list[list[float]] = [[] for _ in class_ids]
    shifts: list[tuple[float, float]] = []
    for i, image_id in enumerate(chosen):
        labels = label_map(project, image_id, class_ids, ignore_index=255)
        valid = labels != 255
        counts += np.bincount(labels[valid].ravel(), minlength=len(class_ids))[:len(class_ids)]
        labelled += int(valid.sum())
        total += labels.size
        for k, d in enumerate(_object_diameters(labels, len(class_ids))):
            diameters[k] += d
        if i < MAX_OFFSET_IMAGES:
            image = decode(project.image(image_id).abs_path, 1)
            if image.shape == labels.shape:
                probes = [label_offset(image, labels, k) for k in range(len(class_ids))]
                probes = [p for p in probes if p is not None]
                if probes:
                    rows, cols, _ = max(probes, key=lambda p: p[2])
                    shifts.append((rows, cols))
    objects = {
        "median_diameter": {n: (round(float(np.median(d)), 1) if d else None)
                            for n, d in zip(names, diameters, strict=True)},
        "count": {n: len(d) for n, d in zip(names, diameters, strict=True)},
        "labelled_pixel_fraction": round(labelled / total, 4) if total else 0.0,
        "images_read": len(chosen),
    }
    offset = {"rows": 0.0, "cols": 0.0, "images": len(shifts), "agreement_rows": 0.0,
              "agreement_cols": 0.0, "limit_px": offset_limit(objects["median_diameter"])}
    if shifts:
        arr = np.array(shifts)
        for axis, key in ((0, "rows"), (1, "cols")):
            median = float(np.median(arr[:, axis]))
            offset[key] = round(median, 3)
            offset[f"agreement_{key}"] = round(float(np.mean(
                np.sign(arr[:, axis]) == np.sign(median))), 3)
    return counts.tolist(), objects, offset


def fingerprint(project, task: str | None = None, device: str = "auto",
                train_split: str = "train", val_split: str = "val") -> dict:
    """The facts a plan needs about `project` for `task` (None: the one task it has labels
    for). Keys: task, tasks_labelled, images {total, by_split, labelled_by_split}, splits
    {train, val (None when it has no labelled image)}, size {median, min, max,
    median_short_side, varied}, channels, classes {names, counts, fractions, imbalance,
    rarest, missing_in_train}, for semantic also objects {median_diameter, count,
    labelled_pixel_fraction} and label_offset {rows, cols, images, agreement_rows,
    agreement_cols, limit_px (see `offset_limit`)}, for detection and instance
    object_stats (`studio.ml.object_stats`: objects per image, size, touching fraction),
    and device (see `device_facts`)."""
    from studio.ml.tasks import TASKS, task_class_ids

    tasks = labelled_tasks(project)
    if task is None:
        if not tasks:
            raise ConfigError("This project has no labels yet: tag images with a class or draw "
                              "regions, then ask for a recommendation.")
        if len(tasks) > 1:
            raise ConfigError(f"This project has labels for {' and '.join(tasks)}; say which "
                              "task to plan for (e.g. --task semantic).")
        task = tasks[0]
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    class_ids = task_class_ids(project, task)
    if not class_ids:
        raise ConfigError(f"This project has no labels for {task}; label some images first.")
    names_by_id = {c.id: c.name for c in project.classes()}
    names = [names_by_id.get(cid, str(cid)) for cid in class_ids]
    by_split = {s: project.count_images(split=s) for s in SPLITS}
    labelled_ids = {s: _labelled_ids(project, task, s, class_ids) for s in SPLITS}
    labelled = {s: len(ids) for s, ids in labelled_ids.items()}
    if labelled.get(train_split, 0) == 0:
        raise ConfigError(f"The '{train_split}' split has no labelled images for {task}. Split "
                          "the project first (e.g. `studio-cli split PROJECT`).")
    train_ids = labelled_ids[train_split]  # a split outside SPLITS was refused just above
    records = [r for r in project.images(split=train_split) if r.id in train_ids]
    fp = {
        "task": task,
        "tasks_labelled": tasks,
        "images": {"total": sum(by_split.values()), "by_split": by_split,
                   "labelled_by_split": labelled},
        "splits": {"train": train_split,
                   "val": val_split if val_split and labelled.get(val_split, 0) else None},
        "size": _sizes(records),
        "channels": 1 if all(r.channels == 1 for r in records) else 3,
        "device": device_facts(device),
        "cpu_count": os.cpu_count() or 1,
    }
    if task_of(task).image_label:
        fp["classes"] = _class_stats(_classification_counts(project, train_split, class_ids),
                                     names)
    elif task_of(task).label_map:
        counts, objects, offset = _semantic_stats(project, sorted(train_ids), class_ids, names)
        fp["classes"] = _class_stats(counts, names)
        fp["objects"] = objects
        fp["label_offset"] = offset
    else:  # detection, instance: objects per image, their size and how many touch
        from studio.ml.object_stats import object_stats

        fp["object_stats"] = object_stats(project, task, class_ids,
                                          [s for s in (train_split, fp["splits"]["val"]) if s])
    return fp
