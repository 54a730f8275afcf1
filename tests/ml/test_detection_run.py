"""Detection and instance runs through the one loop: config, fit, evaluate, predict, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from pycocotools.coco import COCO
from testutil import add_toy_objects

from studio.cli import main
from studio.core.errors import ConfigError
from studio.ml.config import default_config, recommended_variant, validate_config
from studio.ml.evaluation import evaluate_and_store, evaluate_run, stored_report
from studio.ml.export import export_model
from studio.ml.fit import fit
from studio.ml.predict import predict

TINY = {"epochs": 1, "image_size": 48, "batch_size": 2,
        "model_options": {"min_size": 64, "max_size": 64}}


@pytest.mark.parametrize("task", ["detection", "instance"])
def test_default_configs_validate_and_differ_by_device(task):
    cpu, gpu = default_config(task, "cpu"), default_config(task, "gpu")
    assert validate_config(cpu).model.name == cpu["model"]
    assert validate_config(gpu).model.name != cpu["model"]
    assert "resnet18" in cpu["model"] and "resnet50" in gpu["model"]
    assert recommended_variant("cuda:1") == "gpu" and recommended_variant("cpu") == "cpu"
    assert validate_config({"task": task}).early_stopping.metric.endswith("map50")


@pytest.mark.parametrize("change, path", [
    ({"model_options": {"anchor_sizes": [[0], [32], [64], [128]]}}, "model_options.anchor_sizes"),
    ({"resize_policy": "letterbox"}, "resize_policy"),
    ({"detection": {"nms_iou": 1.5}}, "detection.nms_iou"),
    ({"augment": {"mixup": {"enabled": True}}}, "augment.mixup.enabled"),
    ({"pretrained": "imagenet", "model": "fasterrcnn_mobilenet_v3_large_fpn"}, "pretrained"),
    ({"model": "unet"}, "model"),
])
def test_bad_detection_configs_are_rejected(change, path):
    with pytest.raises(ConfigError) as info:
        validate_config({"task": "detection", **change})
    assert info.value.path == path and path.split(".")[-1] in str(info.value)


def test_detection_needs_objects_before_any_work(project, tmp_path):
    from testutil import add_toy_segmentation

    with pytest.raises(ConfigError, match="no labels for detection"):
        fit(project, {"task": "detection"})
    assert project.runs() == []
    iid = add_toy_objects(project, tmp_path / "img", ["train"], kind="box")[0]
    assert iid
    with pytest.raises(ConfigError, match="no labels for instance"):
        fit(project, {"task": "instance"})
    assert project.runs() == []
    add_toy_segmentation(project, tmp_path / "seg", ["val"])  # regions, but not in train
    with pytest.raises(ConfigError, match="no objects for instance"):
        fit(project, {"task": "instance"})


@pytest.mark.parametrize("task", ["detection", "instance"])
def test_fit_evaluate_predict_export(project, tmp_path, task, torch_one_thread):
    ids = add_toy_objects(project, tmp_path / "img", ["train"] * 3 + ["val"] * 2,
                          empty=(2,), kind="polygon" if task == "detection" else "mask")
    logs = []
    cfg = {"task": task, **TINY}
    if task == "instance":
        cfg["resize_policy"] = "crop"
        add_toy_objects(project, tmp_path / "boxes", ["train"], kind="box", seed=9)
    result = fit(project, cfg, callbacks={"on_log": logs.append})
    if task == "instance":
        assert any("1 image(s) with box objects" in line for line in logs)
    assert result.status == "finished" and result.checkpoints["best"]
    record = result.history[-1]
    assert f"{'mask' if task == 'instance' else 'box'}_map50" in record
    assert "coco" not in record
    metrics = evaluate_run(project, result.run_id, "val")
    kinds = ["box", "mask"] if task == "instance" else ["box"]
    assert [k for k in ("box", "mask") if k in metrics] == kinds
    for kind in kinds:
        assert set(metrics[kind]) == {"map", "map50", "map75", "ar100", "per_class",
                                      "ar_max", "max_dets", "map_100", "map50_100",
                                      "map75_100", "most_objects"}
        assert metrics[kind]["max_dets"] >= 100
        assert set(metrics[kind]["per_class"]) == {"square", "disc"}
    assert metrics["notes"] == []  # a few objects per image: nothing the model cannot return
    kept = evaluate_and_store(project, result.run_id, "val")  # what the window's summary reads
    assert stored_report(project, result.run_id)[kinds[0]]["map50"] == pytest.approx(
        kept[kinds[0]]["map50"], nan_ok=True)
    dets = predict(project, result.run_id, [ids[0]])
    assert len(dets) == 1 and dets[0].boxes.shape[1] == 4
    assert (dets[0].masks is not None) == (task == "instance")
    path = export_model(project, result.run_id, "torchscript", tmp_path / "m.pt")
    scripted = torch.jit.load(str(path))
    _, out = scripted([torch.zeros(3, 64, 64)])
    assert "boxes" in out[0]
    assert json.loads(path.with_suffix(".json").read_text())["task"] == task


def test_cli_detection_round(project, tmp_path, capsys, torch_one_thread):
    ids = add_toy_objects(project, tmp_path / "img", ["train"] * 3 + ["val"] * 2,
                          kind="mask")
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps({"task": "instance", **TINY}))
    folder = str(project.root)
    project.close()
    assert main(["train", folder, "--config", str(cfg_path)]) == 0
    run = int(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", folder, "--run", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"box", "mask"}
    assert {"map", "map50", "map75", "ar100", "per_class", "max_dets",
            "map50_100"} <= set(report["mask"])
    image = tmp_path / "img" / "o0.png"
    out = tmp_path / "pred"
    capsys.readouterr()
    assert main(["predict", folder, "--run", str(run), "--images", str(image), "--out",
                 str(out), "--store"]) == 0
    results = json.loads((out / "results.json").read_text())
    said = capsys.readouterr().out
    waiting = 1 if results else 0
    assert f"{waiting} image(s) now wait for review" in said and "still do" in said
    index = json.loads((out / "images.json").read_text())
    assert index["images"][0]["id"] == ids[0]
    gt = COCO()
    gt.dataset = {"images": index["images"], "annotations": [],
                  "categories": index["categories"]}
    gt.createIndex()
    if results:
        assert len(gt.loadRes(str(out / "results.json")).getAnnIds()) == len(results)
    from studio.core.project import Project

    with Project.open(folder) as again:
        stored = [a for a in again.annotations(ids[0]) if a.source == f"model:{run}"]
        status = again.image(ids[0]).status
    assert len(stored) == len(results)
    assert (status == "review") == bool(results)
    outside = tmp_path / "outside.png"
    outside.write_bytes(image.read_bytes()[:-1] + b"\0")
    assert main(["predict", folder, "--run", str(run), "--images", str(outside), "--out",
                 str(out), "--store"]) == 1
    assert "project images only" in capsys.readouterr().err


def test_print_default_config_for_detection_tasks(capsys):
    for task in ("detection", "instance"):
        assert main(["train", "--print-default-config", "--task", task]) == 0
        cfg = json.loads(capsys.readouterr().out)
        assert validate_config(cfg).task == task
    assert main(["train", "--print-default-config", "--task", "instance", "--variant",
                 "gpu"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "maskrcnn_resnet50_fpn_v2"
