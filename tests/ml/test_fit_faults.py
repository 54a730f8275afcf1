"""How a run ends when something goes wrong: the record always says so, nothing is left
"running", and the checkpoints that exist are listed and usable."""

from __future__ import annotations

import errno

import pytest
from testutil import FAST_TRAINING, add_toy_classification

from studio.core.errors import DiskFullError, TrainingError
from studio.ml.fit import fit

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _project(project, tmp_path):
    add_toy_classification(project, tmp_path / "img", ["train"] * 9 + ["val"] * 3)
    return {"task": "classification", "image_size": 16, "batch_size": 3, "epochs": 3,
            "model_options": {"width": 8, "fc": [16]}, **FAST_TRAINING}


def _raise_in_epoch(epoch: int, exc: BaseException):
    def on_batch(info):
        if info["epoch"] == epoch:
            raise exc
    return {"on_batch": on_batch}


def test_ctrl_c_marks_the_run_stopped_with_its_checkpoint(project, tmp_path):
    cfg = _project(project, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        fit(project, cfg, callbacks=_raise_in_epoch(2, KeyboardInterrupt()))
    run = project.runs()[0]
    assert run.status == "stopped" and run.error is None
    assert set(run.checkpoints) >= {"last"}
    resumed = fit(project, {}, resume=run.id)  # resumable from last.pt
    assert resumed.status == "finished" and len(resumed.history) == 3


def test_a_failed_run_lists_the_checkpoints_that_exist(project, tmp_path):
    cfg = _project(project, tmp_path)
    with pytest.raises(TrainingError, match="RuntimeError: boom"):
        fit(project, cfg, callbacks=_raise_in_epoch(3, RuntimeError("boom")))
    run = project.runs()[0]
    assert run.status == "failed" and "boom" in run.error
    assert "last" in run.checkpoints and "best" in run.checkpoints
    assert (project.root / run.checkpoints["last"]).is_file()


@pytest.mark.parametrize("code, error, words", [
    (errno.EACCES, TrainingError, "writable runs folder"),
    (errno.EROFS, TrainingError, "writable runs folder"),
    (errno.ENOSPC, DiskFullError, "is full")])
def test_an_unwritable_runs_folder_fails_the_run_clearly(project, tmp_path, monkeypatch,
                                                         code, error, words):
    cfg = _project(project, tmp_path)

    def refuse(run_id):
        raise OSError(code, "refused", str(project.root / "runs"))

    monkeypatch.setattr(project, "run_dir", refuse)
    with pytest.raises(error, match=words):
        fit(project, cfg)
    run = project.runs()[0]
    assert run.status == "failed" and words in run.error  # never left "running"
