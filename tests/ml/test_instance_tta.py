"""Test-time flips for the instance U-Net (config "tta"): the config accepts them for it
alone among the detection-task models, the maps are averaged over the flips before the
split, and evaluation, prediction and Inspect all follow the run's setting."""

from __future__ import annotations

import pytest
import torch
from testutil import add_toy_objects
from torch import nn

from studio.core.errors import ConfigError
from studio.ml.config import validate_config
from studio.ml.datasets import decode
from studio.ml.evaluation import evaluate_run
from studio.ml.fit import fit
from studio.ml.models.registry import build_model
from studio.ml.models.unet_instances import flip_averaging
from studio.ml.predict import Predictor
from studio.ml.tasks.registry import TASK

FLIPS = {"hflip": {"enabled": True}, "vflip": {"enabled": True}}
TINY = {"task": "instance", "model": "unet_instances", "epochs": 1, "image_size": 48,
        "batch_size": 2, "resize_policy": "crop", "tta": True, "augment": FLIPS,
        "model_options": {"depth": 2, "width": 8}}


def test_the_config_takes_tta_for_the_instance_unet_only():
    assert validate_config(TINY).training.tta is True
    with pytest.raises(ConfigError, match="enable one of them") as info:
        validate_config({**TINY, "augment": {"hflip": {"enabled": False},
                                             "vflip": {"enabled": False}}})
    assert info.value.path == "tta"
    for task in ("instance", "detection"):
        with pytest.raises(ConfigError, match="instance U-Net") as info:
            validate_config({"task": task, "tta": True, "augment": FLIPS})
        assert info.value.path == "tta"


def test_maps_are_averaged_over_the_flips_in_eval_only():
    torch.manual_seed(0)
    model = build_model("unet_instances", 1, 1, options={"depth": 2, "width": 4})
    model.eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        plain = model.run_net(x)
        by_hand = (model.net(x) + model.net(x.flip(3)).flip(3)) / 2
        with flip_averaging(model, [(), (3,)]):
            averaged = model.run_net(x)
        assert torch.equal(model.run_net(x), plain)  # the flips end with the context
        with flip_averaging(model, [(), (3,)]):
            model.train()  # (its batch norm statistics move: checked last)
            assert torch.equal(model.run_net(x), model.net(x))  # training sees one view
    assert torch.allclose(averaged, by_hand, atol=1e-6)
    assert not torch.allclose(averaged, plain)


def test_models_that_cannot_average_say_so():
    for name in ("instance", "detection"):
        with pytest.raises(ConfigError, match="instance U-Net"):
            TASK[name].flip_averaging(nn.Identity(), [(), (3,)])
        with TASK[name].flip_averaging(nn.Identity(), [()]):
            pass  # the image as it is: nothing to average


def test_thresholds_are_chosen_on_the_maps_evaluation_sees():
    model = build_model("unet_instances", 1, 1, options={"depth": 2, "width": 4})
    with TASK["instance"].split_tuning(model, [(), (3,)]) as kept:
        assert model.flips == ((), (3,)) and kept is not None
    assert model.flips == ((),)


def test_evaluation_prediction_and_inspect_follow_the_runs_tta(project, tmp_path, monkeypatch,
                                                                torch_one_thread):
    from studio.ml.models import unet_instances

    seen = []

    def recording(model, flips):
        seen.append([tuple(f) for f in flips])
        return flip_averaging(model, flips)

    monkeypatch.setattr(unet_instances, "flip_averaging", recording)
    ids = add_toy_objects(project, tmp_path / "img", ["train"] * 2 + ["val"] * 2, size=64)
    torch.manual_seed(0)
    result = fit(project, dict(TINY))
    assert result.status == "finished"
    # validation chose the split's thresholds on the maps evaluation will see
    assert seen and all(flips == [(), (3,), (2,), (2, 3)] for flips in seen)
    predictor = Predictor.from_run(project, result.run_id, device="cpu")
    calls = []
    predictor.model.net.register_forward_hook(lambda *args: calls.append(1))
    image = _decoded(project, ids[0])  # 64 px: windows of 48 px, each flipped
    Predictor(predictor.model, predictor.meta, predictor.device, tta=False).predict_array(
        image)
    windows = len(calls)
    calls.clear()
    predictor.predict_array(image)
    assert predictor.tta and len(calls) == 4 * windows  # as it is, left-right, up-down, both
    assert evaluate_run(project, result.run_id, "val")["tta"] is True
    assert evaluate_run(project, result.run_id, "val", tta=False)["tta"] is False
    from studio.ml.inspect.detections import open_detection_session

    session = open_detection_session(project, result.run_id, "val", device="cpu")
    assert session.predictor.tta and session.split_maps is not None


def _decoded(project, image_id: int):
    return decode(project.image(image_id).abs_path, 3)
