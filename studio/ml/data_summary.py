"""What a project holds for one task, and what a person should fix before training.

`summarize(project, task)` counts images per split (labelled for the task or not),
objects per class per split and, for tasks that learn from regions, their pixels, looks at the spread of image sizes, and returns warnings a
person can act on (too few examples of a class, no validation split, very different
image sizes, unlabelled images in the train split). Only store queries: no decoding.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from studio.core.rasterize import REGION_KINDS
from studio.core.splits import SPLITS
from studio.ml.tasks import task_of

FEW_EXAMPLES = 10  # fewer labelled examples of a class in train than this: warn
RARE_PIXELS = 0.01  # a class under this share of train's labelled pixels: warn
SIZE_SPREAD = 4.0  # largest / smallest image side above this: warn


@dataclass
class DataWarning:
    code: str  # "few_examples" | "rare_pixels" | "no_val" | "sizes" | "unlabelled_train"
    #            | "pending_review" | "model_annotations_waiting" | "no_labels"
    message: str
    action: str | None = None  # "stratified_split" | "mark_reviewed": a button can fix it


@dataclass
class DataSummary:
    task: str
    class_names: dict[int, str]
    images: dict[str, int] = field(default_factory=dict)  # per split
    labelled: dict[str, int] = field(default_factory=dict)  # per split, for this task
    objects: dict[str, dict[int, int]] = field(default_factory=dict)  # split -> class -> n
    # split -> images marked for review holding a model's annotations (left out of training)
    pending: dict[str, int] = field(default_factory=dict)
    # split -> labelled images under review holding a model's annotations beside what people
    # drew: they train on people's labels; the model's wait (left out) until reviewed
    partly_waiting: dict[str, int] = field(default_factory=dict)
    # split -> class -> labelled pixels (summed region areas); empty for tag-only tasks
    pixels: dict[str, dict[int, float]] = field(default_factory=dict)
    min_side: int = 0
    max_side: int = 0
    warnings: list[DataWarning] = field(default_factory=list)


def summarize(project, task: str, few_examples: int = FEW_EXAMPLES) -> DataSummary:
    """Counts and warnings of `project` for `task` (see the module docstring)."""
    from studio.ml.tasks import task_kinds

    kinds = task_kinds(task)
    names = {c.id: c.name for c in project.classes()}
    out = DataSummary(task, names)
    by_pixels = all(k in REGION_KINDS for k in kinds)  # segmentation: pixels count
    labelled_ids: dict[str, set[int]] = defaultdict(set)
    for split in SPLITS:
        out.images[split] = project.count_images(split=split)
        counts: Counter = Counter()
        areas: Counter = Counter()
        for kind in kinds:
            for image_id, class_id in project.image_classes(kind=kind, split=split):
                counts[class_id] += 1
                labelled_ids[split].add(image_id)
            if by_pixels:
                areas.update(project.class_areas(kind=kind, split=split))
        out.objects[split] = dict(counts)
        pending = project.pending_model_images(split)
        out.pending[split] = len(pending & labelled_ids[split])
        out.partly_waiting[split] = len((project.waiting_for_review(split) - pending)
                                        & labelled_ids[split])
        if by_pixels:
            out.pixels[split] = {c: areas.get(c, 0.0) for c in counts}
        out.labelled[split] = len(labelled_ids[split])
    sides = [s for rec in project.images() for s in (rec.width, rec.height) if s]
    if sides:
        out.min_side, out.max_side = min(sides), max(sides)
    _warn(out, few_examples)
    return out


def _warn(s: DataSummary, few: int) -> None:
    used = set().union(*(set(c) for c in s.objects.values()))
    if not used:
        what = "class tags" if task_of(s.task).image_label else "polygon or mask regions"
        s.warnings.append(DataWarning("no_labels", f"No image has {what} for {s.task}: label "
                                   "some images first (the Label workspace)."))
        return
    total_labelled = sum(s.labelled.values())
    if s.labelled["val"] == 0:
        s.warnings.append(DataWarning(
            "no_val", f"No labelled images in the validation split: nothing shows "
            f"overfitting and early stopping is off. Make a split ({total_labelled} labelled "
            "images; every class keeps its share).", "stratified_split"))
    for class_id in sorted(used):
        n = s.objects["train"].get(class_id, 0)
        if n < few:
            s.warnings.append(DataWarning(
                "few_examples", f"Class '{s.class_names.get(class_id, class_id)}' has only {n} "
                f"example(s) in train: label at least {few} so the model can learn it."))
    train_pixels = s.pixels.get("train", {})
    total = sum(train_pixels.values())
    for class_id, area in sorted(train_pixels.items()):
        if total and area / total < RARE_PIXELS:
            s.warnings.append(DataWarning(
                "rare_pixels", f"Class '{s.class_names.get(class_id, class_id)}' covers only "
                f"{100 * area / total:.2g}% of the labelled pixels in train: a plain "
                "cross-entropy loss will mostly ignore it; use Dice or class weights (the "
                "recommended settings do) or label more of it."))
    if s.min_side and s.max_side / s.min_side > SIZE_SPREAD:
        s.warnings.append(DataWarning(
            "sizes", f"Image sides range from {s.min_side} to {s.max_side} px: resizing to one "
            "size distorts the small or the large ones; consider the 'crop' or 'letterbox' "
            "resize policy."))
    waiting = {k: n for k, n in s.pending.items() if n and k in ("train", "val")}
    if waiting:
        where = " and ".join(f"{n} in {k}" for k, n in waiting.items())
        s.warnings.append(DataWarning(
            "pending_review", f"Labelled images marked for review hold a model's annotations "
            f"({where}): they are left out of training and validation until a person has "
            "checked them (Label workspace), or marks them reviewed here.", "mark_reviewed"))
    partly = {k: n for k, n in s.partly_waiting.items() if n and k in ("train", "val")}
    if partly:
        where = " and ".join(f"{n} in {k}" for k, n in partly.items())
        s.warnings.append(DataWarning(
            "model_annotations_waiting", f"Hand-labelled images marked for review also hold a "
            f"model's annotations ({where}): those train on what people drew, and the model's "
            "annotations on them are left out of training and validation until a person has "
            "checked them (Label workspace)."))
    unlabelled = s.images["train"] - s.labelled["train"]
    if unlabelled > 0:
        s.warnings.append(DataWarning(
            "unlabelled_train", f"{unlabelled} image(s) in train have no labels for {s.task} "
            "and are left out of training: label them or move them out of train."))
