"""Detection and instance segmentation: targets, models, COCO mAP, prediction helpers."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from testutil import add_toy_objects

from studio.core.errors import ConfigError, WeightsUnavailableError
from studio.core.geometry import MaskGeom
from studio.ml.augment_spec import default_spec
from studio.ml.models.registry import build_model, list_models
from studio.ml.tasks import task_class_ids
from studio.ml.tasks.detection.data import (
    DetectionDataset,
    DetectionTransform,
    collate_detection,
    read_detection_split,
)
from studio.ml.tasks.detection.metrics import DetectionMeter
from studio.ml.tasks.detection.predict import (
    coco_results,
    detect,
    store_detections,
    thresholds,
    to_detections,
    write_coco_results,
)

SMALL = {"min_size": 64, "max_size": 64}


def _dataset(project, tmp_path, task="instance", train=False, spec=None, **kw):
    class_ids = task_class_ids(project, task)
    source = read_detection_split(project, task, "train", class_ids)
    transform = DetectionTransform(spec or default_spec(), task, train, [0.5] * 3,
                                   [0.25] * 3)
    return source, DetectionDataset(source, transform, 3, **kw)


# --- targets -------------------------------------------------------------------------------
def test_targets_hold_boxes_labels_and_masks_in_step(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train", "train"], empty=(1,))
    source, ds = _dataset(project, tmp_path)
    assert len(ds) == 2 and source.object_count == 2
    x, t = ds[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert t["labels"].tolist() == [1, 2]
    assert t["masks"].shape == (2, 64, 64) and t["masks"].dtype == torch.uint8
    for box, mask in zip(t["boxes"], t["masks"], strict=True):
        ys, xs = np.nonzero(mask.numpy())
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    # the image without objects is a valid negative
    _, empty = ds[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["masks"].shape == (0, 64, 64)
    images, targets = collate_detection([ds[0], ds[1]])
    assert isinstance(images, list) and len(targets) == 2


def test_flips_move_boxes_with_masks(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"])
    spec = default_spec()
    spec["hflip"]["p"] = 1.0
    spec["vflip"].update(enabled=True, p=1.0)
    _, plain = _dataset(project, tmp_path)
    _, flipped = _dataset(project, tmp_path, train=True, spec=spec)
    _, a = plain[0]
    _, b = flipped[0]
    assert torch.equal(b["masks"], a["masks"].flip(-1).flip(-2))
    expected = torch.stack([64 - a["boxes"][:, 2], 64 - a["boxes"][:, 3],
                            64 - a["boxes"][:, 0], 64 - a["boxes"][:, 1]], 1)
    assert torch.allclose(b["boxes"], expected)


def test_training_without_any_augmentation(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"])
    spec = default_spec()
    spec["hflip"]["enabled"] = False
    _, plain = _dataset(project, tmp_path)
    _, untouched = _dataset(project, tmp_path, train=True, spec=spec)
    (xa, a), (xb, b) = plain[0], untouched[0]
    assert torch.equal(xa, xb) and torch.equal(a["masks"], b["masks"])


def test_objects_leaving_the_image_are_sanitised(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"], objects=2, seed=3)
    spec = default_spec()
    spec["hflip"]["enabled"] = False
    spec["translate"].update(enabled=True, p=1.0, fraction=[1.0, 1.0])
    _, ds = _dataset(project, tmp_path, train=True, spec=spec)
    torch.manual_seed(0)
    for _ in range(10):
        _, t = ds[0]
        n = len(t["labels"])
        assert t["boxes"].shape == (n, 4) and t["masks"].shape[0] == n
        assert all(m.any() for m in t["masks"])
        assert ((t["boxes"][:, 2:] - t["boxes"][:, :2]) >= 1).all()


def test_crops_keep_only_the_objects_in_the_window(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"], size=96, objects=2, seed=1)
    _, ds = _dataset(project, tmp_path, crop=40)
    for _ in range(10):
        x, t = ds[0]
        assert x.shape == (3, 40, 40) and t["masks"].shape[1:] == (40, 40)
        assert (t["boxes"] >= 0).all() and (t["boxes"] <= 40).all()
    _, padded = _dataset(project, tmp_path, crop=128)
    x, t = padded[0]
    assert x.shape == (3, 128, 128) and len(t["labels"]) == 2


def test_boxes_are_dropped_from_instance_runs_and_other_classes_counted(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"], kind="mask")
    iid = add_toy_objects(project, tmp_path / "img2", ["train"], kind="box", seed=5)[0]
    other = project.get_or_add_class("other")
    project.add_annotation(iid, other, "box", (1, 1, 5, 5))
    source = read_detection_split(project, "instance", "train",
                                  task_class_ids(project, "instance"))
    assert source.dropped["image(s) with box objects (instance segmentation needs masks)"] == 1
    assert len(source.samples) == 1 and source.object_count == 2
    assert "1 image(s) with box objects" in source.dropped_message()
    det = read_detection_split(project, "detection", "train",
                               [c for c in task_class_ids(project, "detection")
                                if c != other])
    assert det.dropped["object(s) of classes not in the run"] == 1
    assert det.object_count == 4
    project.add_annotation(iid, other, "mask", MaskGeom.from_full(np.ones((4, 4), bool)),
                           source="model:1")
    project.set_status(iid, "review")
    det = read_detection_split(project, "detection", "train",
                               task_class_ids(project, "detection"))
    # the model's object waits for review; the objects people drew on that image still train
    assert det.dropped["object(s) made by a model, waiting for review"] == 1
    assert det.object_count == 5


# --- models --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [s.name for s in list_models("detection")
                                  + list_models("instance")
                                  if "anchor_sizes" in s.default_options])  # the R-CNNs;
# the instance U-Net has tests of its own (test_unet_instances.py)
def test_every_model_trains_a_step_and_predicts(project, tmp_path, name, torch_one_thread):
    add_toy_objects(project, tmp_path / "img", ["train", "train"], empty=(1,))
    task = "instance" if name.startswith("mask") else "detection"
    _, ds = _dataset(project, tmp_path, task=task)
    images, targets = collate_detection([ds[0], ds[1]])
    torch.manual_seed(0)
    model = build_model(name, 2, 3, options=SMALL)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):
        losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert ("loss_mask" in losses) == (task == "instance")
    model.eval()
    with torch.no_grad(), thresholds(model, 0.0, 0.5, 5):
        out = model(images)
    assert len(out) == 2 and all(len(o["boxes"]) <= 5 for o in out)
    assert ("masks" in out[0]) == (task == "instance")


def test_light_model_takes_grey_images_and_trainable_layers():
    model = build_model("maskrcnn_resnet18_fpn", 3, 1,
                        options={**SMALL, "trainable_backbone_layers": 2})
    assert model.backbone.body.conv1.in_channels == 1
    assert not any(p.requires_grad for p in model.backbone.body.layer2.parameters())
    assert all(p.requires_grad for p in model.backbone.body.layer3.parameters())
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(1, 50, 70)])
    assert out[0]["masks"].shape[-2:] == (50, 70)


@pytest.mark.parametrize("name", ["fasterrcnn_resnet18_fpn", "maskrcnn_resnet18_fpn"])
def test_detection_models_name_their_parts(name):
    from studio.ml.models.transfer import freeze, head_parameters, parameter_groups, stages

    model = build_model(name, 2, 3, options=SMALL)
    groups = parameter_groups(model)
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in head_parameters(model)} <= {id(p) for p in groups["head"]}
    assert len(stages(model)) == 5
    freeze(model, "backbone")
    assert not any(p.requires_grad for p in groups["backbone"])
    assert all(p.requires_grad for p in groups["head"])


@pytest.mark.parametrize("options, words", [
    ({"anchor_sizes": [[0], [32], [64], [128]]}, "positive"),
    ({"min_stride": 4}, "feature levels"),
    ({"min_stride": 2}, "min_stride"),
    ({"anchor_sizes": [[16], [32]]}, "feature levels"),
    ({"aspect_ratios": []}, "aspect_ratios"),
    ({"min_size": 0}, "min_size"),
    ({"trainable_backbone_layers": 9}, "trainable_backbone_layers"),
])
def test_bad_detection_options_are_rejected(options, words):
    with pytest.raises(ConfigError, match=words):
        build_model("fasterrcnn_resnet18_fpn", 2, 3, options=options)


def test_coco_weights_come_only_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsUnavailableError, match="not cached"):
        build_model("fasterrcnn_mobilenet_v3_large_fpn", 2, 3, pretrained="coco")
    with pytest.raises(ConfigError, match="no COCO weights"):
        build_model("fasterrcnn_resnet18_fpn", 2, 3, pretrained="coco")


# --- metrics -------------------------------------------------------------------------------
def _perfect_outputs(targets, masks=True):
    outs = []
    for t in targets:
        out = {"boxes": t["boxes"].clone(), "labels": t["labels"].clone(),
               "scores": torch.linspace(0.9, 0.8, len(t["labels"]))}
        if masks:
            out["masks"] = t["masks"][:, None].float()
        outs.append(out)
    return outs


def test_map_is_one_for_the_ground_truth_and_falls_when_a_box_moves(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"] * 3, empty=(2,))
    _, ds = _dataset(project, tmp_path)
    _, targets = collate_detection([ds[i] for i in range(3)])
    meter = DetectionMeter(2, ["square", "disc"], masks=True)
    meter.update(_perfect_outputs(targets), targets)
    flat = meter.compute()
    for key in ("box_map", "box_map50", "box_map75", "box_ar100", "mask_map", "mask_map50"):
        assert flat[key] == pytest.approx(1.0), key
    report = meter.report()
    curve = report["box"]["per_class"]["square"]["pr_curve"]
    assert len(curve["recall"]) == 101 and curve["precision"][0] == pytest.approx(1.0)
    assert report["mask"]["per_class"]["disc"]["ap50"] == pytest.approx(1.0)

    meter.reset()
    shifted = _perfect_outputs(targets, masks=False)
    shifted[0]["boxes"][0] += torch.tensor([4.0, 4.0, 4.0, 4.0])
    box_meter = DetectionMeter(2, ["square", "disc"])
    box_meter.update(shifted, targets)
    flat = box_meter.compute()
    assert flat["box_map"] < 0.95 and "mask_map" not in flat


def test_merged_meters_score_like_one(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"] * 4)
    _, ds = _dataset(project, tmp_path)
    _, targets = collate_detection([ds[i] for i in range(4)])
    outputs = _perfect_outputs(targets)
    outputs[1]["boxes"][0] += 3.0
    whole = DetectionMeter(2, ["square", "disc"], masks=True)
    whole.update(outputs, targets)
    first, second = (DetectionMeter(2, ["square", "disc"], masks=True) for _ in range(2))
    first.update(outputs[:2], targets[:2])
    second.update(outputs[2:], targets[2:])
    first.merge(second)
    assert first.compute()["box_map"] == pytest.approx(whole.compute()["box_map"])
    assert first.compute()["box_map"] < 1.0
    assert len({o["id"] for o in first.objects}) == len(first.objects) == 8


def test_empty_predictions_score_zero(project, tmp_path):
    add_toy_objects(project, tmp_path / "img", ["train"])
    _, ds = _dataset(project, tmp_path)
    _, targets = collate_detection([ds[0]])
    meter = DetectionMeter(2, ["square", "disc"], masks=True)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "scores": torch.zeros(0), "masks": torch.zeros(0, 1, 64, 64)}
    meter.update([empty], targets)
    flat = meter.compute()
    assert flat["box_map50"] == 0.0 and flat["mask_map"] == 0.0
    assert meter.report()["box"]["per_class"]["square"]["ap"] == 0.0


# --- prediction ----------------------------------------------------------------------------
def test_results_json_loads_with_loadres_and_detections_are_stored(project, tmp_path):
    ids = add_toy_objects(project, tmp_path / "img", ["train", "train"], empty=(1,))
    _, ds = _dataset(project, tmp_path)
    _, targets = collate_detection([ds[0], ds[1]])
    outputs = _perfect_outputs(targets)
    dets = [to_detections(o, ["square", "disc"], f"o{i}.png", ids[i], 64, 64)
            for i, o in enumerate(outputs)]
    assert len(dets[1]) == 0
    path = write_coco_results(tmp_path / "out" / "results.json", coco_results(dets))
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": 64, "height": 64} for i in ids],
                  "annotations": [], "categories": [{"id": 1, "name": "square"},
                                                    {"id": 2, "name": "disc"}]}
    gt.createIndex()
    res = gt.loadRes(str(path))
    assert len(res.getAnnIds()) == 2 and json.loads(path.read_text())[0]["segmentation"]
    class_ids = [c.id for c in project.classes()]
    assert store_detections(project, dets, class_ids, 7, masks=True) == 2
    assert store_detections(project, dets, class_ids, 7, masks=True) == 2  # replaced
    stored = [a for a in project.annotations(ids[0]) if a.source == "model:7"]
    assert len(stored) == 2 and all(a.kind == "mask" and a.score for a in stored)
    # stored detections wait for a person: the image is marked for review and training
    # leaves them out, but not the objects people drew on it; the image that received
    # none keeps its status
    assert project.image(ids[0]).status == "review"
    assert project.waiting_for_review() == {ids[0]} and project.pending_model_images() == set()
    assert project.image(ids[1]).status != "review"


def test_tiled_detection_reports_each_object_once():
    class Finder(torch.nn.Module):
        """Finds the part of one object (x 60..70, y 40..50 of the whole image) that a
        tile shows; the images carry their own x and y coordinates as channels 0 and 1."""

        def __init__(self):
            super().__init__()
            self.roi_heads = type("H", (), {"nms_thresh": 0.5, "detections_per_img": 100})()
            self.tiles = 0

        def forward(self, images):
            outs = []
            for img in images:
                self.tiles += 1
                inside = ((img[0] >= 60) & (img[0] < 70) & (img[1] >= 40) & (img[1] < 50)
                          & (img[2] > 0))
                ys, xs = torch.nonzero(inside, as_tuple=True)
                boxes = (torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]],
                                      dtype=torch.float32) if len(xs) else torch.zeros(0, 4))
                outs.append({"boxes": boxes, "scores": torch.full((len(boxes),), 0.9),
                             "labels": torch.ones(len(boxes), dtype=torch.int64)})
            return outs

    yy, xx = torch.meshgrid(torch.arange(100.0), torch.arange(130.0), indexing="ij")
    image = torch.stack([xx, yy, torch.ones_like(xx)])
    finder = Finder()
    out = detect(finder, [image], "crop", 48, 0.25)[0]
    assert finder.tiles == 4 * 3  # x at 0, 27, 55, 82; y at 0, 26, 52
    assert out["boxes"].tolist() == [[60.0, 40.0, 70.0, 50.0]]
    for window, overlap in ((20, 0.0), (24, 0.5), (40, 0.9), (150, 0.25)):
        out = detect(Finder(), [image], "crop", window, overlap)[0]
        assert out["boxes"].tolist() == [[60.0, 40.0, 70.0, 50.0]], (window, overlap)
    whole = detect(Finder(), [image], "resize")[0]
    assert whole["boxes"].tolist() == [[60.0, 40.0, 70.0, 50.0]]


# --- export --------------------------------------------------------------------------------
@pytest.mark.slow
def test_onnx_export_reproduces_the_detections(tmp_path, torch_one_thread):
    import onnx

    from studio.ml.tasks.detection.export import export_detector

    torch.manual_seed(0)
    model = build_model("fasterrcnn_resnet18_fpn", 2, 3,
                        options={"min_size": 32, "max_size": 32, "fpn_channels": 16})
    export_detector(model, "onnx", tmp_path / "m.onnx", 3, 32)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [o.name for o in graph.output] == ["boxes", "labels", "scores"]


def test_export_errors_are_clear(tmp_path, monkeypatch):
    import importlib.util

    from studio.core.errors import StudioError
    from studio.ml.tasks.detection import export

    model = build_model("fasterrcnn_resnet18_fpn", 2, 3, options={"min_size": 32,
                                                                   "max_size": 32})
    real = importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(StudioError, match="pip install onnx"):
        export.export_detector(model, "onnx", tmp_path / "m.onnx", 3, 32)
    assert not (tmp_path / "m.onnx").exists()
    monkeypatch.setattr(export.torch.jit, "script", lambda m: (_ for _ in ()).throw(
        RuntimeError("unsupported operation")))
    with pytest.raises(StudioError, match="TorchScript export .* failed"):
        export.export_detector(model, "torchscript", tmp_path / "m.pt", 3, 32)
    # what the ONNX exporter cannot do is "not supported"; a failed write (a full disk)
    # goes up as the OSError it is, for export_model to report as such
    monkeypatch.setattr(export.importlib.util, "find_spec", real)
    failure: Exception = RuntimeError("unsupported operator")

    def onnx_export(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(export.torch.onnx, "export", onnx_export)
    with pytest.raises(StudioError, match="ONNX export .* not supported"):
        export.export_detector(model, "onnx", tmp_path / "m.onnx", 3, 32)
    failure = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as raised:
        export.export_detector(model, "onnx", tmp_path / "m.onnx", 3, 32)
    assert raised.value is failure
