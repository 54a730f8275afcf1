"""The training loop on learnable toys: runs, checkpoints, stop/resume, freezing, failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from testutil import FAST_TRAINING, write_png

from studio.core.errors import ConfigError, TrainingError
from studio.core.geometry import MaskGeom
from studio.ml import session
from studio.ml.checkpoints import load_checkpoint
from studio.ml.config import validate_config
from studio.ml.evaluation import evaluate_run
from studio.ml.fit import fit
from studio.ml.loop import overfit_sign
from studio.ml.schedule import LRSchedule

pytestmark = pytest.mark.usefixtures("torch_one_thread")


FAST = FAST_TRAINING


def cls_project(project, tmp_path, n=24, size=16, grey=False):
    """Dark vs bright noisy images (a learnable toy), 3/4 train, 1/4 val."""
    dark, bright = project.add_class("dark"), project.add_class("bright")
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (size, size) if grey else (size, size, 3)
        arr = np.clip(rng.normal(180 if i % 2 else 70, 30, shape), 0, 255).astype(np.uint8)
        iid, _ = project.add_image(write_png(tmp_path / "img" / f"c{i}.png", arr),
                                   split="train" if i < n * 3 // 4 else "val")
        project.add_annotation(iid, bright if i % 2 else dark, "tag", None)
    return project


def seg_project(project, tmp_path, n=8, size=32):
    """Grey block images whose mask is `image > 0.5` (background + foreground regions)."""
    bg, fg = project.add_class("background"), project.add_class("foreground")
    rng = np.random.default_rng(1)
    for i in range(n):
        blocks = rng.random((size // 4, size // 4)) > 0.5
        mask = np.kron(blocks, np.ones((4, 4), bool))
        img = np.where(mask, 200, 40).astype(np.uint8)
        iid, _ = project.add_image(write_png(tmp_path / "img" / f"s{i}.png", img),
                                   split="train" if i < n - 2 else "val")
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))
    return project


def cls_cfg(**kw):
    cfg = {"task": "classification", "image_size": 16, "batch_size": 6, "epochs": 3,
           "model_options": {"width": 8, "fc": [16]}, **FAST}
    cfg.update(kw)
    return cfg


def seg_cfg(**kw):
    cfg = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 3,
           "samples_per_image": 2, "model_options": {"depth": 2, "width": 8}, **FAST}
    cfg.update(kw)
    return cfg


def test_classification_run_learns_and_is_recorded(project, tmp_path):
    cls_project(project, tmp_path)
    batches, epochs, ends = [], [], []
    result = fit(project, cls_cfg(epochs=4, optimizer={"lr": 3e-3}),
                 callbacks={"on_batch": batches.append, "on_epoch": epochs.append,
                            "on_end": ends.append})
    assert result.status == "finished" and len(result.history) == 4
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best["metric"] == "accuracy" and result.best["value"] >= 0.8
    assert set(batches[0]) >= {"epoch", "step", "steps_per_epoch", "loss", "lr", "images_per_s"}
    assert batches[0]["steps_per_epoch"] == 3
    assert {"train_loss", "val_loss", "accuracy", "best", "overfitting", "elapsed"} <= set(
        epochs[-1])
    assert ends[0]["status"] == "finished"
    record = project.run(result.run_id)
    assert record.status == "finished" and record.task == "classification"
    assert len(record.history) == 4 and record.best_metrics["accuracy"] == result.best["value"]
    assert record.checkpoints == {"last": f"runs/run_{result.run_id:04d}/last.pt",
                                  "best": f"runs/run_{result.run_id:04d}/best.pt"}
    assert record.device.startswith("cpu") and record.duration_s > 0
    ckpt = load_checkpoint(project.root / record.checkpoints["last"])  # weights_only
    assert ckpt["epoch"] == 4 and ckpt["class_names"] == ["dark", "bright"]
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "scaler", "config", "class_ids",
                         "best", "normalize"}
    metrics = evaluate_run(project, result.run_id, "val")
    assert metrics["accuracy"] == pytest.approx(result.best["value"])
    assert metrics["images"] == 6


def test_semantic_unet_learns_threshold_masks(project, tmp_path):
    seg_project(project, tmp_path)
    result = fit(project, seg_cfg(epochs=4))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best["metric"] == "mean_iou" and result.best["value"] > 0.6
    metrics = evaluate_run(project, result.run_id)
    assert metrics["mean_iou"] == pytest.approx(result.best["value"], abs=1e-6)
    assert len(metrics["iou"]) == 2


@pytest.mark.parametrize("task, model, size", [
    ("classification", "mobilenet_v3_small", 32),
    ("classification", "resnet18", 32),
    ("semantic", "unet_resnet18", 32),
    ("semantic", "deeplabv3_mobilenet_v3_large", 64),
])
def test_model_families_train_one_epoch(project, tmp_path, task, model, size):
    if task == "classification":
        cls_project(project, tmp_path, n=8, size=size)
        cfg = cls_cfg(model=model, image_size=size, epochs=1, batch_size=4, model_options={})
    else:
        seg_project(project, tmp_path, n=4, size=size)
        cfg = seg_cfg(model=model, image_size=size, epochs=1, batch_size=2, model_options={},
                      samples_per_image=1)
    result = fit(project, cfg)
    assert result.status == "finished" and np.isfinite(result.history[0]["train_loss"])


def test_stop_mid_epoch_then_resume(project, tmp_path):
    cls_project(project, tmp_path, n=32)
    stop = threading.Event()

    def on_batch(info):
        if info["epoch"] == 2 and info["step"] == 2:
            stop.set()

    cfg = cls_cfg(epochs=4, batch_size=4)
    result = fit(project, cfg, callbacks={"on_batch": on_batch}, stop=stop)
    assert result.status == "stopped" and len(result.history) == 1
    record = project.run(result.run_id)
    assert record.status == "stopped"
    ckpt = load_checkpoint(project.run_dir(result.run_id) / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["status"] == "stopped"
    seen = []
    resumed = fit(project, None, callbacks={"on_epoch": lambda i: seen.append(i["epoch"])},
                  resume=result.run_id)
    assert resumed.run_id == result.run_id and resumed.status == "finished"
    assert seen == [2, 3, 4]
    assert [h["epoch"] for h in project.run(result.run_id).history] == [1, 2, 3, 4]
    assert load_checkpoint(project.run_dir(result.run_id) / "last.pt")["epoch"] == 4
    # from a checkpoint file: a new run that goes on from that epoch (config may add epochs)
    path = project.run_dir(result.run_id) / "last.pt"
    more = fit(project, {"epochs": 5}, resume=str(path))
    assert more.run_id != result.run_id and [h["epoch"] for h in more.history] == [5]


def test_stop_callable_is_honoured_within_one_batch(project, tmp_path):
    cls_project(project, tmp_path)
    steps = []
    result = fit(project, cls_cfg(batch_size=2), callbacks={"on_batch": steps.append},
                 stop=lambda: len(steps) >= 1)
    assert result.status == "stopped" and len(steps) == 1


def test_frozen_backbone_stays_bit_identical_then_finetunes(project, tmp_path):
    cls_project(project, tmp_path)
    base = fit(project, cls_cfg(epochs=1))
    pretrained = base.checkpoints["last"]
    result = fit(project, cls_cfg(epochs=2, pretrained=pretrained,
                                  freeze={"mode": "backbone"}))
    before = load_checkpoint(pretrained)["model"]
    after = result.model.state_dict()
    for key, value in before.items():
        if key.startswith("features."):  # weights and BN statistics alike
            assert torch.equal(value, after[key]), key
    assert not torch.equal(before["head.1.weight"], after["head.1.weight"])
    # with a fine-tune phase from epoch 2 on, the backbone moves
    result = fit(project, cls_cfg(epochs=2, pretrained=pretrained, freeze={"mode": "backbone"},
                                  finetune={"unfreeze_epoch": 2, "backbone_lr_factor": 0.5}))
    after = result.model.state_dict()
    assert not torch.equal(before["features.0.0.weight"], after["features.0.0.weight"])


def test_nan_loss_fails_the_run_with_a_clear_message(project, tmp_path, monkeypatch):
    from studio.ml.builders import Criterion

    cls_project(project, tmp_path)
    # a learning rate of 1e30 no longer passes validation: make the loss diverge directly
    forward = Criterion.forward
    monkeypatch.setattr(Criterion, "forward",
                        lambda self, *args: forward(self, *args) * float("nan"))
    cfg = cls_cfg(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.0})
    with pytest.raises(TrainingError, match="(?i)epoch 1.*lower the learning rate"):
        fit(project, cfg)
    record = project.runs()[-1]
    assert record.status == "failed" and "learning rate" in record.error


@pytest.mark.parametrize("override, path", [
    ({"model": "no_such_model"}, "model"), ({"optimizer": {"lr": -1.0}}, "optimizer.lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"task": "semantic", "model": "unet", "model_options": {}}, "task"),  # tags only
    # issue 18: these created a run that then failed (or stood "interrupted")
    ({"scheduler": {"name": "onecycle", "div_factor": 0.0}}, "scheduler.div_factor"),
    ({"optimizer": {"lr": "x"}}, "optimizer.lr"),
    ({"amp": "false"}, "amp"),
    ({"optimizer": {"foo": 1}}, "optimizer.foo"),
    ({"seed": 2**80}, "seed"),
    ({"model_options": {"fc": [10**9]}}, "model_options.fc"),
    # within every bound, but the model would be far too large to build
    ({"model_options": {"depth": 8, "width": 1024, "pool_size": 16, "fc": [16384] * 8}},
     "model_options"),
    ({"loss": {"class_weights": [1.0, 2.0, 3.0]}}, "loss.class_weights"),  # 2 classes
])
def test_bad_configs_record_no_run(project, tmp_path, override, path):
    cls_project(project, tmp_path, n=8)
    with pytest.raises(ConfigError) as info:
        fit(project, cls_cfg(**override))
    assert info.value.path == path and "\n" not in str(info.value)
    assert project.runs() == []


def test_cuda_out_of_memory_retries_with_half_the_batch(project, tmp_path, monkeypatch):
    cls_project(project, tmp_path)
    real = session.make_model
    sizes = []

    def make(cfg, *args, **kwargs):
        model = real(cfg, *args, **kwargs)
        forward = model.forward

        def guarded(x):
            sizes.append(x.shape[0])
            if model.training and x.shape[0] > 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return forward(x)

        model.forward = guarded
        return model

    monkeypatch.setattr(session, "make_model", make)
    logs = []
    result = fit(project, cls_cfg(epochs=1, batch_size=6), callbacks={"on_log": logs.append})
    assert result.status == "finished" and 3 in sizes
    assert any("batch size 3" in line for line in logs)
    with pytest.raises(TrainingError, match="batch size 6 at image size 16"):
        fit(project, cls_cfg(epochs=1, batch_size=12))


def test_early_stopping_restores_the_best_weights(project, tmp_path):
    cls_project(project, tmp_path)
    cfg = cls_cfg(epochs=6, early_stopping={"enabled": True, "metric": "val_loss",
                                            "mode": "min", "patience": 2, "min_delta": 100.0})
    result = fit(project, cfg)
    assert len(result.history) == 3 and result.best["epoch"] == 1
    best = load_checkpoint(result.checkpoints["best"])["model"]
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, best[key]), key


def test_without_validation_nothing_stops_early(project, tmp_path):
    """With no validation images the best checkpoint follows the training loss, but the
    noisy training loss does not stop the run: every configured epoch is trained."""
    cls_project(project, tmp_path)
    logs = []
    cfg = cls_cfg(epochs=4, splits={"train": "train", "val": None},
                  early_stopping={"enabled": True, "metric": "accuracy", "mode": "max",
                                  "patience": 1, "min_delta": 100.0})
    result = fit(project, cfg, callbacks={"on_log": logs.append})
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.best["metric"] == "train_loss" and result.best["epoch"] == 1
    assert any("no early stopping" in line for line in logs)
    # asked for by name, the training loss does stop a run
    cfg["early_stopping"]["metric"], cfg["early_stopping"]["mode"] = "train_loss", "min"
    assert len(fit(project, cfg).history) == 2


def test_deterministic_runs_repeat_exactly(project, tmp_path):
    cls_project(project, tmp_path, n=12)
    cfg = cls_cfg(epochs=1, deterministic=True, seed=7)
    a, b = fit(project, cfg), fit(project, cfg)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key])
    assert not torch.are_deterministic_algorithms_enabled()  # flags restored


def test_lr_schedules():
    param = torch.nn.Parameter(torch.zeros(1))

    def lrs(cfg, epochs=4, steps=10, **kw):
        opt = torch.optim.SGD([{"params": [param], "lr": 1.0, "initial_lr": 1.0}], lr=1.0)
        section = validate_config({"scheduler": {"warmup_epochs": 0, **cfg}}).schedule
        sched = LRSchedule(opt, section, steps, epochs)
        out = [sched.lr()]
        for _ in range(steps * epochs):
            sched.step()
            out.append(sched.lr())
        return out, sched

    warm, _ = lrs({"name": "none", "warmup_epochs": 1})
    assert warm[0] == pytest.approx(0.1) and warm[5] == pytest.approx(0.55)
    assert warm[10:] == [1.0] * len(warm[10:])
    cos, _ = lrs({"name": "cosine", "min_lr_factor": 0.0})
    assert cos[0] == 1.0 and cos[20] == pytest.approx(0.5) and cos[-1] == pytest.approx(0.0)
    step, _ = lrs({"name": "step", "step_size": 2, "gamma": 0.1})
    assert step[19] == 1.0 and step[20] == pytest.approx(0.1)
    one, _ = lrs({"name": "onecycle", "pct_start": 0.25, "div_factor": 10.0,
                  "final_div_factor": 100.0})
    assert one[0] == pytest.approx(0.1) and one[10] == pytest.approx(1.0)
    assert one[-1] == pytest.approx(0.001) and max(one) == pytest.approx(1.0)
    _, plateau = lrs({"name": "plateau", "patience": 1, "factor": 0.5}, epochs=1)
    assert not plateau.epoch_end(1.0) and not plateau.epoch_end(1.0)
    assert plateau.epoch_end(1.0) and plateau.lr() == pytest.approx(0.5)
    state = plateau.state_dict()
    assert state["plateau_scale"] == 0.5 and state["step_count"] == 10


def test_channels_last_on_the_cpu_trains_like_the_plain_layout(project, tmp_path):
    """channels_last (now also used on the CPU, where oneDNN runs it faster) is a memory
    layout only: the same seed gives the same losses and weights up to rounding, and the
    block U-Net (space_to_depth) trains through fit too."""
    seg_project(project, tmp_path, n=4)
    cfg = seg_cfg(epochs=2, seed=3, model_options={"depth": 2, "width": 8,
                                                   "space_to_depth": 2})
    nhwc, nchw = fit(project, cfg), fit(project, {**cfg, "channels_last": False})
    assert nhwc.model.downs[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nchw.model.downs[0][0].weight.is_contiguous()
    for a, b in zip(nhwc.history, nchw.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
    for key, value in nhwc.model.state_dict().items():
        assert torch.allclose(value.float(), nchw.model.state_dict()[key].float(), atol=1e-3), key


def test_overfitting_needs_finite_losses_in_both_epochs():
    before = {"train_loss": 1.0, "val_loss": 0.5}
    assert overfit_sign({"train_loss": 0.9, "val_loss": 0.6}, before)
    assert not overfit_sign({"train_loss": 0.9, "val_loss": 0.4}, before)
    assert not overfit_sign({"train_loss": 1.1, "val_loss": 0.6}, before)
    # detection models have no validation loss: NaN now, null once stored and read back
    assert not overfit_sign({"train_loss": 0.9, "val_loss": float("nan")}, before)
    assert not overfit_sign({"train_loss": 0.9, "val_loss": 0.6},
                            {"train_loss": 1.0, "val_loss": None})
    assert not overfit_sign({"train_loss": 0.9, "val_loss": 0.6}, None)
