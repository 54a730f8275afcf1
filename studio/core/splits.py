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


def _groups(project, ids, stratify: bool) -> dict[object, list[int]]:
    """`ids` grouped by each image's most frequent class (ties: lowest id; images without
    annotations form the group None), or one group when not stratified."""
    groups: dict[object, list[int]] = defaultdict(list)
    if not stratify:
        groups[None] = list(ids)
        return groups
    counts = Counter(project.image_classes())
    main_class: dict[int, int] = {}
    for (image_id, class_id), _n in sorted(counts.items(),
                                           key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
        main_class.setdefault(image_id, class_id)
    for i in ids:
        groups[main_class.get(i)].append(i)
    return groups


def _in_order(groups: dict[object, list[int]]) -> list[object]:
    return sorted(groups, key=lambda k: (k is None, k if k is not None else 0))


def carve_split(project, source: str = "train", target: str = "val", fraction: float = 0.2,
                seed: int = 0, stratify: bool = True) -> int:
    """Move a seeded `fraction` of the images of split `source` into `target` (with
    `stratify`, that fraction of each class's images, so every class keeps its share,
    and unlabelled images stay where they are); the other splits are left alone. Returns
    how many images moved."""
    check_split(source), check_split(target)
    if not 0 < fraction < 1:
        raise ValidationError(f"The fraction to move must lie between 0 and 1, not {fraction}.")
    ids = project.image_ids(split=source)
    if len(ids) < 2:
        raise ValidationError(f"Split '{source}' holds {len(ids)} image(s): too few to take "
                              f"a '{target}' split from. Add or label more images first.")
    if stratify:
        unlabelled = set(project.image_ids(split=source, unlabelled=True))
        ids = [i for i in ids if i not in unlabelled] or ids
    groups = _groups(project, ids, stratify)
    rng = random.Random(seed)
    moving: list[int] = []
    for key in _in_order(groups):
        members = sorted(groups[key])
        rng.shuffle(members)
        moving += members[:int(fraction * len(members) + 0.5)]
    if not moving:  # every group too small to give one: take one image overall
        moving = [rng.choice(sorted(ids))]
    with project.transaction():
        project.set_split(moving, target)
    return len(moving)


def random_split(project, train: float, val: float, test: float, seed: int = 0,
                 stratify: bool = False, only_unassigned: bool = False) -> dict[str, int]:
    """Assign every image (or only those with split 'none') to train/val/test.

    With `stratify`, images are grouped by their most frequent class and each group is
    split by the ratios, so every class appears in every part where it can. Unlabelled
    images (no annotation at all, not marked done as empty) have no class to stratify by
    and nothing to train or score on: they go to 'none' (out of every part; a later split
    of the unassigned images places them once they are labelled), counted under "none"
    in the result. Returns the number of images per split.
    """
    ratios = (float(train), float(val), float(test))
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValidationError("Split ratios must be non-negative and not all zero; give e.g. "
                              "0.7, 0.15, 0.15.")
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)
    ids = project.image_ids(split=UNASSIGNED) if only_unassigned else project.image_ids()
    left_out: list[int] = []
    if stratify:
        unlabelled = set(project.image_ids(unlabelled=True))
        left_out = [i for i in ids if i in unlabelled]
        ids = [i for i in ids if i not in unlabelled]
    groups = _groups(project, ids, stratify)
    rng = random.Random(seed)
    assignment: dict[str, list[int]] = {s: [] for s in ASSIGNED_SPLITS}
    for key in _in_order(groups):
        members = sorted(groups[key])
        rng.shuffle(members)
        n_train, n_val, _ = _counts(len(members), ratios)
        assignment["train"] += members[:n_train]
        assignment["val"] += members[n_train:n_train + n_val]
        assignment["test"] += members[n_train + n_val:]
    with project.transaction():
        for split, members in assignment.items():
            project.set_split(members, split)
        if left_out:
            project.set_split(left_out, UNASSIGNED)
    counts = {k: len(v) for k, v in assignment.items()}
    if left_out:
        counts[UNASSIGNED] = len(left_out)
    return counts
