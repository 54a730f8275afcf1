"""The split names, in one place, and seeded random train/val/test splits (optionally
stratified by class)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from studio.core.errors import ValidationError

# the split an image belongs to; "none" = in no split (not used for training or testing)
SPLITS = ("train", "val", "test", "none")
ASSIGNED_SPLITS = SPLITS[:3]  # the parts of a dataset; "none" = not assigned yet
UNASSIGNED = SPLITS[3]
# folder names datasets use for their parts (Roboflow, Kaggle, torchvision) -> our split
FOLDER_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def check_split(split: str) -> str:
    """`split` when it is one of SPLITS, else a ValidationError naming the choices."""
    if split not in SPLITS:
        raise ValidationError(f"Unknown split {split!r}; use one of: {', '.join(SPLITS)}.")
    return split


def _counts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """Largest-remainder rounding so the three parts add up to n."""
    raw = [r * n for r in ratios]
    base = [int(x) for x in raw]
    order = sorted(range(3), key=lambda i: raw[i] - base[i], reverse=True)
    for i in order[: n - sum(base)]:
        base[i] += 1
    return base[0], base[1], base[2]


def random_split(project, train: float, val: float, test: float, seed: int = 0,
                 stratify: bool = False, only_unassigned: bool = False) -> dict[str, int]:
    """Assign every image (or only those with split 'none') to train/val/test.

    With `stratify`, images are grouped by their most frequent class (images without
    annotations form their own group) and each group is split by the ratios, so every
    class appears in every part where it can. Returns the number of images per split.
    """
    ratios = (float(train), float(val), float(test))
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValidationError("Split ratios must be non-negative and not all zero; give e.g. "
                              "0.7, 0.15, 0.15.")
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)
    ids = project.image_ids(split=UNASSIGNED) if only_unassigned else project.image_ids()
    groups: dict[object, list[int]] = defaultdict(list)
    if stratify:
        counts = Counter(project.image_classes())
        main_class: dict[int, int] = {}  # each image's most frequent class (ties: lowest id)
        for (image_id, class_id), _n in sorted(counts.items(),
                                               key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
            main_class.setdefault(image_id, class_id)
        for i in ids:
            groups[main_class.get(i)].append(i)
    else:
        groups[None] = list(ids)
    rng = random.Random(seed)
    assignment: dict[str, list[int]] = {s: [] for s in ASSIGNED_SPLITS}
    for key in sorted(groups, key=lambda k: (k is None, k if k is not None else 0)):
        members = sorted(groups[key])
        rng.shuffle(members)
        n_train, n_val, _ = _counts(len(members), ratios)
        assignment["train"] += members[:n_train]
        assignment["val"] += members[n_train:n_train + n_val]
        assignment["test"] += members[n_train + n_val:]
    with project.transaction():
        for split, members in assignment.items():
            project.set_split(members, split)
    return {k: len(v) for k, v in assignment.items()}
