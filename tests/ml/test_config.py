"""Training configs: complete defaults, and bad values rejected before any work starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from testutil import write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.config import (
    FieldSpec,
    RunConfig,
    apply_model_options,
    check_value,
    config_fields,
    default_config,
    get_path,
    load_config_text,
    merge,
    resume_overrides,
    validate_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def test_default_configs_are_complete_and_valid():
    for task in ("classification", "semantic", "detection", "instance"):
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
        assert isinstance(checked, RunConfig)
        assert checked.to_dict() == cfg  # every default is written, in the same shape
        assert validate_config(checked).to_dict() == cfg
    assert default_config("semantic")["model"] == "unet"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.json")))
def test_configs_saved_by_earlier_versions_still_load(name):
    """Default configs printed by `train --print-default-config` before the typed schema
    (files in tests/data/configs) load and mean what today's defaults mean."""
    old = json.loads((CONFIGS / name).read_text(encoding="utf-8"))
    variant = "gpu" if name.endswith("_gpu.json") else "cpu"
    checked = validate_config(old).to_dict()
    assert checked == default_config(old["task"], variant)
    # the only key the typed schema writes that older files left out
    assert {k: v for k, v in checked["splits"].items() if k != "exclude"} == old["splits"]


def test_a_stored_run_config_still_loads():
    """A run's config as `fit` stored it (channels and normalisation resolved)."""
    stored = json.loads((CONFIGS / "default_semantic.json").read_text(encoding="utf-8"))
    stored.update(channels=1, normalize={"mean": [0.5], "std": [0.2], "source": "dataset"})
    run = validate_config(stored)
    assert run.data.channels == 1 and run.data.normalize["source"] == "dataset"
    assert run.model.options == {"depth": 4, "width": 24, "space_to_depth": 2}


def test_validate_fills_missing_options():
    run = validate_config({"task": "classification", "epochs": 3})
    assert run.training.epochs == 3
    assert run.optimizer.lr == default_config("classification")["optimizer"]["lr"]
    run = validate_config({"task": "classification", "optimizer": {"name": "sgd"}})
    assert run.optimizer.name == "sgd" and run.optimizer.momentum == 0.9
    # another model does not inherit the default model's options
    run = validate_config({"task": "semantic", "model": "deeplabv3_mobilenet_v3_large"})
    assert run.model.options == {}
    # a partial augmentation keeps the task's other ops
    run = validate_config({"task": "semantic", "augment": {"hflip": {"p": 0.2}}})
    assert run.augment["hflip"]["p"] == 0.2 and run.augment["elastic"]["enabled"]


@pytest.mark.parametrize("override, path", [
    ({"model": "no_such_net"}, "model"),
    ({"model": "unet"}, "model"),
    ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"optimizer": {"name": "adadelta"}}, "optimizer.name"),
    ({"scheduler": {"name": "cyclic"}}, "scheduler.name"),
    ({"loss": {"name": "hinge"}}, "loss.name"),
    ({"resize_policy": "stretch"}, "resize_policy"),
    ({"model": "alexnet", "image_size": 32}, "image_size"),
    ({"model_options": {"depth": 2, "colour": 1}}, "model_options.colour"),
    ({"freeze": {"mode": "backbone"}}, "freeze.mode"),
    ({"early_stopping": {"metric": "mean_iou"}}, "early_stopping.metric"),
    ({"device": "tpu"}, "device"),
    ({"learning_rate": 0.1}, "learning_rate"),
    ({"augment": {"hflip": {"p": 2}}}, "augment.hflip.p"),
    ({"channels": 2}, "channels"),
    # issue 18/17: each of these used to create a run that then failed, or was accepted
    ({"scheduler": {"name": "onecycle", "div_factor": 0.0}}, "scheduler.div_factor"),
    ({"scheduler": {"name": "onecycle", "final_div_factor": 0}}, "scheduler.final_div_factor"),
    ({"scheduler": {"name": "step", "step_size": 0}}, "scheduler.step_size"),
    ({"scheduler": {"pct_start": 0.0}}, "scheduler.pct_start"),
    ({"scheduler": {"patience": -1}}, "scheduler.patience"),
    ({"scheduler": {"factor": 0}}, "scheduler.factor"),
    ({"optimizer": {"lr": "x"}}, "optimizer.lr"),
    ({"optimizer": {"momentum": "0.9"}}, "optimizer.momentum"),
    ({"amp": "false"}, "amp"),
    ({"deterministic": 0}, "deterministic"),
    ({"optimizer": {"foo": 1}}, "optimizer.foo"),
    ({"early_stopping": {"patience": 3, "bar": 1}}, "early_stopping.bar"),
    ({"seed": 2**80}, "seed"),
    ({"seed": -1}, "seed"),
    ({"optimizer": {"betas": [0.9, 1.0]}}, "optimizer.betas"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas"),
    ({"optimizer": {"eps": 0}}, "optimizer.eps"),
    ({"model_options": {"fc": [10**9]}}, "model_options.fc"),
    ({"model_options": {"fc": [64] * 100}}, "model_options.fc"),
    ({"model_options": {"width": 10**6}}, "model_options.width"),
    ({"epochs": 3.5}, "epochs"),
    ({"epochs": float("nan")}, "epochs"),
    ({"optimizer": []}, "optimizer"),
    ({"augment": {"gaussian_blur": {"kernel_size": 4}}}, "augment.gaussian_blur.kernel_size"),
    ({"augment": {"rotation": {"degrees": [20, -20]}}}, "augment.rotation.degrees"),
    ({"augment": {"hflip": {"enabled": "yes"}}}, "augment.hflip.enabled"),
    ({"augment": {"swirl": {}}}, "augment.swirl"),
    ({"normalize": {"mean": [0.5], "std": [0.0]}}, "normalize"),
    ({"splits": {"exclude": ["a"]}}, "splits.exclude"),
    ({"loss": {"class_weights": [0, 0]}}, "loss.class_weights"),
    ({"detection": {"nms_iou": 0.5}}, "detection"),
])
def test_bad_values_are_refused_with_the_field_path(override, path):
    cfg = merge({"task": "classification"}, override)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert info.value.path == path
    message = str(info.value)
    assert "\n" not in message and path.split(".")[-1] in message


def test_detection_accepts_its_defaults_and_refuses_what_it_cannot_use():
    for task in ("detection", "instance"):
        for variant in ("cpu", "gpu"):
            validate_config(default_config(task, variant))
        run = validate_config({"task": task})
        assert run.detection is not None and run.loss.name == "model"
        assert "label_smoothing" not in run.to_dict()["loss"]
        # the fields a form shows are exactly the ones the config has
        paths = {f.path for f in config_fields(task)}
        assert "loss.label_smoothing" not in paths and "detection.nms_iou" in paths
        for bad, path in (({"loss": {"name": "model", "label_smoothing": 0.0}},
                           "loss.label_smoothing"),
                          ({"loss": {"name": "cross_entropy"}}, "loss.name"),
                          ({"augment": {"elastic": {"enabled": True}}}, "augment.elastic.enabled"),
                          ({"tta": True}, "tta"),
                          ({"resize_policy": "letterbox"}, "resize_policy"),
                          ({"model_options": {"anchor_sizes": [[16], [32]]}},
                           "model_options.anchor_sizes"),
                          ({"model_options": {"anchor_sizes": [["16"]]}},
                           "model_options.anchor_sizes"),
                          ({"detection": {"score_threshold": 2}}, "detection.score_threshold")):
            with pytest.raises(ConfigError) as info:
                validate_config({"task": task, **bad})
            assert info.value.path == path, (bad, info.value)
    # one size per level is the older spelling of one list per level
    run = validate_config({"task": "detection", "model_options": {"anchor_sizes": [8, 16, 32, 64]}})
    assert run.model.options["anchor_sizes"] == [[8], [16], [32], [64]]


def test_config_fields_cover_every_value_of_the_config():
    """Each leaf of a task's default config is one field (model options of the model the
    config names), with the default it has there; enum defaults are among the choices."""
    for task in ("classification", "semantic", "detection", "instance"):
        cfg = default_config(task)
        fields = config_fields(task, cfg)
        by_path = {f.path: f for f in fields}
        assert len(by_path) == len(fields)
        for f in fields:
            assert isinstance(f, FieldSpec) and f.help
            if f.path.startswith("model_options."):
                continue
            assert get_path(cfg, f.path, KeyError) == f.default, f.path
            if f.kind == "enum":
                assert any(type(c) is type(f.default) and c == f.default for c in f.choices)
            check_value(f, f.default)  # every default passes its own field's check
        leaves = _leaf_paths({k: v for k, v in cfg.items() if k != "model_options"})
        assert leaves <= set(by_path), leaves - set(by_path)
    # model-dependent: the options of the model the config names
    resnet_unet = config_fields("semantic", {"model": "unet_resnet18"})
    assert {f.path for f in resnet_unet if f.path.startswith("model_options.")} == {
        "model_options.decoder_width", "model_options.dropout"}
    unet = {f.path: f for f in config_fields("semantic")}
    assert unet["model_options.width"].default == 24  # the task's tuned default
    anchors = {f.path: f for f in config_fields("detection")}["model_options.anchor_sizes"]
    assert anchors.kind == "int_list_list" and anchors.default == [[16], [32], [64], [128]]


def _leaf_paths(cfg: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out |= _leaf_paths(value, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


def test_apply_model_options_gives_the_new_model_its_own_options():
    cfg = default_config("semantic")
    switched = apply_model_options(cfg, "unet_resnet18")
    assert switched["model"] == "unet_resnet18"
    assert switched["model_options"] == {"decoder_width": 256, "dropout": 0.0}
    back = apply_model_options(switched, "unet")
    assert back["model_options"]["width"] == 24 and back["model_options"]["space_to_depth"] == 2
    assert validate_config(back).model.options == back["model_options"]
    assert cfg["model"] == "unet"  # the input is not changed


def test_resume_overrides_say_what_is_kept():
    stored = validate_config({"task": "classification", "model": "resnet18",
                              "image_size": 64}).to_dict()
    cfg, kept = resume_overrides(stored, {"model": "simple_cnn", "image_size": 32,
                                          "epochs": 50, "device": "cpu", "seed": 0})
    assert cfg["epochs"] == 50 and cfg["device"] == "cpu"
    assert cfg["model"] == "resnet18" and cfg["image_size"] == 64
    assert kept == ["model stays resnet18 (the checkpoint's)",
                    "image_size stays 64 (the checkpoint's)"]
    assert resume_overrides(stored, {**stored, "epochs": 99})[1] == []
    # values the stored config left to defaults compare as what they mean
    partial = {"task": "semantic", "model": "unet_resnet18"}
    assert resume_overrides(partial, {"model_options": {"decoder_width": 256},
                                      "augment": {"hflip": {"enabled": True}}})[1] == []
    assert resume_overrides(partial, {"optimiser": {"lr": 1}})[1] == [
        "optimiser.lr is ignored (the checkpoint's config has no such option)"]


def test_one_reader_for_json_and_yaml():
    assert load_config_text('{"task": "semantic"}', "a.json") == {"task": "semantic"}
    assert load_config_text(b"task: semantic\nepochs: 3\n", "a.yaml") == {
        "task": "semantic", "epochs": 3}
    assert load_config_text(b"\xef\xbb\xbf{}", "bom.json") == {}
    for text, name, words in ((b"caf\xe9: 1", "a.yaml", "not UTF-8"),
                              (b"{\"a\": \xff}", "a.json", "not UTF-8"),
                              ("[1, 2]", "a.json", "one object"),
                              ("{", "a.json", "not valid JSON"),
                              ("a: [1", "a.yaml", "not valid YAML"),
                              ("a: &x [*x]", "a.yaml", "refers to itself"),
                              ("[" * 200 + "]" * 200, "a.json", "deeper"),
                              ("x" * 2_000_000, "a.json", "at most")):
        with pytest.raises(ConfigError, match=words):
            load_config_text(text, name)


def test_yaml_alias_bomb_is_refused_fast():
    """The 'billion laughs' in 2 KB: refused by counting, never expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 3000
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config_text(bomb, "bomb.yaml")


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
    assert validate_config({"task": "classification", "tta": True}).training.tta is True
    with pytest.raises(ConfigError, match="'tta' must be true or false"):
        validate_config({"task": "semantic", "tta": "yes"})
    no_flips = {"hflip": {"enabled": False}, "vflip": {"enabled": False}}
    with pytest.raises(ConfigError, match="enable one of them or set 'tta' to false"):
        validate_config({"task": "semantic", "tta": True, "augment": no_flips})
    assert validate_config({"task": "semantic", "tta": False, "augment": no_flips}
                           ).training.tta is False


def _value_for(spec, rng):
    """A random value of `spec`'s kind within its bounds."""
    lo = spec.minimum if spec.minimum is not None else -1000
    hi = spec.maximum if spec.maximum is not None else 1000
    hi = min(hi, lo + 1000)
    if spec.kind == "bool":
        return bool(rng.integers(2))
    if spec.kind == "int":
        return int(rng.integers(int(lo), int(hi) + 1))
    if spec.kind == "float":
        return float(lo + (hi - lo) * rng.uniform(0.01, 0.99))
    if spec.kind == "enum":
        return spec.choices[int(rng.integers(len(spec.choices)))]
    if spec.kind in ("int_list", "float_list"):
        n = spec.min_len or 1
        item = spec.kind[:-5]
        values = [_value_for(type(spec)(spec.path, item, None, "", minimum=spec.minimum,
                                        maximum=spec.maximum), rng) for _ in range(n)]
        return sorted(values)
    return spec.default


@pytest.mark.parametrize("task", ["classification", "semantic", "detection", "instance"])
def test_random_values_are_accepted_and_round_trip_or_refused_by_path(task):
    """Each field set to a random value within its bounds: the config either validates and
    reads back unchanged, or is refused with a ConfigError naming a field; a value of the
    wrong type is always refused at that field's own path."""
    rng = np.random.default_rng(18)
    fields = [f for f in config_fields(task) if f.kind != "json"
              and not f.path.startswith("model_options.") and f.path != "task"]
    accepted = 0
    for spec in fields:
        for _ in range(3):
            cfg = default_config(task)
            keys = spec.path.split(".")
            node = cfg
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = _value_for(spec, rng)
            try:
                run = validate_config(cfg)
            except ConfigError as exc:
                assert exc.path, (spec.path, exc)
                continue
            accepted += 1
            assert validate_config(run.to_dict()).to_dict() == run.to_dict()
        if spec.kind != "str":
            node[keys[-1]] = "x"
            with pytest.raises(ConfigError) as info:
                validate_config(cfg)
            assert info.value.path == spec.path
    assert accepted > 2 * len(fields)  # most random values are fine on their own


def test_a_resume_takes_nothing_from_another_tasks_settings():
    """A person presses Resume while the form shows another task (a fresh window opens
    on the task the labels allow first): the run goes on with its own settings."""
    from studio.ml.config import default_config, resume_overrides, validate_config

    stored = {**default_config("instance"), "epochs": 30}
    shown = {**default_config("semantic"), "epochs": 45}
    cfg, notes = resume_overrides(stored, shown)
    assert cfg["epochs"] == 30 and cfg["early_stopping"] == stored["early_stopping"]
    assert notes == ["task stays instance (the checkpoint's): the settings given are for "
                     "semantic, so none of them apply"]
    validate_config(cfg)  # no semantic metric in an instance run
