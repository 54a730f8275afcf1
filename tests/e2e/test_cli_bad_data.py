"""studio-cli facing bad data and closed pipes: one line, the truth about what was written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from testutil import write_png

from studio.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_info_into_a_pipe_closed_early_ends_quietly(tmp_path):
    proj = tmp_path / "p"
    assert main(["new", str(proj)]) == 0
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # the reader closes its end before studio-cli writes: every write then fails with EPIPE
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "info", str(proj)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == "" and code in (0, 141)


def test_a_classification_project_exported_to_coco_says_what_was_written(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(3):
            write_png(tmp_path / "ds" / cls / f"{cls}{i}.png",
                      rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    proj = tmp_path / "p"
    assert main(["new", str(proj)]) == 0
    assert main(["import", str(proj), "--format", "folders", "--source",
                 str(tmp_path / "ds")]) == 0
    capsys.readouterr()
    assert main(["export", str(proj), "--format", "coco", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    written = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert written["annotations"] == []
    assert "Exported 6 images and 0 annotations" in out
    assert "6 image tags were written as 'studio_tags'" in out and "--format folders" in out
    assert sum(len(i["studio_tags"]) for i in written["images"]) == 6


def test_a_bracket_bomb_is_one_line_on_the_cli(tmp_path, capsys):
    proj = tmp_path / "p"
    assert main(["new", str(proj)]) == 0
    (tmp_path / "bomb.json").write_text("[" * 100_000)
    code = main(["import", str(proj), "--format", "coco", "--source", str(tmp_path / "bomb.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: bomb.json")


def test_train_names_an_image_resized_since_import(tmp_path, capsys):
    from testutil import add_toy_segmentation

    from studio.core.project import Project

    proj = tmp_path / "p"
    with Project.create(proj) as project:
        add_toy_segmentation(project, tmp_path / "img", ["train"] * 3 + ["val"], cells=4)
    write_png(tmp_path / "img" / "s1.png", np.zeros((50, 100), np.uint8))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"task": "semantic", "image_size": 16, "epochs": 1,
                                  "device": "cpu", "model_options": {"depth": 1, "width": 4}}))
    capsys.readouterr()
    assert main(["train", str(proj), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s1.png (now 100 x 50, recorded 16 x 16)" in err
    assert "studio-cli refresh" in err
    with Project.open(proj) as project:
        assert project.runs() == []
