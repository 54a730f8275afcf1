"""studio-cli train / evaluate / predict / export-model, end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from testutil import FAST_TRAINING, add_toy_segmentation, write_png

from studio.cli import main
from studio.core.project import Project
from studio.ml.config import validate_config

REPO = Path(__file__).resolve().parents[2]
FAST = FAST_TRAINING


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _seg_project(root: Path) -> Path:
    with Project.create(root / "proj") as p:
        add_toy_segmentation(p, root / "img", ["train"] * 4 + ["val", "test"], seed=5)
    return root / "proj"


def _cls_project(root: Path) -> Path:
    with Project.create(root / "proj") as p:
        dark, bright = p.add_class("dark"), p.add_class("bright")
        rng = np.random.default_rng(0)
        for i in range(12):
            arr = np.clip(rng.normal(190 if i % 2 else 60, 20, (8, 8, 3)), 0, 255)
            iid, _ = p.add_image(write_png(root / "img" / f"c{i}.png", arr.astype(np.uint8)),
                                 split="train" if i < 8 else "val")
            p.add_annotation(iid, bright if i % 2 else dark, "tag", None)
    return root / "proj"


def _config(tmp_path: Path, cfg: dict) -> str:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**FAST, **cfg}))
    return str(path)


def test_print_default_config(capsys):
    for task in ("classification", "semantic", "detection", "instance"):
        for variant in ("cpu", "gpu"):
            assert main(["train", "--print-default-config", "--task", task,
                         "--variant", variant]) == 0
            cfg = json.loads(capsys.readouterr().out)
            assert cfg["task"] == task
            # what the CLI prints is accepted as it is, and is complete
            assert validate_config(cfg).to_dict() == cfg


# issue 17/18: each of these ended in a traceback, a failed run or was silently accepted
BAD_CONFIG_FILES = [
    ("div0.json", json.dumps({"scheduler": {"name": "onecycle", "div_factor": 0}}).encode(),
     "scheduler.div_factor"),
    ("lr.json", json.dumps({"optimizer": {"lr": "x"}}).encode(), "optimizer.lr"),
    ("amp.json", json.dumps({"amp": "false"}).encode(), "amp"),
    ("nested.json", json.dumps({"optimizer": {"foo": 1}}).encode(), "optimizer.foo"),
    ("seed.json", json.dumps({"seed": 2**80}).encode(), "seed"),
    ("fc.json", json.dumps({"model_options": {"fc": [10**9]}}).encode(), "model_options.fc"),
    ("latin1.json", b'{"task": "classification", "device": "caf\xe9"}', "not UTF-8"),
    ("bomb.yaml", ("a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
     ).encode(), "expands to more than"),
]


@pytest.mark.parametrize("name, content, words", BAD_CONFIG_FILES,
                         ids=[b[0] for b in BAD_CONFIG_FILES])
def test_bad_config_files_are_one_line_errors_and_create_no_run(tmp_path, capsys, name,
                                                                content, words):
    project = _cls_project(tmp_path)
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["train", str(project), "--config", str(path), "--task",
                 "classification"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err and "Traceback" not in err
    assert err.count("\n") == 1, err
    with Project.open(project) as p:
        assert p.runs() == []


def test_pretrained_weights_that_are_not_a_checkpoint_create_no_run(tmp_path, capsys):
    """Starting from a file that is not a checkpoint: one line, and no run (the
    pretrained file is checked before the run is recorded)."""
    project = _cls_project(tmp_path)
    hello = tmp_path / "hello.pt"
    hello.write_text("hello")
    cfg = _config(tmp_path, {"task": "classification", "pretrained": str(hello)})
    assert main(["train", str(project), "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 'pretrained'") and err.count("\n") == 1
    with Project.open(project) as p:
        assert p.runs() == []


def test_resume_with_another_model_says_what_is_kept(tmp_path, capsys):
    project = _cls_project(tmp_path)
    cfg = _config(tmp_path, {"task": "classification", "epochs": 1, "image_size": 8,
                             "model_options": {"width": 4, "fc": [8]}})
    assert main(["train", str(project), "--config", cfg]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    other = tmp_path / "other.yaml"
    other.write_text("model: resnet18\nimage_size: 32\nepochs: 2\n")
    assert main(["train", str(project), "--resume", run_id, "--config", str(other)]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if "checkpoint's" in x]
    assert line == ["Resuming with the checkpoint's settings: model stays simple_cnn (the "
                    "checkpoint's); image_size stays 8 (the checkpoint's)."]
    with Project.open(project) as p:
        run = p.run(int(run_id))
        assert run.config["model"] == "simple_cnn" and run.config["epochs"] == 2


def test_semantic_train_evaluate_predict_export(tmp_path, capsys):
    project = _seg_project(tmp_path)
    cfg = _config(tmp_path, {"task": "semantic", "image_size": 16, "epochs": 2, "batch_size": 4,
                             "model_options": {"depth": 2, "width": 8}})
    assert main(["train", str(project), "--config", cfg, "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "1"  # the run id, alone on the last line
    assert sum(line.startswith("epoch ") for line in lines) == 2

    assert main(["evaluate", str(project), "--run", "1", "--split", "test", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["pixel_accuracy"] <= 1 and len(metrics["iou"]) == 2
    assert metrics["images"] == 1
    assert metrics["tta"] is False  # the run's config says no
    assert main(["evaluate", str(project), "--run", "1", "--split", "test", "--json",
                 "--tta"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True

    out = tmp_path / "masks"
    assert main(["predict", str(project), "--run", "1", "--images", str(tmp_path / "img"),
                 "--out", str(out), "--device", "cpu"]) == 0
    masks = sorted(out.glob("*.png"))
    assert len(masks) == 6
    label = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert label.shape == (24, 24) and label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1}

    target = tmp_path / "model.pt"
    assert main(["export-model", str(project), "--run", "1", "--format", "torchscript",
                 "--out", str(target)]) == 0
    assert target.is_file()


def test_classification_predict_writes_a_csv(tmp_path, capsys):
    project = _cls_project(tmp_path)
    cfg = _config(tmp_path, {"task": "classification", "image_size": 8, "epochs": 2,
                             "batch_size": 4, "model_options": {"width": 8, "fc": [8]}})
    assert main(["train", str(project), "--config", cfg]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    out = tmp_path / "pred"
    images = [str(tmp_path / "img" / "c0.png"), str(tmp_path / "img" / "c1.png")]
    assert main(["predict", str(project), "--run", run_id, "--images", *images,
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [Path(r["image"]).name for r in rows] == ["c0.png", "c1.png"]
    assert set(rows[0]) == {"image", "class", "probability", "p_dark", "p_bright"}
    assert float(rows[0]["p_dark"]) + float(rows[0]["p_bright"]) == pytest.approx(1, abs=1e-5)
    assert main(["evaluate", str(project), "--run", run_id]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_bad_config_fails_cleanly_and_records_nothing(tmp_path, capsys):
    project = _cls_project(tmp_path)
    cfg = _config(tmp_path, {"task": "classification", "optimizer": {"lr": -1}})
    assert main(["train", str(project), "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "optimizer.lr" in err and "Traceback" not in err
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    assert main(["train", str(project), "--config", str(bad_json)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["train", str(project), "--task", "semantic"]) == 1  # tags only
    assert "no labels for semantic" in capsys.readouterr().err
    assert main(["evaluate", str(project), "--run", "7"]) == 1
    with Project.open(project) as p:
        assert p.runs() == []


def test_subprocess_smoke():
    proc = subprocess.run([sys.executable, "-m", "studio.cli", "train", "--print-default-config",
                           "--task", "semantic"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "unet"
