"""Readouts: per-image counts pooled over a split, following a recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.core.errors import ConfigError
from studio.ml.readouts import SplitReadout, image_stats, readout
from studio.ml.tasks.semantic.metrics import segmentation_metrics


def blobs(seed: int, h=48, w=64, c=3):
    rng = np.random.default_rng(seed)
    target = np.zeros((h, w), np.uint8)
    target[8:30, 6:30] = 1
    target[28:44, 36:60] = 2 % c
    logits = np.stack([(target == k) * 2.5 for k in range(c)]) + rng.normal(0, 1.0, (c, h, w))
    p = np.exp(logits)
    return target, (p / p.sum(0)).astype(np.float32)


def test_readout_matches_segmentation_metrics():
    target, p = blobs(0)
    pred = p.argmax(0).astype(np.uint8)
    target[0:3, 0:5] = 255  # not labelled there
    ours = readout(image_stats(pred, target, 3))
    ref = segmentation_metrics(pred, target, 3)
    for key in ("pixel_accuracy", "mean_iou", "mean_dice", "mean_precision", "mean_recall",
                "mean_boundary_f1", "mean_hd95", "mean_hausdorff"):
        assert ours[key] == pytest.approx(ref[key]), key
    assert ours["iou"] == pytest.approx(ref["iou"])
    assert ours["unlabelled"] == 0 and ours["pixels"] == target.size - 15
    # a class only in the prediction, one only in the label map, one in neither
    odd_pred, odd_target = pred.copy(), target.copy()
    odd_pred[odd_pred == 2] = 3
    ours = readout(image_stats(odd_pred, odd_target, 5))
    ref = segmentation_metrics(odd_pred, odd_target, 5)
    for key in ("boundary_f1", "boundary_iou", "hd95", "hausdorff", "iou", "recall"):
        assert ours[key] == pytest.approx(ref[key], nan_ok=True), key


def test_pooled_over_images_equals_the_stacked_metrics():
    pairs = [blobs(s) for s in range(3)]
    preds = [p.argmax(0).astype(np.uint8) for _, p in pairs]
    targets = [t for t, _ in pairs]
    ours = readout([image_stats(p, t, 3) for p, t in zip(preds, targets, strict=True)])
    ref = segmentation_metrics(np.stack(preds), np.stack(targets), 3)
    for key in ("pixel_accuracy", "mean_iou", "mean_dice", "mean_boundary_f1", "mean_hd95"):
        assert ours[key] == pytest.approx(ref[key]), key
    assert ours["images"] == 3


def test_unlabelled_predictions_count_as_misses_not_false_positives():
    target = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 255, 1, 255]], np.uint8)
    r = readout(image_stats(pred, target, 2, boundary=False))
    assert r["pixel_accuracy"] == 0.5 and r["unlabelled"] == 0.5
    assert r["precision"] == [1.0, 1.0] and r["recall"] == [0.5, 0.5]
    assert r["confusion_matrix"] == [[1, 0, 1], [0, 1, 1]]
    with pytest.raises(ConfigError, match="same"):
        image_stats(pred, target[:, :3], 2)
    with pytest.raises(ConfigError, match="class 1; the model has 1"):
        image_stats(pred, target, 1)


def test_split_readout_follows_the_recipe_incrementally():
    pairs = [blobs(s) for s in range(4)]
    split = SplitReadout([t for t, _ in pairs], [p for _, p in pairs], threads=2)
    first = split.split()
    assert first["before"] == first["after"] and all(v == 0 for v in first["change"].values())
    recipe = {"steps": [{"op": "threshold"},
                        {"op": "components", "min_size": 20},
                        {"op": "fill_holes", "max_area": 50}]}
    assert split.update(recipe)
    after = split.split()
    assert after["after"]["mean_dice"] > after["before"]["mean_dice"]
    assert after["change"]["mean_iou"] > 0 and len(after["dice_after"]) == 4
    assert all(a >= b for a, b in zip(after["dice_after"], after["dice_before"], strict=True))
    stats = list(split.after)
    recipe["steps"][2]["max_area"] = 51  # no hole of exactly 51 px: masks do not change
    split.update(recipe)
    assert all(a is b for a, b in zip(stats, split.after, strict=True))  # counts reused
    assert all(r.steps_run == 1 for r in split.runners)
    one = split.image(0)
    assert one["after"]["mean_dice"] == pytest.approx(after["dice_after"][0])
    assert not split.update({"steps": []}, cancelled=lambda: True)
    empty = np.full_like(split.masks[1], 255)
    split.set_mask(1, empty)
    assert split.image(1)["after"]["unlabelled"] == 1.0
    assert math.isnan(split.image(1)["after"]["mean_hd95"]) is False


def test_confusion_counts_for_many_classes_and_ignored_pixels():
    rng = np.random.default_rng(5)
    for c in (2, 15, 40):
        target = rng.integers(0, c, (30, 40)).astype(np.uint8)
        target[:3] = 255
        pred = rng.integers(0, c, (30, 40)).astype(np.uint8)
        pred[5, :7] = 255
        cm = np.asarray(readout(image_stats(pred, target, c, boundary=False))["confusion_matrix"])
        valid = target != 255
        expected = np.zeros((c, c + 1), np.int64)
        np.add.at(expected, (target[valid], np.minimum(pred[valid], c)), 1)
        assert np.array_equal(cm, expected), c


def test_boundary_counts_reused_per_class_match_a_fresh_measurement():
    from studio.ml.readout_boundary import TargetBoundaries

    target, p = blobs(7)
    pred = p.argmax(0).astype(np.uint8)
    cached = TargetBoundaries(target, 3)
    cached.counts(pred)
    changed = pred.copy()
    changed[changed == 2] = 0  # class 2 gone; classes 0 and 1's masks: 0 changes, 1 not
    again, fresh = cached.counts(changed), TargetBoundaries(target, 3).counts(changed)
    for name in ("band_inter", "band_union", "n_pred", "n_true", "hit_pred", "hit_true"):
        assert np.array_equal(getattr(again, name), getattr(fresh, name)), name
    assert np.allclose(again.hd95, fresh.hd95, equal_nan=True)
