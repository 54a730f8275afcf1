"""Inspect on an instance U-Net run: the split's own sliders (seed and foreground
thresholds) re-split the per-pixel maps cached once per image; the network is never
called again."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from test_inspect_detection import shot
from testutil import FAST_TRAINING, add_toy_objects, inspect_on_copy

from studio.core.project import Project
from studio.ml.inspect.detections import DetectionParams
from studio.ml.inspect.instance_maps import InstanceMaps, label_objects
from studio.ml.tasks.registry import TASK

TINY = {"task": "instance", "model": "unet_instances", "epochs": 1, "image_size": 48,
        "batch_size": 2, "resize_policy": "crop", "model_options": {"depth": 2, "width": 8},
        "device": "cpu", **FAST_TRAINING}


def discs_maps(size: int = 64) -> dict[str, np.ndarray]:
    """Maps of two touching discs with no border predicted: one seed region each only
    while the seed threshold is high."""
    yy, xx = np.mgrid[:size, :size]
    d1 = np.clip(1 - np.hypot(xx - 22, yy - 32) / 12, 0, 1)
    d2 = np.clip(1 - np.hypot(xx - 42, yy - 32) / 12, 0, 1)
    distance = np.maximum(d1, d2).astype(np.float32)
    foreground = (distance > 0).astype(np.float32) * 0.9
    return {"foreground": foreground, "boundary": np.zeros_like(foreground),
            "distance": distance}


def maps_objects(maps, seed, foreground, min_area, min_score, most):
    labels = TASK["instance"].split_maps(maps, seed, foreground, min_area)
    return label_objects(labels, maps, min_score, most)


def test_maps_split_again_by_the_seed_threshold():
    maps = discs_maps()
    low = maps_objects(maps, 0.05, 0.5, 8, 0.0, 100)
    high = maps_objects(maps, 0.5, 0.5, 8, 0.0, 100)
    assert len(low) == 1 and len(high) == 2  # a low seed merges the touching discs
    assert all(m.area >= 8 for m in high.masks) and np.allclose(high.scores, 0.9)
    none = maps_objects(maps, 0.5, 0.95, 8, 0.0, 100)  # nothing above the foreground cut
    assert len(none) == 0 and none.boxes.shape == (0, 4)


@pytest.fixture(scope="module")
def unet_template(tmp_path_factory):
    import torch

    from studio.ml.fit import fit

    root = tmp_path_factory.mktemp("unet")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with Project.create(root / "proj", name="t") as project:
        add_toy_objects(project, root / "img", ["train"] * 2 + ["val"] * 2, kind="mask",
                        objects=3)
        run_id = fit(project, dict(TINY)).run_id
    torch.set_num_threads(threads)
    return root / "proj", run_id


@pytest.fixture
def unet_ws(qtbot, unet_template, tmp_path):
    with inspect_on_copy(qtbot, unet_template, tmp_path) as w:
        yield w


def _type(qtbot, w, slider, text: str) -> None:
    """Type a value into the slider's own field with real key events (the slider's
    handle takes no keys), then wait for the debounced refresh."""
    field = slider.findChild(QLineEdit)
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignals([w.imageShown, w.splitUpdated], timeout=30000):
        qtbot.keyClicks(field, text)
        qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)


def test_seed_slider_resplits_cached_maps_without_the_network(unet_ws, qtbot):
    w = unet_ws
    w.run_bar.run.setCurrentIndex(w.run_bar.run.findData(w.run_id))
    with qtbot.waitSignals([w.sessionOpened, w.imageShown, w.splitUpdated], timeout=60000):
        w.open_selected()
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)
    s = w.session
    assert isinstance(s.split_maps, InstanceMaps) and s.network_calls == 2
    calls = []
    model = s.predictor.model
    model.net.register_forward_hook(lambda *_a: calls.append(1))
    # one epoch teaches the tiny network no shapes, so its maps would split alike at any
    # seed: plant maps of two touching discs in the session's cache, where the network's
    # maps were kept, so the count below shows what the split sliders do
    assert set(s.split_maps.maps) == set(s.evaluated)
    assert all(m["foreground"].shape == (64, 64) for m in s.split_maps.maps.values())
    for image_id in s.evaluated:
        s.split_maps.keep(image_id, discs_maps())
    assert s.split_maps.nbytes() == 2 * 3 * 64 * 64  # one byte per pixel and map
    panel = w.detection.panel
    assert panel.splits() and panel.seed.isVisible() and panel.foreground.isVisible()
    assert panel.params().seed == pytest.approx(model.roi_heads.seed_threshold)
    # every pixel kept, whatever the network scored: the split alone decides the count
    panel.score.setValue(0.01)
    panel.flush()
    qtbot.waitUntil(lambda: w.detection.result is not None
                    and w.detection.result.params.score == 0.01, timeout=30000)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)
    counts = {}
    for text, label in (("0.05", "low"), ("0.6", "high")):  # (smoothed peaks: below 0.8)
        _type(qtbot, w, panel.seed, text)
        result = w.detection.result
        assert result.params.seed == panel.params().seed
        counts[label] = len(result.raw)
    assert panel.params().seed == pytest.approx(0.6)
    assert counts["low"] != counts["high"], counts
    assert panel.row_count() >= len(w.detection.result.matching.kept)
    # the readouts follow the re-split objects: the split's mask mAP of this setting
    high = s.map_report(panel.params().nms_iou, panel.params())
    assert panel.value("Mask mAP@0.5", 1) == f"{high['mask']['map50']:.3f}"
    assert s.split_maps.splits > 0
    shot(w, "inspect_instance_split.png")
    assert calls == [] and s.network_calls == 2  # once per image, never again
    # back at the run's own split values: the network's own objects again
    own = s.default_params
    assert s.objects(s.evaluated[0], own) is s.raw[s.evaluated[0]]
    other = DetectionParams(own.score, own.nms_iou, own.match_iou, 0.9, own.foreground)
    assert s.objects(s.evaluated[0], other) is not s.raw[s.evaluated[0]]
