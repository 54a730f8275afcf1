"""Targets of the instance U-Net and the seeded watershed that splits its maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.ml.tasks.instance.split import (
    distance_map,
    instance_targets,
    label_from_masks,
    objects_of,
    split_instances,
    touching_boundary,
)


def discs(shape=(64, 96), centres=((20, 20), (20, 37), (45, 70)), r=9) -> np.ndarray:
    """(N, H, W) masks of discs; the first two overlap a little (they touch)."""
    masks = []
    for cy, cx in centres:
        m = np.zeros(shape, np.uint8)
        cv2.circle(m, (cx, cy), r, 1, -1)
        masks.append(m.astype(bool))
    return np.stack(masks)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_targets_mark_only_borders_between_objects():
    masks = discs()
    fg, boundary, dist = instance_targets(masks)
    assert fg.sum() == (masks.any(0)).sum()
    assert boundary[:, :30].sum() > 0  # where the first two discs meet
    assert not boundary[:, 50:].any()  # the lone disc has no touching border
    assert boundary.sum() < 0.15 * fg.sum()
    assert dist.max() == pytest.approx(1.0) and dist[~fg].max() == 0
    assert dist[45, 70] == pytest.approx(1.0)  # centre of the lone disc
    assert 0 < dist[45, 62] < 0.3  # near its edge


def test_label_from_masks_keeps_the_first_of_overlapping_objects():
    masks = discs()
    label = label_from_masks(masks)
    assert set(np.unique(label)) == {0, 1, 2, 3}
    assert (label == 1).sum() == masks[0].sum()


def test_touching_boundary_of_a_lone_object_is_empty():
    label = np.zeros((20, 20), np.int32)
    label[5:15, 5:15] = 1
    assert not touching_boundary(label).any()
    label[5:15, 15:18] = 2
    band = touching_boundary(label)
    assert band[5:15, 13:17].all() and not band[:, :12].any()


def test_split_of_perfect_maps_gives_back_every_object():
    masks = discs()
    fg, boundary, dist = instance_targets(masks)
    labels = split_instances(fg.astype(np.float32), boundary.astype(np.float32), dist)
    assert labels.max() == 3
    label = label_from_masks(masks)
    for k in (1, 2, 3):
        best = max(iou(label == k, labels == j) for j in range(1, 4))
        assert best > 0.85


def test_foreground_alone_merges_touching_objects_the_split_does_not():
    masks = discs()
    fg, boundary, dist = instance_targets(masks)
    n_fg, _ = cv2.connectedComponents(fg.astype(np.uint8))
    assert n_fg - 1 == 2  # the touching discs are one blob of foreground
    labels = split_instances(fg.astype(np.float32), boundary.astype(np.float32), dist)
    assert labels.max() == 3


def test_seed_threshold_is_the_split_knob():
    """Without a boundary map, two overlapping discs split only where their cores part."""
    masks = discs()
    fg = masks.any(0).astype(np.float32)
    dist = distance_map(label_from_masks(masks))
    no_boundary = np.zeros_like(fg)
    assert split_instances(fg, no_boundary, dist, seed_threshold=0.5).max() == 3
    # a seed threshold of 0 keeps the whole foreground as seeds: touching discs merge
    assert split_instances(fg, no_boundary, dist, seed_threshold=0.0).max() == 2


def test_small_specks_are_dropped_and_unseeded_foreground_kept():
    fg = np.zeros((30, 30), np.float32)
    fg[2:4, 2:4] = 1.0  # 4 px speck
    fg[10:20, 10:20] = 1.0  # an object without any distance (no seed)
    zero = np.zeros_like(fg)
    labels = split_instances(fg, zero, zero, min_area=8)
    assert labels.max() == 1 and (labels == 1).sum() == 100


def test_objects_of_a_label_map():
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:9] = 1
    labels[10:18, 20:25] = 2
    fg = np.full((20, 30), 0.6, np.float32)
    fg[10:18, 20:25] = 0.9
    classes = np.zeros((20, 30), np.int64)
    classes[10:18, 20:25] = 1
    out = objects_of(labels, fg, classes)
    assert out["boxes"].tolist() == [[20, 10, 25, 18], [3, 2, 9, 6]]  # by falling score
    assert out["scores"] == pytest.approx([0.9, 0.6])
    assert out["labels"].tolist() == [2, 1]
    assert out["masks"][0].sum() == 40 and out["masks"].shape == (2, 20, 30)
    empty = objects_of(np.zeros((5, 5), np.int32), np.zeros((5, 5), np.float32))
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 5, 5)


def test_one_noisy_distance_peak_does_not_make_two_objects():
    """Two one-pixel dips in a disc's distance map (a network's noise) would cut its core
    in three; the smoothing before seeding keeps it one object."""
    masks = discs(centres=((30, 40),), r=12)
    fg, boundary, dist = instance_targets(masks)
    noisy = dist.copy()
    noisy[30, 26:55] = 0.35  # thin creases across the core, below the seed threshold
    noisy[16:45, 40] = 0.35
    assert split_instances(fg.astype(np.float32), boundary.astype(np.float32), noisy).max() == 1


def test_smoothing_follows_the_size_of_the_objects():
    from studio.ml.tasks.instance.split import SEED_SMOOTHING, smoothing_sigma

    small = instance_targets(discs(shape=(200, 200), centres=((30, 30), (100, 100)), r=4))[0]
    large = instance_targets(discs(shape=(200, 200), centres=((60, 60), (140, 140)), r=30))[0]
    assert smoothing_sigma(small) == SEED_SMOOTHING  # at least a pixel
    assert 5.0 < smoothing_sigma(large) < 7.0  # a fifth of their 30 px half-thickness
    assert smoothing_sigma(np.ones((40, 40), bool)) < 5.0  # the image's edge bounds it
    assert smoothing_sigma(np.zeros((40, 40), bool)) == SEED_SMOOTHING


def test_texture_inside_large_objects_does_not_shatter_them():
    """Large nuclei whose maps are speckled inside (chromatin in an H&E stain: the
    network's distance dips and its boundary rises in spots) stay one object each, and
    the two that touch stay two."""
    rng = np.random.default_rng(0)
    masks = discs(shape=(160, 160), centres=((40, 40), (40, 120), (115, 60), (115, 107)),
                  r=24)  # the last two touch
    fg, boundary, dist = instance_targets(masks)
    inside = masks.any(0) & ~boundary
    speckle = cv2.dilate(((rng.random(fg.shape) < 0.03) & inside).astype(np.uint8),
                         np.ones((3, 3), np.uint8)).astype(bool) & inside
    dist, boundary = dist.astype(np.float32), boundary.astype(np.float32)
    dist[speckle] = 0.35
    boundary[speckle] = 0.7
    labels = split_instances(fg.astype(np.float32), boundary, dist)
    assert labels.max() == 4  # (smoothed by 1 px only, they come out as 5)
    for mask in masks:
        assert max(iou(mask, labels == k) for k in range(1, 5)) > 0.9
