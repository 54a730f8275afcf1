"""Crops by area: with random crops, a large image gives crops per crop's worth of its
area, so large (crowded) images are seen as densely as small ones."""

from __future__ import annotations

from collections import Counter

from studio.ml.config import validate_config
from studio.ml.datasets import Sample, crop_area, epoch_order


def _samples(*sizes):
    return [Sample(i, f"{i}.png", h, w) for i, (h, w) in enumerate(sizes)]


def test_each_image_counts_its_area_in_crops():
    samples = _samples((256, 256), (512, 512), (100, 100), (520, 348))
    order = epoch_order(samples, 2, 256)
    assert Counter(order) == {0: 2, 1: 8, 2: 2, 3: 6}  # at least per_image; 2.76 -> 3
    assert order[:4] == [0, 1, 2, 3]  # round-robin, as repeating the list
    assert Counter(epoch_order(samples, 2)) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert epoch_order([], 3, 256) == []


def test_only_random_crops_count_area():
    base = {"task": "semantic", "image_size": 128}
    assert crop_area(validate_config({**base, "resize_policy": "crop",
                                      "crops_by_area": True})) == 128
    assert crop_area(validate_config({**base, "resize_policy": "crop"})) is None
    assert crop_area(validate_config({**base, "resize_policy": "resize",
                                      "crops_by_area": True})) is None


def test_detection_datasets_follow_the_setting(project, tmp_path):
    from testutil import add_toy_objects

    from studio.ml.tasks.detection.data import build_detection_data

    add_toy_objects(project, tmp_path / "img", ["train"] * 3 + ["val"], size=128)
    cfg = {"task": "instance", "image_size": 64, "resize_policy": "crop",
           "samples_per_image": 2}
    plain = build_detection_data(project, validate_config(cfg))
    by_area = build_detection_data(project, validate_config({**cfg, "crops_by_area": True}))
    assert len(plain.train) == 3 * 2
    assert len(by_area.train) == 3 * 2 * 4  # a 128-px image holds four 64-px squares
    image, target = by_area.train[len(by_area.train) - 1]
    assert image.shape[-2:] == (64, 64) and "masks" in target
