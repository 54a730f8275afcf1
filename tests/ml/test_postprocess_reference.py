"""The fast label-map steps equal a straightforward reference implementation.

The reference below does what each step's docstring says in the plainest way (one class
at a time over the whole image, NumPy masks, one component at a time), and the fast code
must give the same label map on random maps: several seeds, odd sizes, a 1-pixel image,
an empty class, classes touching the image border, all one class, a background that is
not class 0, no background, class subsets in any order.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from studio.ml.postprocess import (
    apply_recipe,
    components,
    fill_holes,
    morphology,
    threshold,
)

SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}
OPS = {"erode": cv2.MORPH_ERODE, "dilate": cv2.MORPH_DILATE, "open": cv2.MORPH_OPEN,
       "close": cv2.MORPH_CLOSE}


# --- the reference -----------------------------------------------------------------------------
def ref_fill(background):
    return 255 if background is None else background


def ref_classes(classes, num_classes, background):
    return [c for c in range(num_classes) if c != background] if classes is None else classes


def ref_threshold(p, min_confidence):
    labels = p.argmax(0).astype(np.uint8)
    labels[p.max(0) < min_confidence] = 255
    return labels


def ref_morphology(labels, operation, kernel_size, shape, iterations, classes, background,
                   num_classes):
    out = labels.copy()
    fill = ref_fill(background)
    kernel = cv2.getStructuringElement(SHAPES[shape], (kernel_size, kernel_size))
    for c in ref_classes(classes, num_classes, background):
        before = (out == c).astype(np.uint8)
        after = cv2.morphologyEx(before, OPS[operation], kernel, iterations=iterations)
        out[(before == 1) & (after == 0)] = fill
        free = (out == fill) | (out == 255)
        out[(after == 1) & (before == 0) & free] = c
    return out


def ref_components(labels, min_size, keep_largest, connectivity, classes, background,
                   num_classes):
    out = labels.copy()
    fill = ref_fill(background)
    for c in ref_classes(classes, num_classes, background):
        count, cc, stats, _ = cv2.connectedComponentsWithStats(
            (labels == c).astype(np.uint8), connectivity=connectivity)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = areas >= min_size
        if keep_largest > 0:
            order = np.argsort(-areas, kind="stable")  # ties: the first labelled
            keep[order[keep_largest:]] = False
        for i in np.nonzero(~keep)[0] + 1:
            out[cc == i] = fill
    return out


def ref_fill_holes(labels, max_area, classes, background, num_classes):
    out = labels.copy()
    fill = ref_fill(background)
    wanted = set(ref_classes(classes, num_classes, background))
    free = ((labels == fill) | (labels == 255)).astype(np.uint8)
    count, cc, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    h, w = labels.shape
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for i in range(1, count):
        x, y, bw, bh, area = stats[i]
        if x == 0 or y == 0 or x + bw == w or y + bh == h:
            continue  # open to the image border
        if max_area is not None and area > max_area:
            continue
        box = slice(y - 1, y + bh + 1), slice(x - 1, x + bw + 1)
        hole = (cc[box] == i).astype(np.uint8)
        rim = (cv2.dilate(hole, cross) == 1) & (hole == 0)
        around = np.unique(labels[box][rim])
        if len(around) == 1 and int(around[0]) in wanted:
            out[box][hole == 1] = around[0]
    return out


# --- random maps -------------------------------------------------------------------------------
def blobs(shape, classes, seed, unlabelled=0.02):
    """Blobs of `classes` classes, speckle of every class, and unlabelled pixels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    labels = np.zeros(shape, np.uint8)
    for _ in range(max(1, h * w // 300)):
        c = int(rng.integers(0, classes))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, max(2, w // 4))), int(rng.integers(1, max(2, h // 4))))
        cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, c, -1)
    speckle = rng.random(shape) < 0.05
    labels[speckle] = rng.integers(0, classes, int(speckle.sum()))
    labels[rng.random(shape) < unlabelled] = 255
    return labels


def maps():
    """(name, label map, number of classes): the ugly cases first."""
    yield "one pixel", np.array([[3]], np.uint8), 5
    yield "one unlabelled pixel", np.array([[255]], np.uint8), 5
    yield "one row", blobs((1, 40), 4, 1), 4
    yield "one column", blobs((37, 1), 4, 2), 4
    yield "all one class", np.full((30, 41), 2, np.uint8), 5
    yield "all background", np.zeros((25, 25), np.uint8), 5
    frame = np.zeros((33, 47), np.uint8)  # class 1 along the border, class 2 inside
    frame[:, :3] = frame[:3] = frame[-2:] = frame[:, -1:] = 1
    frame[10:20, 10:30] = 2
    frame[14:16, 14:16] = 0
    yield "border frame", frame, 4  # class 3 is empty
    yield "twelve classes", blobs((90, 110), 12, 7), 12  # more than one byte of class bits
    for seed, shape in enumerate([(64, 64), (97, 53), (128, 160), (50, 200),
                                  (160, 96), (200, 200)]):
        yield f"blobs seed {seed}", blobs(shape, 5, seed), 5


CASES = list(maps())
IDS = [c[0] for c in CASES]

# (classes, background): every class but the background, a subset in a given order, no
# background, a background that is not 0, the background among the classes
SETTINGS = [(None, 0), ([3, 1], 0), (None, None), ([2, 0, 4], None), (None, 2), ([0, 1], 0)]


@pytest.mark.parametrize("name,labels,n", CASES, ids=IDS)
def test_morphology_equals_reference(name, labels, n):
    for (classes, background), operation in itertools.product(SETTINGS, OPS):
        classes = None if classes is None else [c for c in classes if c < n]
        for size, shape, iterations in [(3, "ellipse", 1), (3, "rect", 2), (5, "cross", 1),
                                        (5, "ellipse", 2), (4, "rect", 1), (7, "ellipse", 1),
                                        (1, "cross", 1)]:
            args = (operation, size, shape, iterations, classes, background, n)
            want = ref_morphology(labels, *args)
            got = morphology(labels, *args)
            assert np.array_equal(got, want), (name, args)


@pytest.mark.parametrize("name,labels,n", CASES, ids=IDS)
def test_components_equal_reference(name, labels, n):
    for (classes, background), connectivity in itertools.product(SETTINGS, (4, 8)):
        classes = None if classes is None else [c for c in classes if c < n]
        for min_size, keep_largest in [(2, 0), (5, 0), (9, 0), (50, 0), (400, 0), (0, 2),
                                       (6, 1)]:
            args = (min_size, keep_largest, connectivity, classes, background, n)
            assert np.array_equal(components(labels, *args), ref_components(labels, *args)), \
                (name, args)


@pytest.mark.parametrize("name,labels,n", CASES, ids=IDS)
def test_fill_holes_equals_reference(name, labels, n):
    for classes, background in SETTINGS:
        classes = None if classes is None else [c for c in classes if c < n]
        for max_area in (1, 3, 10, 64, 500, None):
            args = (max_area, classes, background, n)
            assert np.array_equal(fill_holes(labels, *args), ref_fill_holes(labels, *args)), \
                (name, args)


def probabilities(shape, classes, seed):
    rng = np.random.default_rng(seed)
    target = blobs(shape, classes, seed + 100, unlabelled=0)
    logits = np.stack([(target == c) * 3.0 for c in range(classes)]).astype(np.float32)
    logits += rng.normal(0, 1.0, logits.shape).astype(np.float32)
    p = np.exp(logits - logits.max(0))
    return (p / p.sum(0)).astype(np.float32)


@pytest.mark.parametrize("seed,shape", [(0, (1, 1)), (1, (1, 9)), (2, (70, 90)),
                                        (3, (130, 128)), (4, (257, 31))])
def test_threshold_and_whole_recipe_equal_reference(seed, shape):
    p = probabilities(shape, 5, seed)
    for mc in (0.0, 0.3, 0.5, 1.0):
        assert np.array_equal(threshold(p, "argmax", mc), ref_threshold(p, mc))
    ties = np.full((3, *shape), 1 / 3, np.float32)  # ties go to the first class
    assert np.array_equal(threshold(ties), np.zeros(shape, np.uint8))
    recipe = {"background": 0, "steps": [
        {"op": "threshold", "min_confidence": 0.4},
        {"op": "morphology", "operation": "open", "kernel_size": 3},
        {"op": "morphology", "operation": "close", "kernel_size": 3},
        {"op": "components", "min_size": 20},
        {"op": "fill_holes", "max_area": 30}]}
    want = ref_threshold(p, 0.4)
    want = ref_morphology(want, "open", 3, "ellipse", 1, None, 0, 5)
    want = ref_morphology(want, "close", 3, "ellipse", 1, None, 0, 5)
    want = ref_components(want, 20, 0, 8, None, 0, 5)
    want = ref_fill_holes(want, 30, None, 0, 5)
    assert np.array_equal(apply_recipe(recipe, p), want)


@pytest.mark.parametrize("shape", [(0, 6), (6, 0)])
def test_an_empty_map_passes_every_step_unchanged(shape):
    labels = np.zeros(shape, np.uint8)
    for operation in OPS:
        assert morphology(labels, operation, 3, num_classes=3).shape == shape
    assert components(labels, 5, num_classes=3).shape == shape
    assert components(labels, 0, 1, num_classes=3).shape == shape
    assert fill_holes(labels, 10, num_classes=3).shape == shape
    assert fill_holes(labels, None, num_classes=3).shape == shape
    assert threshold(np.zeros((3, *shape), np.float32), "argmax", 0.5).shape == shape
    assert threshold(np.zeros((3, *shape), np.float32), "per_class").shape == shape
    recipe = {"background": 0, "steps": [
        {"op": "threshold", "min_confidence": 0.4},
        {"op": "morphology", "operation": "close", "kernel_size": 3},
        {"op": "components", "min_size": 20},
        {"op": "fill_holes", "max_area": 30}]}
    assert apply_recipe(recipe, np.zeros((3, *shape), np.float32)).shape == shape
