"""The split's thresholds chosen on the validation images (StarDist's
optimize_thresholds): the best pair on the measured images, kept with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import add_toy_objects
from torch import nn

from studio.ml.evaluation import evaluate_run
from studio.ml.fit import fit
from studio.ml.models.registry import build_model
from studio.ml.models.unet_instances import keeping_maps
from studio.ml.tasks.detection.metrics import DetectionMeter
from studio.ml.tasks.instance.split import instance_targets
from studio.ml.tasks.instance.tune import KeptMaps, measure_split, tune_split
from studio.ml.tasks.registry import TASK


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float32), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _pairs_image():
    """Maps of pairs of touching discs whose distance peaks are low (0.55): a seed
    threshold of 0.5 finds each disc, 0.6 and above none, so the pair merges."""
    masks = np.zeros((4, 64, 96), bool)
    yy, xx = np.mgrid[:64, :96]
    for k, (cy, cx) in enumerate(((20, 20), (20, 38), (46, 60), (46, 78))):
        masks[k] = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9 ** 2
    fg, _border, dist = instance_targets(masks)
    maps = np.stack([fg.astype(np.float32), np.zeros_like(dist), dist * 0.55])
    return torch.from_numpy(_logit(maps)), masks


def test_the_best_pair_is_chosen_and_the_figures_follow_it():
    image, masks = _pairs_image()
    model = build_model("unet_instances", 1, 3, options={
        "depth": 1, "width": 4, "input_norm": "none", "seed_threshold": 0.7})
    model.net = nn.Identity()
    model.eval()
    meter = DetectionMeter(1, ["nucleus"], masks=True)
    target = {"masks": torch.from_numpy(masks.astype(np.uint8)),
              "labels": torch.ones(4, dtype=torch.int64), "boxes": torch.zeros(4, 4)}
    with torch.no_grad(), TASK["instance"].split_tuning(model) as kept:
        meter.update(model([image]), [target])
    before = meter.compute()["mask_map50"]
    params, figures = tune_split(model, meter, kept, "mask_map50")
    assert isinstance(kept, KeptMaps) and len(kept) == 1
    assert params["seed_threshold"] < 0.55 and figures["mask_map50"] > before
    assert figures["mask_map50"] == pytest.approx(1.0)
    # the meter's own figures are untouched: the trial ran on a copy
    assert meter.compute()["mask_map50"] == before


def test_maps_beyond_the_budget_leave_the_thresholds_alone():
    kept = KeptMaps(max_pixels=100)
    kept.append({"foreground": np.zeros((8, 8), np.float32)})
    kept.append({"foreground": np.zeros((8, 8), np.float32)})
    assert len(kept) == 1 and not kept.complete
    model = build_model("unet_instances", 1, 1, options={"depth": 1, "width": 4})
    meter = DetectionMeter(1, ["a"], masks=True)
    assert tune_split(model, meter, kept, "mask_map50") is None
    with keeping_maps(model, kept) as same:
        assert same is kept


def test_a_run_keeps_the_chosen_thresholds_with_its_weights(project, tmp_path, monkeypatch,
                                                            torch_one_thread):
    """Whatever pair validation chooses is what the checkpoint, evaluation and the
    history say. (A network trained for seconds scores 0 at every pair and would keep
    the configured one: the choice is made here to be (0.3, 0.4).)"""
    def choose(model, meter, kept, metric):
        return ({"seed_threshold": 0.3, "mask_threshold": 0.4},
                measure_split(model, meter, kept, 0.3, 0.4))

    monkeypatch.setattr(TASK["instance"], "tune_split", choose)
    add_toy_objects(project, tmp_path / "img", ["train"] * 2 + ["val"] * 2, kind="mask",
                    objects=3)
    cfg = {"task": "instance", "model": "unet_instances", "epochs": 2, "image_size": 48,
           "batch_size": 2, "resize_policy": "crop", "val_every": 1,
           "model_options": {"depth": 2, "width": 8}}
    logs: list[str] = []
    result = fit(project, cfg, callbacks={"on_log": logs.append})
    best = project.run(result.run_id).history[result.best["epoch"] - 1]
    ckpt = torch.load(result.checkpoints["best"], map_location="cpu", weights_only=False)
    options = ckpt["config"]["model_options"]
    assert (options["seed_threshold"], options["mask_threshold"]) == (0.3, 0.4)
    assert any("Split thresholds chosen on validation: seed 0.3, foreground 0.4" in line
               for line in logs)
    # evaluation starts from the kept pair: it measures what validation recorded
    again = evaluate_run(project, result.run_id, "val", "best", device="cpu")
    assert again["mask"]["map50"] == pytest.approx(best["mask_map50"], abs=1e-6)
