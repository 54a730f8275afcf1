"""Seeded train/val/test splits: determinism, ratios, stratification, unassigned only."""

from __future__ import annotations

import pytest

from studio.core.errors import StudioError
from studio.core.splits import carve_split, random_split


@pytest.fixture
def tagged(project, make_image):
    """40 images: class a (20), b (12), c (4); 4 without annotations."""
    classes = {n: project.add_class(n) for n in "abc"}
    for i in range(40):
        image_id, _ = project.add_image(make_image(f"{i}.png", 4, 4, seed=i))
        name = "a" if i < 20 else "b" if i < 32 else "c" if i < 36 else None
        if name:
            project.add_annotation(image_id, classes[name], "tag")
    return project


def _splits(project) -> dict[int, str]:
    return {img.id: img.split for img in project.images()}


def test_same_seed_same_split_other_seed_other_split(tagged):
    random_split(tagged, 0.5, 0.25, 0.25, seed=3)
    first = _splits(tagged)
    random_split(tagged, 0.5, 0.25, 0.25, seed=3)
    assert _splits(tagged) == first
    random_split(tagged, 0.5, 0.25, 0.25, seed=4)
    assert _splits(tagged) != first


def test_counts_follow_the_ratios_and_add_up(tagged):
    counts = random_split(tagged, 0.7, 0.15, 0.15)
    assert counts == {"train": 28, "val": 6, "test": 6}
    assert sum(counts.values()) == tagged.count_images() == 40
    assert {s: tagged.count_images(split=s) for s in counts} == counts
    assert tagged.count_images(split="none") == 0
    assert random_split(tagged, 7, 2, 1) == {"train": 28, "val": 8, "test": 4}  # normalised


def test_stratify_puts_every_class_in_every_split(tagged):
    random_split(tagged, 0.5, 0.25, 0.25, seed=0, stratify=True)
    for cls in tagged.classes():
        for split in ("train", "val", "test"):
            assert tagged.count_images(split=split, class_id=cls.id) >= 1, (cls.name, split)
    a = tagged.class_by_name("a").id
    assert tagged.count_images(split="train", class_id=a) == 10


def test_only_unassigned_leaves_assigned_images_alone(tagged):
    ids = tagged.image_ids()
    tagged.set_split(ids[:10], "test")
    counts = random_split(tagged, 1, 0, 0, only_unassigned=True)
    assert counts == {"train": 30, "val": 0, "test": 0}
    assert [tagged.image(i).split for i in ids[:10]] == ["test"] * 10


def test_bad_ratios(tagged):
    with pytest.raises(StudioError, match="non-negative"):
        random_split(tagged, -1, 1, 1)
    with pytest.raises(StudioError, match="not all zero"):
        random_split(tagged, 0, 0, 0)


def test_the_split_names_are_one_list_everywhere(project, make_image):
    """Store, schema, formats and CLI take exactly SPLITS (defined once in core.splits)."""
    import argparse

    from studio.cli import build_parser
    from studio.core.errors import ValidationError
    from studio.core.formats import export_dataset
    from studio.core.splits import ASSIGNED_SPLITS, SPLITS

    image_id, _ = project.add_image(make_image())
    for split in SPLITS:  # the schema's CHECK constraint and the store agree
        project.set_split(image_id, split)
        assert project.image(image_id).split == split
    assert set(project.counts()["splits"]) == set(SPLITS)
    with pytest.raises(ValidationError, match="train, val, test, none"):
        project.set_split(image_id, "valid")
    with pytest.raises(ValidationError):
        export_dataset(project, "coco", project.root / "out", split="validation")
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    export_split = next(a for a in sub.choices["export"]._actions if a.dest == "split")
    assert tuple(export_split.choices) == SPLITS
    assert ASSIGNED_SPLITS == SPLITS[:3]


def test_carve_moves_a_stratified_share_and_leaves_other_splits(tagged):
    ids = tagged.image_ids()
    tagged.set_split(ids[:30] + ids[36:], "train")  # a 20, b 10, 4 untagged
    tagged.set_split(ids[30:36], "test")  # b 2, c 4
    test_before = tagged.image_ids(split="test")
    moved = carve_split(tagged, "train", "val", 0.25, seed=1)
    val = set(tagged.image_ids(split="val"))
    assert moved == len(val) == 5 + 3  # a quarter of a and of b; the untagged stay
    assert len([i for i in val if i in ids[:20]]) == 5
    assert not val & set(ids[36:])
    assert tagged.image_ids(split="test") == test_before
    again = carve_split(tagged, "train", "val", 0.25, seed=1)
    assert again > 0 and len(tagged.image_ids(split="val")) == moved + again


def test_carve_refuses_what_it_cannot_do(tagged):
    with pytest.raises(StudioError, match="between 0 and 1"):
        carve_split(tagged, fraction=1.0)
    with pytest.raises(StudioError, match="too few"):
        carve_split(tagged, "train", "val")  # nothing is in train yet
    with pytest.raises(StudioError, match="Unknown split"):
        carve_split(tagged, "training", "val")


def test_stratified_split_leaves_unlabelled_images_out(tagged):
    """Unlabelled images have no class to stratify by and nothing to train on: 'none'."""
    ids = tagged.image_ids()
    untagged = ids[36:]
    tagged.set_split(untagged[:2], "train")  # an earlier split had put two into train
    counts = random_split(tagged, 0.5, 0.25, 0.25, seed=0, stratify=True)
    assert counts["none"] == 4 and counts["train"] + counts["val"] + counts["test"] == 36
    assert [tagged.image(i).split for i in untagged] == ["none"] * 4
    for split in ("train", "val", "test"):
        assert not set(tagged.image_ids(split=split)) & set(untagged)
    # an image marked done without annotations is labelled (as empty): it is split
    tagged.set_status(untagged[0], "done")
    counts = random_split(tagged, 0.5, 0.25, 0.25, seed=0, stratify=True)
    assert counts["none"] == 3 and tagged.image(untagged[0]).split != "none"
    # unstratified, every image is assigned as before
    assert "none" not in random_split(tagged, 0.5, 0.25, 0.25, seed=0)
    assert tagged.count_images(split="none") == 0


def test_stratified_split_of_unassigned_keeps_unlabelled_out(tagged):
    counts = random_split(tagged, 0.7, 0.2, 0.1, stratify=True, only_unassigned=True)
    assert counts["none"] == 4 and tagged.count_images(split="none") == 4
    again = random_split(tagged, 0.7, 0.2, 0.1, stratify=True, only_unassigned=True)
    assert again == {"train": 0, "val": 0, "test": 0, "none": 4}
