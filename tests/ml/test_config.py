"""Training configs: complete defaults, and bad values rejected before any work starts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from testutil import write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.config import default_config, merge, validate_config


def test_default_configs_are_complete_and_valid():
    for task in ("classification", "semantic"):
        cfg = default_config(task)
        for key in ("task", "model", "model_options", "pretrained", "freeze", "finetune",
                    "image_size", "resize_policy", "channels", "normalize", "augment", "loss",
                    "optimizer", "l1", "dropout", "scheduler", "epochs", "batch_size",
                    "grad_clip", "early_stopping", "amp", "channels_last", "seed",
                    "deterministic", "device", "num_workers", "val_every", "overfit_patience",
                    "splits"):
            assert key in cfg, key
        assert json.loads(json.dumps(cfg)) == cfg
        checked = validate_config(cfg)
        assert validate_config(checked) == checked
    assert default_config("semantic")["model"] == "unet"


def test_validate_fills_missing_options():
    cfg = validate_config({"task": "classification", "epochs": 3})
    assert cfg["epochs"] == 3
    assert cfg["optimizer"]["lr"] == default_config("classification")["optimizer"]["lr"]
    cfg = validate_config({"task": "classification", "optimizer": {"name": "sgd"}})
    assert cfg["optimizer"]["name"] == "sgd" and "momentum" in cfg["optimizer"]
    # another model does not inherit the default model's options
    cfg = validate_config({"task": "semantic", "model": "deeplabv3_mobilenet_v3_large"})
    assert cfg["model_options"] == {}


@pytest.mark.parametrize("override, words", [
    ({"model": "no_such_net"}, ["unknown model", "no_such_net"]),
    ({"model": "unet"}, ["semantic model", "classification"]),
    ({"optimizer": {"lr": -0.1}}, ["optimizer.lr", "greater than 0"]),
    ({"optimizer": {"lr": 0}}, ["optimizer.lr"]),
    ({"batch_size": 0}, ["batch_size"]),
    ({"epochs": 0}, ["epochs", "at least 1"]),
    ({"optimizer": {"name": "adadelta"}}, ["optimizer", "adadelta"]),
    ({"scheduler": {"name": "cyclic"}}, ["scheduler", "cyclic"]),
    ({"loss": {"name": "hinge"}}, ["loss", "hinge"]),
    ({"resize_policy": "stretch"}, ["resize policy"]),
    ({"model": "alexnet", "image_size": 32}, ["at least 63"]),
    ({"model_options": {"depth": 2, "colour": 1}}, ["no option", "colour"]),
    ({"freeze": {"mode": "backbone"}}, ["pretrained"]),
    ({"early_stopping": {"metric": "mean_iou"}}, ["early-stopping metric"]),
    ({"device": "tpu"}, ["device"]),
    ({"learning_rate": 0.1}, ["Unknown config option", "learning_rate"]),
    ({"augment": {"hflip": {"p": 2}}}, ["hflip"]),
    ({"channels": 2}, ["channels"]),
])
def test_bad_values_are_rejected_with_clear_messages(override, words):
    cfg = merge({"task": "classification"}, override)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    for word in words:
        assert word.lower() in str(info.value).lower()


def test_unknown_task():
    with pytest.raises(ConfigError, match="task"):
        validate_config({"task": "detection-3d"})
    with pytest.raises(ConfigError, match="task"):
        default_config("nope")


def _tagged_project(project, tmp_path, split="train"):
    a, b = project.add_class("a"), project.add_class("b")
    for i in range(4):
        arr = np.full((8, 8), 40 * i, np.uint8)
        iid, _ = project.add_image(write_png(tmp_path / f"i{i}.png", arr), split=split)
        project.add_annotation(iid, a if i % 2 else b, "tag", None)
    return project


def test_project_without_labels_for_the_task(project, tmp_path):
    _tagged_project(project, tmp_path)
    validate_config({"task": "classification"}, project)
    with pytest.raises(ConfigError, match="no labels for semantic"):
        validate_config({"task": "semantic"}, project)


def test_project_with_regions_but_no_tags(project, tmp_path):
    cid = project.add_class("cell")
    iid, _ = project.add_image(write_png(tmp_path / "m.png", np.zeros((8, 8), np.uint8)),
                               split="train")
    project.add_annotation(iid, cid, "mask", MaskGeom.from_full(np.eye(8, dtype=bool)))
    validate_config({"task": "semantic"}, project)
    with pytest.raises(ConfigError, match="has a class tag"):
        validate_config({"task": "classification"}, project)


def test_empty_train_split_asks_for_a_split(project, tmp_path):
    _tagged_project(project, tmp_path, split="none")
    with pytest.raises(ConfigError, match="(?i)split"):
        validate_config({"task": "classification"}, project)


def test_tta_option_is_checked():
    assert default_config("semantic")["tta"] in (True, False)
    assert validate_config({"task": "classification", "tta": True})["tta"] is True
    with pytest.raises(ConfigError, match="'tta' must be true or false"):
        validate_config({"task": "semantic", "tta": "yes"})
    no_flips = {"hflip": {"enabled": False}, "vflip": {"enabled": False}}
    with pytest.raises(ConfigError, match="enable one of them or set 'tta' to false"):
        validate_config({"task": "semantic", "tta": True, "augment": no_flips})
    assert validate_config({"task": "semantic", "tta": False, "augment": no_flips})["tta"] is False
