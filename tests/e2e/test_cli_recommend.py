"""studio-cli train --recommend [--task T] [--mirror yes|no] [--print-config]."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from testutil import add_toy_segmentation, write_png

from studio.cli import main
from studio.core.project import Project
from studio.ml.config import validate_config

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _cls_project(root: Path) -> Path:
    with Project.create(root / "proj") as p:
        dark, bright = p.add_class("dark"), p.add_class("bright")
        rng = np.random.default_rng(0)
        for i in range(16):
            arr = np.clip(rng.normal(190 if i % 2 else 60, 20, (8, 8)), 0, 255)
            iid, _ = p.add_image(write_png(root / "img" / f"c{i}.png", arr.astype(np.uint8)),
                                 split="train" if i < 12 else "val")
            p.add_annotation(iid, bright if i % 2 else dark, "tag", None)
    return root / "proj"


def test_print_config_is_json_on_stdout_and_reasons_on_stderr(tmp_path, capsys):
    proj = _cls_project(tmp_path)
    assert main(["train", str(proj), "--recommend", "--mirror", "no", "--device", "cpu",
                 "--print-config"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert cfg["task"] == "classification" and cfg["device"] == "cpu"
    assert not cfg["augment"]["hflip"]["enabled"]
    assert validate_config(cfg).to_dict() == cfg
    assert "image_size: 16 px" in err and "answered no" in err
    with Project.open(proj) as p:
        assert p.runs() == []  # printed, not trained


def test_mirror_answer_reaches_the_printed_config(tmp_path, capsys):
    root = tmp_path
    with Project.create(root / "proj") as p:
        add_toy_segmentation(p, root / "img", ["train"] * 3 + ["val"])
    assert main(["train", str(root / "proj"), "--recommend", "--task", "semantic",
                 "--mirror", "yes", "--device", "cpu", "--print-config"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert cfg["augment"]["vflip"]["enabled"] and cfg["tta"]
    assert "augment.vflip: on" in err


def test_train_with_the_recommended_config(tmp_path, capsys):
    proj = _cls_project(tmp_path)
    assert main(["train", str(proj), "--recommend", "--mirror", "no", "--device", "cpu",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    run_id = int(out.strip().splitlines()[-1])
    assert "model: simple_cnn" in out
    with Project.open(proj) as p:
        run = p.run(run_id)
        assert run.status == "finished" and run.config["epochs"] == 1
        assert run.config["model_options"]["depth"] == 3


def test_flag_misuse_is_one_line_error(tmp_path, capsys):
    proj = _cls_project(tmp_path)
    assert main(["train", str(proj), "--mirror", "yes", "--task", "classification"]) == 1
    assert "go with --recommend" in capsys.readouterr().err
    cfg = tmp_path / "run.json"
    cfg.write_text("{}")
    assert main(["train", str(proj), "--recommend", "--config", str(cfg)]) == 1
    assert "leave out --config" in capsys.readouterr().err
    empty = tmp_path / "empty"
    Project.create(empty).close()
    assert main(["train", str(empty), "--recommend", "--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no labels yet" in err and err.count("\n") == 1
