"""One preprocessing path: what evaluation measures is what prediction gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import FAST_TRAINING, add_toy_segmentation, write_png

from studio.core.geometry import MaskGeom
from studio.core.rasterize import label_map
from studio.ml.evaluation import evaluate_run
from studio.ml.fit import fit
from studio.ml.inference import fitted_input, placement, restored_logits
from studio.ml.predict import predict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _add_val_images(project, folder, shapes, seed=5):
    """Non-square blocky images (so letterboxing pads) with background/foreground masks."""
    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(seed)
    ids = []
    for i, (h, w) in enumerate(shapes):
        mask = np.kron(rng.random((h // 4, w // 4)) > 0.5, np.ones((4, 4), bool))
        path = write_png(folder / f"v{i}.png", np.where(mask, 200, 40).astype(np.uint8))
        iid, _ = project.add_image(path, split="val")
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))
        ids.append(iid)
    return ids


@pytest.mark.parametrize("policy", ["resize", "letterbox", "crop"])
def test_predict_gives_what_evaluate_measured(project, tmp_path, policy):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 4, cells=6, seed=3)
    val_ids = _add_val_images(project, tmp_path / "img", [(20, 36), (32, 12)])
    cfg = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 2,
           "resize_policy": policy, "model_options": {"depth": 2, "width": 8},
           **FAST_TRAINING}
    run_id = fit(project, cfg).run_id
    measured = evaluate_run(project, run_id, "val", device="cpu")
    results = predict(project, run_id, val_ids, device="cpu")
    class_ids = [c.id for c in project.classes()]
    correct = labelled = 0
    for iid, result in zip(val_ids, results, strict=True):
        truth = label_map(project, iid, class_ids)
        assert result.label_map.shape == truth.shape  # original size, never the network's
        known = truth != 255
        correct += int((result.label_map[known] == truth[known]).sum())
        labelled += int(known.sum())
    assert measured["pixel_accuracy"] == pytest.approx(correct / labelled, abs=1e-9)


def test_letterbox_pads_with_black_and_restores_the_image_region():
    mean, std = [0.5], [0.25]
    x = torch.full((1, 1, 10, 20), 1.0)  # a normalised grey image, 10 x 20
    place = placement(10, 20, 16, "letterbox")
    assert (place.nh, place.nw, place.top, place.left) == (8, 16, 4, 0)
    net_in = fitted_input(x, place, mean, std)
    assert net_in.shape == (1, 1, 16, 16)
    assert torch.allclose(net_in[0, 0, :4], torch.tensor(-2.0))  # (0 - 0.5) / 0.25: black
    assert torch.allclose(net_in[0, 0, 4:12], torch.tensor(1.0))
    logits = torch.zeros(1, 2, 16, 16)
    logits[:, 1, 4:12] = 5.0  # only the image region says "class 1"
    back = restored_logits(logits, place, 10, 20)
    assert back.shape == (1, 2, 10, 20) and bool((back.argmax(1) == 1).all())
