"""Mixed precision on the CPU: bfloat16 autocast for a model that trains well so (the
instance U-Net), on a CPU that computes bfloat16 natively; float32 everywhere else."""

from __future__ import annotations

import math

import pytest
import torch
from testutil import add_toy_objects

from studio.ml import devices, session
from studio.ml.config import validate_config
from studio.ml.fit import fit
from studio.ml.models.registry import get_spec

TINY = {"task": "instance", "model": "unet_instances", "epochs": 1, "image_size": 48,
        "batch_size": 2, "resize_policy": "crop", "channels_last": True,
        "model_options": {"depth": 2, "width": 8}}


@pytest.mark.parametrize("native", [True, False])
def test_the_dtype_follows_amp_the_device_and_the_model(monkeypatch, native):
    monkeypatch.setattr(devices, "cpu_computes_bf16", lambda: native)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    on, off = validate_config(TINY), validate_config({**TINY, "amp": False})
    other = validate_config({"task": "instance", "model": "maskrcnn_resnet18_fpn"})
    assert devices.autocast_dtype(on, cpu) == (torch.bfloat16 if native else None)
    assert devices.autocast_dtype(other, cpu) is None  # a model not measured so
    assert devices.autocast_dtype(off, cpu) is None
    assert devices.autocast_dtype(other, cuda) == torch.float16
    assert devices.autocast_dtype(validate_config({"task": "instance", "model":
                                                   "maskrcnn_resnet18_fpn", "amp": False}),
                                  cuda) is None


def test_only_the_instance_unet_is_listed_for_cpu_bf16():
    assert get_spec("unet_instances").cpu_bf16
    assert not get_spec("maskrcnn_resnet18_fpn").cpu_bf16
    assert not get_spec("unet").cpu_bf16


def test_the_instance_unet_trains_under_bf16_and_validates_in_float32(
        project, tmp_path, monkeypatch, torch_one_thread):
    add_toy_objects(project, tmp_path / "img", ["train"] * 4 + ["val"] * 2, size=64)
    monkeypatch.setattr(devices, "cpu_computes_bf16", lambda: True)
    seen: dict = {}
    train, evaluate = session.train_one_epoch, session.evaluate

    def spy_train(*args, **kwargs):
        dtype = kwargs["amp_dtype"]  # None: no autocast
        seen["train"] = (dtype is not None, dtype, args[6])  # args[6]: the scaler
        return train(*args, **kwargs)

    def spy_eval(*args, **kwargs):
        seen["eval"] = kwargs["amp"]
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(session, "train_one_epoch", spy_train)
    monkeypatch.setattr(session, "evaluate", spy_eval)
    torch.manual_seed(0)
    result = fit(project, dict(TINY))
    assert result.status == "finished"
    assert seen["train"] == (True, torch.bfloat16, None)  # no gradient scaler for bfloat16
    assert seen["eval"] is False  # thresholds are chosen on the float32 maps evaluation sees
    assert math.isfinite(result.history[-1]["train_loss"])
    assert "mask_map50" in result.history[-1]
