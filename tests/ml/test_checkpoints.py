"""Checkpoints written in the background: snapshots, order, errors, no stray threads."""

from __future__ import annotations

import threading

import pytest
import torch
from test_train import cls_cfg, cls_project

from studio.core.errors import TrainingError
from studio.ml import checkpoints
from studio.ml.checkpoints import CheckpointWriter, load_checkpoint
from studio.ml.fit import fit

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "checkpoint-writer"]


def payload(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "config": {"lr": [value]}, "epoch": 1}


def test_a_submitted_checkpoint_is_a_snapshot_and_the_last_write_wins(tmp_path):
    writer = CheckpointWriter()
    state = payload(1.0)
    writer.submit(tmp_path / "a.pt", state)
    state["model"]["w"].add_(5.0)  # what the next optimizer step does to the weights
    state["config"]["lr"].append(7.0)
    writer.submit(tmp_path / "b.pt", payload(2.0))
    writer.submit(tmp_path / "b.pt", payload(3.0))
    writer.close()
    assert writer_threads() == []
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert torch.equal(a["model"]["w"], torch.ones(3)) and a["config"]["lr"] == [1.0]
    assert torch.equal(b["model"]["w"], torch.full((3,), 3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temp files


def test_a_failed_write_is_reported_with_the_file_it_was_for(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the run folder should be")
    writer = CheckpointWriter()
    writer.submit(blocker / "last.pt", payload(1.0))
    with pytest.raises(TrainingError, match=r"Could not write the checkpoint .*last\.pt"):
        writer.close()
    assert writer_threads() == []
    writer.submit(tmp_path / "ok.pt", payload(2.0))  # reported once; the writer goes on
    writer.close()
    assert load_checkpoint(tmp_path / "ok.pt")["epoch"] == 1
    assert writer_threads() == []


def test_a_disk_failure_during_training_fails_the_run_and_keeps_the_last_checkpoint(
        project, tmp_path, monkeypatch):
    cls_project(project, tmp_path)
    real_save = checkpoints.save_checkpoint

    def full_disk_from_epoch_2(path, data):
        if data["epoch"] >= 2:
            raise OSError(28, "No space left on device")
        return real_save(path, data)

    monkeypatch.setattr(checkpoints, "save_checkpoint", full_disk_from_epoch_2)
    with pytest.raises(TrainingError, match="(?i)could not write the checkpoint.*no space"):
        fit(project, cls_cfg(epochs=4))
    record = project.runs()[-1]
    assert record.status == "failed" and "No space left" in record.error
    assert load_checkpoint(project.run_dir(record.id) / "last.pt")["epoch"] == 1
    assert writer_threads() == []


def test_fit_leaves_every_checkpoint_on_disk_and_no_writer_thread(project, tmp_path):
    cls_project(project, tmp_path)
    result = fit(project, cls_cfg(epochs=2))  # no early stopping: the model is the last one
    last = load_checkpoint(result.checkpoints["last"])
    assert last["epoch"] == 2 and last["status"] == "finished"
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, last["model"][key]), key
    assert load_checkpoint(result.checkpoints["best"])["epoch"] == result.best["epoch"]
    assert writer_threads() == []


def test_each_checkpoint_of_a_finished_run_is_written_once(project, tmp_path, monkeypatch):
    """last.pt once per epoch (the final epoch's is not written again at the end), best.pt
    once per improvement; a stopped run writes its last.pt as it stopped."""
    cls_project(project, tmp_path)
    written = []
    real_submit = CheckpointWriter.submit

    def counting(self, path, data):
        written.append((path.name, data["epoch"], data["status"]))
        real_submit(self, path, data)

    monkeypatch.setattr(CheckpointWriter, "submit", counting)
    result = fit(project, cls_cfg(epochs=3))
    lasts = [epoch for name, epoch, _ in written if name == "last.pt"]
    assert lasts == [1, 2, 3]
    assert len(written) - len(lasts) == len({h["best"]["epoch"] for h in result.history})
    written.clear()
    fit(project, cls_cfg(epochs=3, batch_size=2), stop=lambda: len(written) >= 2)
    assert written[-1][0] == "last.pt" and written[-1][2] == "stopped"
