"""Checkpoints carry a checksum of their tensors; a damaged file is refused, not resumed."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from studio.core.errors import CheckpointError, DiskFullError
from studio.ml.checkpoints import load_checkpoint, save_checkpoint


def _payload() -> dict:
    weights = torch.arange(4096, dtype=torch.float32)
    return {"model": {"w": weights, "b": torch.ones(3, dtype=torch.bfloat16)},
            "optimizer": {"state": {0: {"step": torch.tensor(5.0)}}}, "config": {"lr": 0.1},
            "epoch": 3}


def test_a_checkpoint_round_trips_with_its_checksum(tmp_path):
    save_checkpoint(tmp_path / "last.pt", _payload())
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(ckpt["model"]["w"], _payload()["model"]["w"]) and ckpt["epoch"] == 3
    assert set(ckpt) == set(_payload())  # the checksum is checked and removed


def test_a_bit_flipped_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _payload())
    data = bytearray(path.read_bytes())
    weights = _payload()["model"]["w"].numpy().tobytes()
    at = bytes(data).find(weights[8000:8064])
    assert at > 0
    data[at + 5] ^= 0x04  # one bit of one weight, the zip structure intact
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True)["epoch"] == 3  # torch itself does not notice
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    torch.save(_payload(), tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 3


def test_a_full_disk_while_saving_is_a_disk_full_error_without_temp_files(tmp_path,
                                                                          monkeypatch):
    real_write = Path.write_bytes

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(DiskFullError, match="full"):
        save_checkpoint(tmp_path / "run" / "last.pt", _payload())
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert list((tmp_path / "run").iterdir()) == []
