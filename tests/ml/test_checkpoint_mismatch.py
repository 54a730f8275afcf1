"""A checkpoint used where it does not belong: another project's classes, another task, or
no checkpoint at all. Each is one line saying what differs, never a run that quietly
trains or predicts something else."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from testutil import FAST_TRAINING, add_toy_classification, add_toy_segmentation, write_png

from studio.cli import main
from studio.core.errors import CheckpointError
from studio.core.project import Project
from studio.ml.checkpoints import load_checkpoint
from studio.ml.fit import fit

pytestmark = pytest.mark.usefixtures("torch_one_thread")
CLS = {"task": "classification", "image_size": 8, "batch_size": 2, "epochs": 1,
       "device": "cpu", "model_options": {"width": 4, "fc": [4]}, **FAST_TRAINING}


def _trained(root, folder, splits, extra_class: str | None = None) -> int:
    with Project.create(root) as project:
        add_toy_classification(project, folder, splits, size=8)
        if extra_class:
            cls = project.add_class(extra_class)
            for i in range(2):
                arr = np.full((8, 8, 3), 120 + i, np.uint8)
                iid, _ = project.add_image(write_png(folder / f"g{i}.png", arr),
                                           split="train" if i else "val")
                project.add_annotation(iid, cls, "tag", None)
        return fit(project, CLS).run_id


def _ckpt(root, run_id: int, name: str = "last.pt"):
    with Project.open(root) as project:
        return project.run_dir(run_id) / name


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    hello = tmp_path / "hello.pt"
    hello.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(hello)
    root = tmp_path / "p"
    with Project.create(root) as project:
        add_toy_classification(project, tmp_path / "img", ["train", "train", "val", "val"])
    assert main(["train", str(root), "--resume", str(hello)]) == 1
    assert "hello.pt is not a readable checkpoint" in _one_line(capsys)
    with Project.open(root) as project:
        assert project.runs() == []  # no run record for a refused start


def test_resuming_another_projects_checkpoint_names_what_differs(tmp_path, capsys):
    run_a = _trained(tmp_path / "a", tmp_path / "ia", ["train"] * 4 + ["val"] * 2)
    other = shutil.copy(_ckpt(tmp_path / "a", run_a), tmp_path / "other.pt")
    # b: the same two classes (same ids) and a third one the checkpoint has never seen
    _trained(tmp_path / "b", tmp_path / "ib", ["train"] * 4 + ["val"] * 2, "grey")
    capsys.readouterr()
    assert main(["train", str(tmp_path / "b"), "--resume", str(other)]) == 1
    err = _one_line(capsys)
    assert "knows 2 of the 3 classes" in err and "missing: grey" in err and '"pretrained"' in err
    # c: other classes altogether
    root_c = tmp_path / "c"
    with Project.create(root_c) as project:
        for name in ("cat", "dog"):
            cls = project.add_class(name)
            for i in range(2):
                arr = np.full((8, 8, 3), 40 * i + (100 if name == "cat" else 0), np.uint8)
                iid, _ = project.add_image(write_png(tmp_path / "ic" / f"{name}{i}.png", arr),
                                           split="train" if i else "val")
                project.add_annotation(iid, cls, "tag", None)
    assert main(["train", str(root_c), "--resume", str(other)]) == 1
    err = _one_line(capsys)
    assert "classification" in err and "dark (id 1)" in err and "bright (id 2)" in err
    with Project.open(root_c) as project:
        assert project.runs() == []


def test_a_checkpoint_of_another_task_is_refused(tmp_path, capsys):
    root = tmp_path / "seg"
    with Project.create(root) as project:
        add_toy_segmentation(project, tmp_path / "is", ["train"] * 3 + ["val"], cells=4)
        run_s = fit(project, {"task": "semantic", "image_size": 16, "batch_size": 2,
                              "epochs": 1, "device": "cpu",
                              "model_options": {"depth": 1, "width": 4},
                              **FAST_TRAINING}).run_id
    seg_ckpt = _ckpt(root, run_s)
    capsys.readouterr()
    assert main(["train", str(root), "--task", "classification", "--resume",
                 str(seg_ckpt)]) == 1
    err = _one_line(capsys)
    assert "is a semantic" in err and "cannot continue as a classification run" in err


def test_a_run_whose_checkpoint_was_swapped_is_refused(tmp_path, capsys):
    run_a = _trained(tmp_path / "a", tmp_path / "ia", ["train"] * 4 + ["val"] * 2)
    root = tmp_path / "seg"
    with Project.create(root) as project:
        add_toy_segmentation(project, tmp_path / "is", ["train"] * 3 + ["val"], cells=4)
        run_s = fit(project, {"task": "semantic", "image_size": 16, "batch_size": 2,
                              "epochs": 1, "device": "cpu",
                              "model_options": {"depth": 1, "width": 4},
                              **FAST_TRAINING}).run_id
    for name in ("best.pt", "last.pt"):
        shutil.copy(_ckpt(tmp_path / "a", run_a), _ckpt(root, run_s, name))
    image = str(tmp_path / "is" / "s0.png")
    capsys.readouterr()
    for argv in (["evaluate", str(root), "--run", str(run_s), "--device", "cpu"],
                 ["predict", str(root), "--run", str(run_s), "--device", "cpu", "--images",
                  image, "--out", str(tmp_path / "out")],
                 ["export-model", str(root), "--run", str(run_s), "--format", "torchscript",
                  "--out", str(tmp_path / "m.pt")]):
        assert main(argv) == 1, argv
        err = _one_line(capsys)
        assert "classification" in err and "semantic run" in err
    assert not (tmp_path / "m.pt").exists()
