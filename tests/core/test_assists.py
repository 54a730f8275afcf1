"""Fill, wand and GrabCut without a GUI; defaults that work on a real noisy EM image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.core.assists import (
    GrabCutSession,
    default_tolerance,
    flood_region,
    noise_sigma,
)
from studio.core.errors import StudioError


def _disc(noise: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(20, 20 + noise + 1, (150, 200, 3), dtype=np.uint8)
    cv2.circle(img, (100, 75), 40, (230, 230, 230), -1)
    return img


def test_noise_sigma_follows_the_noise_not_the_edges():
    flat = np.full((100, 100), 80, np.uint8)
    assert noise_sigma(flat, (50, 50)) == 0
    rng = np.random.default_rng(1)
    noisy = np.clip(80 + rng.normal(0, 8, (100, 100)), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy, (50, 50)) == pytest.approx(8, rel=0.2)
    edged = noisy.copy()
    edged[:, 50:] += 100  # a strong edge through the window barely moves the estimate
    assert noise_sigma(edged, (50, 50)) == pytest.approx(8, rel=0.25)
    assert default_tolerance(flat, (5, 5), "fill") > 0  # flat images still fill


def test_fill_and_wand_take_the_disc():
    img = _disc()
    truth = np.zeros((150, 200), np.uint8)
    cv2.circle(truth, (100, 75), 40, 1, -1)
    for tool, fixed in (("fill", False), ("wand", True)):
        region = flood_region(img, (100, 75), default_tolerance(img, (100, 75), tool), fixed)
        iou = (region & (truth > 0)).sum() / (region | (truth > 0)).sum()
        assert iou > 0.95, tool


def _isbi_cell_clicks(shared_datasets, n_images: int = 3, per_image: int = 4):
    root = shared_datasets / "isbi2012_membrane" / "train"
    for i in range(n_images):
        img = cv2.imread(str(root / "image" / f"{i * 7}.png"), cv2.IMREAD_GRAYSCALE)
        label = cv2.imread(str(root / "label" / f"{i * 7}.png"), cv2.IMREAD_GRAYSCALE) > 127
        inside = cv2.distanceTransform(label.astype(np.uint8), cv2.DIST_L2, 5)
        ys, xs = np.nonzero(inside > 10)  # well inside a cell
        pick = np.random.default_rng(i).choice(len(xs), per_image, replace=False)
        for k in pick:
            yield img, (int(xs[k]), int(ys[k]))


def test_defaults_work_on_a_noisy_em_image(shared_datasets):
    """On ISBI 2012 membranes a fixed step of 16 filled ~5 px and the wand ~100 px."""
    areas = {"fill": [], "wand": []}
    for img, seed in _isbi_cell_clicks(shared_datasets):
        for tool, fixed in (("fill", False), ("wand", True)):
            region = flood_region(img, seed, default_tolerance(img, seed, tool), fixed)
            areas[tool].append(int(region.sum()))
    total = 512 * 512
    assert np.median(areas["fill"]) >= 100, areas["fill"]
    assert np.median(areas["wand"]) >= 1000, areas["wand"]
    for tool, values in areas.items():  # a click inside a cell never takes the whole slice
        assert np.median(values) < 0.25 * total, (tool, values)


def test_grabcut_finds_the_disc_and_refuses_a_box_without_background():
    img = _disc()
    crop = img[20:130, 45:155]
    session = GrabCutSession(crop, (8, 12, 94, 86))
    found = session.result()
    assert found.shape == crop.shape[:2] and found[55, 55] and not found[2, 2]
    with pytest.raises(StudioError, match="background"):
        GrabCutSession(img, (0, 0, 200, 150))
