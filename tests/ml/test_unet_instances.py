"""The instance U-Net (foreground, touching borders, distance; seeded watershed) through
the one detection path: registry, config, fit, validation, tiled evaluation, predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import add_toy_objects

from studio.core.errors import ConfigError
from studio.ml.config import validate_config
from studio.ml.evaluation import evaluate_run
from studio.ml.fit import fit
from studio.ml.models.registry import build_model, list_models
from studio.ml.predict import predict

TINY = {"task": "instance", "model": "unet_instances", "epochs": 2, "image_size": 48,
        "batch_size": 2, "resize_policy": "crop",
        "model_options": {"depth": 2, "width": 8}}


def _target(masks: torch.Tensor, labels) -> dict:
    return {"masks": masks, "labels": torch.tensor(labels), "boxes": torch.zeros(len(labels), 4)}


def test_listed_for_instance_with_a_description():
    spec = {s.name: s for s in list_models("instance")}["unet_instances"]
    assert "watershed" in spec.description and spec.task == "instance"


def test_losses_by_name_and_detections_like_torchvision():
    model = build_model("unet_instances", 2, 3, options={"depth": 2, "width": 8})
    masks = torch.zeros(2, 40, 40, dtype=torch.uint8)
    masks[0, 4:14, 4:14] = 1
    masks[1, 4:14, 14:24] = 1  # touching the first
    model.train()
    losses = model([torch.rand(3, 40, 40), torch.rand(3, 32, 36)],
                   [_target(masks, [1, 2]), _target(masks[:0, :32, :36], [])])
    assert set(losses) == {"loss_foreground", "loss_boundary", "loss_distance", "loss_class"}
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 40, 40)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"}
    assert out["masks"].shape[1:] == (1, 40, 40)
    with pytest.raises(ValueError, match="targets"):
        model.train()
        model([torch.rand(3, 40, 40)])


def test_the_map_weights_scale_their_losses():
    masks = torch.zeros(2, 40, 40, dtype=torch.uint8)
    masks[0, 4:14, 4:14] = 1
    masks[1, 4:14, 14:24] = 1
    image = torch.rand(3, 40, 40)
    found = {}
    for weight in (1.0, 4.0):
        torch.manual_seed(0)
        model = build_model("unet_instances", 1, 3, options={
            "depth": 2, "width": 8, "distance_weight": weight, "boundary_weight": weight})
        model.train()
        with torch.no_grad():
            found[weight] = model([image], [_target(masks, [1, 1])])
    for name in ("loss_distance", "loss_boundary"):
        assert found[4.0][name] > found[1.0][name] > 0
    assert float(found[4.0]["loss_distance"]) == pytest.approx(
        4 * float(found[1.0]["loss_distance"]), rel=1e-4)
    assert float(found[4.0]["loss_foreground"]) == pytest.approx(
        float(found[1.0]["loss_foreground"]), rel=1e-5)


def test_split_thresholds_live_on_the_heads():
    model = build_model("unet_instances", 1, 1, options={"depth": 1, "width": 4,
                                                        "seed_threshold": 0.3})
    assert model.roi_heads.seed_threshold == 0.3
    assert model.roi_heads.detections_per_img == 500


@pytest.mark.parametrize("options, path", [
    ({"seed_threshold": 1.5}, "model_options.seed_threshold"),
    ({"min_area": 0}, "model_options.min_area"),
    ({"boundary_weight": -1}, "model_options.boundary_weight"),
    ({"distance_weight": 0}, "model_options.distance_weight"),
])
def test_bad_split_options_are_refused_by_path(options, path):
    with pytest.raises(ConfigError) as info:
        validate_config({**TINY, "model_options": options})
    assert info.value.path == path


def test_fit_evaluate_predict(project, tmp_path, torch_one_thread):
    ids = add_toy_objects(project, tmp_path / "img", ["train"] * 4 + ["val"] * 2, size=64)
    torch.manual_seed(0)
    result = fit(project, dict(TINY))
    assert result.status == "finished" and result.checkpoints["best"]
    assert "mask_map50" in result.history[-1]
    metrics = evaluate_run(project, result.run_id, "val")
    assert {"box", "mask"} <= set(metrics) and metrics["notes"] == []
    assert 0.0 <= metrics["mask"]["map50"] <= 1.0
    dets = predict(project, result.run_id, [ids[0]])
    assert len(dets) == 1 and dets[0].masks is not None
    assert dets[0].masks.shape[1:] == (64, 64)
    assert np.all((dets[0].scores >= 0) & (dets[0].scores <= 1))
    # Inspect: the raw objects once, the score slider filters them as for Mask R-CNN
    from studio.ml.inspect.detections import DetectionParams, open_detection_session

    session = open_detection_session(project, result.run_id, "val", device="cpu")
    image_id = session.evaluated[0]
    loose = session.image_result(image_id, DetectionParams(score=0.0))
    strict = session.image_result(image_id, DetectionParams(score=0.99))
    assert len(strict.kept_objects()) <= len(loose.kept_objects())
    assert set(strict.kept_objects()) <= set(loose.kept_objects())


def test_resume_after_a_validated_epoch(project, tmp_path, torch_one_thread):
    """The model has no validation loss (NaN, stored as null): resuming after an epoch
    that validated compared the stored null with the next epoch's loss and failed."""
    import threading

    add_toy_objects(project, tmp_path / "img", ["train"] * 2 + ["val"], size=48)
    stop = threading.Event()
    cfg = {**TINY, "epochs": 3, "val_every": 1}
    first = fit(project, cfg, callbacks={"on_epoch": lambda info: stop.set()}, stop=stop)
    assert first.status == "stopped" and "mask_map50" in first.history[-1]
    assert project.run(first.run_id).history[-1]["val_loss"] is None
    resumed = fit(project, None, resume=first.run_id)
    assert resumed.status == "finished"
    assert [h["epoch"] for h in project.run(first.run_id).history] == [1, 2, 3]


def test_export_writes_the_network_and_how_to_split(project, tmp_path, torch_one_thread):
    import json

    from studio.ml.export import export_model

    add_toy_objects(project, tmp_path / "img", ["train"] * 2 + ["val"], size=64)
    result = fit(project, {**TINY, "epochs": 1})
    path = export_model(project, result.run_id, "torchscript", tmp_path / "m.pt")
    scripted = torch.jit.load(str(path))
    maps = scripted(torch.zeros(1, 3, 48, 48))
    assert maps.shape == (1, 3 + 2, 48, 48)  # two classes: their logits follow the maps
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["task"] == "instance" and info["split"]["seed_threshold"] == 0.5
    assert "distance" in info["output"]


def test_tiled_prediction_stitches_maps_and_splits_once():
    """Objects straddling window edges come out whole: the maps are blended, then split."""
    from torch import nn

    from studio.ml.tasks.instance.split import instance_targets

    masks = np.zeros((5, 90, 120), bool)
    for k, (y, x) in enumerate(((10, 40), (40, 20), (40, 41), (60, 70), (30, 90))):
        masks[k, y:y + 14, x:x + 14] = True  # 2 and 3 touch; several cross 48-px windows
    fg, boundary, dist = instance_targets(masks)

    def logit(p):
        p = np.clip(p.astype(np.float32), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    image = torch.from_numpy(np.stack([logit(fg), logit(boundary), logit(dist)]))
    model = build_model("unet_instances", 1, 3, options={"depth": 1, "width": 4})
    model.net = nn.Identity()  # the "network" returns the maps it is given
    model.eval()
    whole = model([image])[0]
    from studio.ml.tasks.detection.predict import detect

    tiled = detect(model, [image], "crop", 48, 0.25)[0]
    assert len(whole["scores"]) == len(tiled["scores"]) == 5
    assert tiled["masks"].dtype == torch.bool and tiled["masks"].shape == (5, 1, 90, 120)
    found = sorted(int(m.sum()) for m in tiled["masks"])
    assert found == [196] * 5


def test_switching_to_the_instance_unet_gives_its_own_bounded_options():
    from studio.ml.config import apply_model_options, config_fields, default_config

    cfg = apply_model_options(default_config("instance"), "unet_instances")
    assert "anchor_sizes" not in cfg["model_options"]
    specs = {s.path: s for s in config_fields("instance", cfg)}
    assert specs["model_options.seed_threshold"].maximum == 1.0
    assert specs["model_options.depth"].maximum == 6
    with pytest.raises(ConfigError) as info:
        validate_config({**cfg, "model_options": {"depth": 7}})
    assert info.value.path == "model_options.depth"


def test_learns_to_find_touching_discs(torch_one_thread):
    """A few seconds of training on touching discs: the maps and the split together find
    most objects (mask AP50 well above zero, measured by the engine's COCO evaluation)."""
    import cv2

    from studio.ml.tasks.detection.metrics import DetectionMeter
    from studio.ml.tasks.instance.split import label_from_masks

    rng = np.random.default_rng(0)
    torch.manual_seed(0)

    def sample():
        discs = []
        for _ in range(int(rng.integers(2, 5))):
            cy, cx = (int(v) for v in rng.integers(8, 40, 2))
            m = np.zeros((48, 48), np.uint8)
            cv2.circle(m, (cx, cy), int(rng.integers(5, 8)), 1, -1)
            discs.append(m.astype(bool))
        label = label_from_masks(np.stack(discs))
        masks = np.stack([label == k for k in range(1, int(label.max()) + 1)])
        masks = masks[masks.reshape(len(masks), -1).any(1)]
        image = masks.any(0) * 0.8 + rng.normal(0, 0.1, (48, 48))
        boxes = [[x.min(), y.min(), x.max() + 1, y.max() + 1]
                 for y, x in (np.nonzero(m) for m in masks)]
        return (torch.from_numpy(image.astype(np.float32))[None],
                {"masks": torch.from_numpy(masks.astype(np.uint8)),
                 "labels": torch.ones(len(masks), dtype=torch.int64),
                 "boxes": torch.tensor(boxes, dtype=torch.float32)})

    model = build_model("unet_instances", 1, 1, options={"depth": 2, "width": 8})
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for _ in range(150):
        batch = [sample() for _ in range(4)]
        loss = sum(model([b[0] for b in batch], [b[1] for b in batch]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    meter = DetectionMeter(1, ["disc"], masks=True)
    model.eval()
    with torch.no_grad():
        for image, target in (sample() for _ in range(10)):
            meter.update(model([image]), [target])
    assert meter.report()["mask"]["map50"] > 0.4


def test_the_instance_task_owns_its_methods_and_the_split():
    """Every instance model of the registry is one of the task's methods, described by it;
    the task says which built models split maps, with what, and splits kept maps."""
    from studio.ml.tasks.registry import TASK

    inst = TASK["instance"]
    specs = {s.name: s for s in list_models("instance")}
    assert {m for method in inst.methods for m in method.models} == set(specs)
    method = inst.method("unet_instances")
    assert method.splits_maps and specs["unet_instances"].description == method.description
    assert not inst.method("maskrcnn_resnet18_fpn").splits_maps
    assert TASK["detection"].method("fasterrcnn_resnet18_fpn") is None
    model = build_model("unet_instances", 1, 1, options={"depth": 1, "width": 4,
                                                          "seed_threshold": 0.6})
    assert inst.splits_maps(model) and not TASK["detection"].splits_maps(model)
    params = inst.split_parameters(model)
    assert set(method.split_parameters) <= set(params) and params["seed_threshold"] == 0.6
    with inst.keeping_maps(model) as kept:
        model.eval()
        with torch.no_grad():
            out = model([torch.rand(1, 32, 32)])[0]
    assert len(kept) == 1 and kept[0]["foreground"].shape == (32, 32)
    labels = inst.split_maps(kept[0], params["seed_threshold"], params["mask_threshold"],
                             params["min_area"])
    from studio.ml.inspect.instance_maps import label_objects

    again = label_objects(labels, kept[0], model.roi_heads.score_thresh, 10 ** 6)
    assert len(again) == len(out["scores"])  # the same objects as the model's own split
    assert np.allclose(np.sort(again.scores), np.sort(out["scores"].numpy()))
    assert model.kept_maps is None  # nothing kept outside the context


def test_each_image_is_scaled_by_its_own_mean_and_spread():
    """A dim image and a bright one with the same pattern give the same objects, and
    a whole image predicted window by window is scaled as a whole."""
    from torch import nn

    from studio.ml.models.unet_instances import keeping_maps
    from studio.ml.tasks.detection.predict import detect

    model = build_model("unet_instances", 1, 3, options={"depth": 1, "width": 4})
    model.net = nn.Identity()  # the maps are the scaled input itself
    model.eval()
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(3, 90, 120, generator=gen)
    with torch.no_grad(), keeping_maps(model) as kept:
        model([image * 0.05 - 1.0, image * 3.0 + 2.0])
        detect(model, [image], "crop", 48, 0.25)
        model([image])
    dim, bright, tiled, whole = kept
    for key in ("foreground", "boundary", "distance"):
        np.testing.assert_allclose(dim[key], bright[key], atol=1e-4)
        np.testing.assert_allclose(tiled[key], whole[key], atol=1e-4)
    scaled = torch.logit(torch.from_numpy(whole["foreground"]))
    assert abs(float(scaled.mean())) < 1e-3 and abs(float(scaled.std()) - 1.0) < 1e-2


def test_weights_saved_before_scaling_existed_load_unscaled():
    model = build_model("unet_instances", 1, 3, options={"depth": 1, "width": 4})
    assert bool(model.input_standardized)
    old = {k: v for k, v in model.state_dict().items() if k != "input_standardized"}
    model.load_state_dict(old)
    assert not bool(model.input_standardized)
    unscaled = build_model("unet_instances", 1, 3, options={"depth": 1, "width": 4,
                                                            "input_norm": "none"})
    unscaled.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 16)
    model.eval(), unscaled.eval()
    with torch.no_grad():
        assert torch.equal(model.maps([x[0]])[0], unscaled.maps([x[0]])[0])
        assert torch.equal(model.network()(x), unscaled.net(x))
    with pytest.raises(ConfigError, match="input_norm"):
        validate_config({**TINY, "model_options": {"input_norm": "per-image"}})

