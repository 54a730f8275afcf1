"""Distributed training: `studio-cli train` under torchrun, 2 processes with gloo on the
CPU. Both ranks must end with identical weights, and only rank 0 writes the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from testutil import add_toy_classification
from torch import nn

from studio.core.project import Project
from studio.ml.distributed import weights_checksum

ROOT = Path(__file__).resolve().parents[2]


def _project(folder: Path) -> None:
    with Project.create(folder) as p:
        add_toy_classification(p, folder / "img", ["train"] * 15 + ["val"] * 5)


@pytest.mark.slow
def test_two_processes_train_one_run_with_identical_weights(tmp_path):
    folder = tmp_path / "proj"
    _project(folder)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({
        "task": "classification", "image_size": 16, "batch_size": 3, "epochs": 3,
        "device": "cpu", "cpu_threads": 1, "model_options": {"width": 8, "fc": [16]},
        "early_stopping": {"enabled": False}}))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "studio.cli", "train", str(folder), "--config", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # the ranks compared their weights' checksums at the end (a mismatch fails the run)
    assert "Weights identical on all 2 processes" in out.stdout
    assert out.stdout.count("epoch 3 ") == 1  # rank 0 alone reports
    with Project.open(folder) as p:
        runs = p.runs()
        assert len(runs) == 1 and runs[0].status == "finished"
        assert "2 processes (gloo)" in runs[0].device
        assert [h["epoch"] for h in runs[0].history] == [1, 2, 3]
    run_dirs = sorted((folder / "runs").iterdir())
    assert len(run_dirs) == 1
    assert sorted(f.name for f in run_dirs[0].iterdir()) == ["best.pt", "last.pt"]


def test_the_weights_checksum_tells_models_apart():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    b.load_state_dict(a.state_dict())
    assert weights_checksum(a) == weights_checksum(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-3
    assert weights_checksum(a) != weights_checksum(b)
    b.load_state_dict(a.state_dict())
    b[1].running_mean[1] += 0.5  # buffers count too
    assert weights_checksum(a) != weights_checksum(b)
    with torch.no_grad():  # swapping two values changes it
        b.load_state_dict(a.state_dict())
        w = b[0].weight
        w[0, 0], w[0, 1] = w[0, 1].clone(), w[0, 0].clone()
    assert weights_checksum(a) != weights_checksum(b)
