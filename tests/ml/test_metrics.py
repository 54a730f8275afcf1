"""Metrics against scikit-learn and SciPy reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion, distance_transform_edt
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    jaccard_score,
    precision_recall_fscore_support,
)
from sklearn.metrics import confusion_matrix as sk_confusion

from studio.core.errors import ConfigError, DataError
from studio.ml.metrics import (
    ClassificationMeter,
    SegmentationMeter,
    classification_metrics,
    segmentation_metrics,
)

TOL = 1e-9


def _close(a, b) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert np.allclose(a, b, atol=TOL, rtol=0, equal_nan=True), (a, b)


@pytest.mark.parametrize("seed", range(6))
def test_classification_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 7))
    n = int(rng.integers(1, 60))
    y_true = rng.integers(0, c, n)
    # classes sometimes missing from y_pred or y_true -> zero divisions
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, max(c - 1, 1), n))
    m = classification_metrics(y_true, y_pred, c)
    labels = list(range(c))
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=TOL)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    _close(m["precision"], p)
    _close(m["recall"], r)
    _close(m["f1"], f)
    assert m["support"] == s.tolist()
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0
        )
        _close(m[f"{avg}_precision"], p)
        _close(m[f"{avg}_recall"], r)
        _close(m[f"{avg}_f1"], f)
    assert m["confusion_matrix"] == sk_confusion(y_true, y_pred, labels=labels).tolist()


def test_classification_edge_cases():
    m = classification_metrics([], [], 3)
    assert m["accuracy"] == 0.0 and m["macro_f1"] == 0.0
    with pytest.raises(DataError, match="outside 0..2"):  # the data's fault, not the config's
        classification_metrics([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):  # a caller passing unequal lengths is our bug
        classification_metrics([0, 1], [0], 3)
    assert not issubclass(DataError, ConfigError)


def test_classification_meter_streams_and_accepts_soft_targets():
    rng = np.random.default_rng(1)
    meter = ClassificationMeter(4)
    all_t, all_p = [], []
    for _ in range(3):
        logits = torch.tensor(rng.normal(size=(7, 4)))
        target = torch.tensor(rng.integers(0, 4, 7))
        soft = torch.nn.functional.one_hot(target, 4).float() * 0.7 + 0.075  # mixup-like
        meter.update(logits, soft)
        all_t.append(target.numpy())
        all_p.append(logits.argmax(1).numpy())
    meter.update(torch.tensor([1, 2]), torch.tensor([1, 3]))  # predicted indices
    all_t.append(np.array([1, 3]))
    all_p.append(np.array([1, 2]))
    ref = classification_metrics(np.concatenate(all_t), np.concatenate(all_p), 4)
    assert meter.compute() == ref
    meter.reset()
    assert meter.compute()["accuracy"] == 0.0


def _random_maps(rng, c, shape, ignore_frac=0.1):
    target = rng.integers(0, c, shape)
    pred = np.where(rng.random(shape) < 0.6, target, rng.integers(0, c, shape))
    target = np.where(rng.random(shape) < ignore_frac, 255, target)
    return pred, target


@pytest.mark.parametrize("seed", range(6))
def test_segmentation_overlap_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 6))
    pred, target = _random_maps(rng, c, (2, 13, 17))
    if seed % 2:
        pred[pred == c - 1] = 0  # a class never predicted
        target[target == c - 1] = 0
    m = segmentation_metrics(pred, target, c, boundary=False)
    keep = target != 255
    t, p = target[keep], pred[keep]
    labels = list(range(c))
    present = [(t == k).any() or (p == k).any() for k in labels]
    iou = jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    dice = f1_score(t, p, labels=labels, average=None, zero_division=0)
    prec, rec, _, _ = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=0
    )
    nan = float("nan")
    _close(m["iou"], [v if ok else nan for v, ok in zip(iou, present, strict=True)])
    _close(m["dice"], [v if ok else nan for v, ok in zip(dice, present, strict=True)])
    _close(m["precision"], [v if ok else nan for v, ok in zip(prec, present, strict=True)])
    _close(m["recall"], [v if ok else nan for v, ok in zip(rec, present, strict=True)])
    assert m["pixel_accuracy"] == pytest.approx(accuracy_score(t, p), abs=TOL)
    assert m["mean_iou"] == pytest.approx(np.mean(iou[present]), abs=TOL)
    assert m["mean_dice"] == pytest.approx(np.mean(dice[present]), abs=TOL)
    if seed % 2:
        assert math.isnan(m["iou"][c - 1])


def test_ignored_pixels_do_not_count():
    rng = np.random.default_rng(3)
    pred, target = _random_maps(rng, 3, (20, 20), ignore_frac=0.3)
    m1 = segmentation_metrics(pred, target, 3)
    pred2 = pred.copy()
    pred2[target == 255] = rng.integers(0, 3, int((target == 255).sum()))
    m2 = segmentation_metrics(pred2, target, 3)
    assert m1 == m2 or all(
        np.allclose(np.asarray(m1[k], float), np.asarray(m2[k], float), equal_nan=True)
        for k in m1
    )
    all_ignored = segmentation_metrics(pred, np.full_like(target, 255), 3)
    assert math.isnan(all_ignored["mean_iou"]) and math.isnan(all_ignored["pixel_accuracy"])
    assert all(math.isnan(v) for v in all_ignored["hausdorff"])


def _contour(mask: np.ndarray) -> np.ndarray:
    """Mask minus its 3x3 erosion, outside the image counting as background (SciPy)."""
    return mask & ~binary_erosion(mask, structure=np.ones((3, 3)), border_value=0)


def _blobs(rng, shape, k):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    field = np.zeros(shape)
    for _ in range(k):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        field += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 6) ** 2))
    return field


@pytest.mark.parametrize("seed", range(5))
def test_hausdorff_and_boundary_match_scipy(seed):
    rng = np.random.default_rng(seed)
    shape = (40, 48)
    target = (_blobs(rng, shape, 4) > 0.5).astype(np.int64)
    pred = (_blobs(rng, shape, 4) > 0.5).astype(np.int64)
    pred[:4] = target[:4]
    target[rng.random(shape) < 0.02] = 255
    tol = 2
    m = segmentation_metrics(pred, target, 2, boundary_tolerance=tol)
    valid = target != 255
    for c in range(2):
        tc = _contour((target == c) & valid)
        pc = _contour((pred == c) & valid)
        a, b = np.argwhere(pc), np.argwhere(tc)
        hd = max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])
        assert m["hausdorff"][c] == pytest.approx(hd, abs=TOL)
        d_pt = distance_transform_edt(~tc)[pc]
        d_tp = distance_transform_edt(~pc)[tc]
        hd95 = np.percentile(np.concatenate([d_pt, d_tp]), 95)
        assert m["hd95"][c] == pytest.approx(hd95, abs=TOL)
        prec, rec = (d_pt <= tol).mean(), (d_tp <= tol).mean()
        assert m["boundary_f1"][c] == pytest.approx(2 * prec * rec / (prec + rec), abs=TOL)
        ero = np.ones((3, 3))
        tb = ((target == c) & valid) & ~binary_erosion((target == c) & valid, ero, tol)
        pb = ((pred == c) & valid) & ~binary_erosion((pred == c) & valid, ero, tol)
        assert m["boundary_iou"][c] == pytest.approx((tb & pb).sum() / (tb | pb).sum(), abs=TOL)


def test_boundary_edge_cases():
    target = np.zeros((10, 12), np.int64)
    target[2:6, 3:8] = 1
    perfect = segmentation_metrics(target, target, 3)
    assert perfect["hausdorff"][:2] == [0.0, 0.0] and perfect["boundary_f1"][:2] == [1.0, 1.0]
    assert perfect["boundary_iou"][:2] == [1.0, 1.0]
    # class 2 absent from both -> nan and left out of the means
    assert math.isnan(perfect["hausdorff"][2]) and perfect["mean_hausdorff"] == 0.0
    missed = segmentation_metrics(np.zeros_like(target), target, 2)
    assert missed["hausdorff"][1] == pytest.approx(math.hypot(10, 12))
    assert missed["boundary_f1"][1] == 0.0 and missed["boundary_iou"][1] == 0.0
    shifted = np.roll(target, 1, axis=1)
    m = segmentation_metrics(shifted, target, 2, boundary_tolerance=1)
    assert m["boundary_f1"][1] == 1.0 and m["hausdorff"][1] == 1.0


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_segmentation_meter_equals_batch_function(device):
    rng = np.random.default_rng(5)
    meter = SegmentationMeter(3, boundary=True)
    preds, targets = [], []
    for i in range(3):
        logits = torch.tensor(rng.normal(size=(2, 3, 16, 20)), device=device)
        target = torch.tensor(rng.integers(0, 3, (2, 16, 20)), device=device)
        target[:, :2] = 255
        if i == 2:
            meter.update(logits.argmax(1), target)
        else:
            meter.update(logits, target)
        preds.append(logits.argmax(1).cpu().numpy())
        targets.append(target.cpu().numpy())
    got = meter.compute()
    ref = segmentation_metrics(np.concatenate(preds), np.concatenate(targets), 3)
    assert got.keys() == ref.keys()
    for key in ref:
        assert np.allclose(np.asarray(got[key], float), np.asarray(ref[key], float),
                           atol=TOL, equal_nan=True), key
    plain = SegmentationMeter(3)
    plain.update(torch.tensor(preds[0]), torch.tensor(targets[0]))
    assert "hausdorff" not in plain.compute()
    with pytest.raises(DataError, match="outside 0..2"):
        plain.update(torch.zeros(1, 4, 4, dtype=torch.long) + 3, torch.zeros(1, 4, 4))
