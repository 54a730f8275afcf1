"""The GPU readiness check (`python -m benchmarks gpu`): every check's code path runs here
on the CPU in its tiny mode, and a machine without CUDA gets one line and exit code 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["CUDA device", "Train workspace device list", "U-Net fit 64 px, AMP, channels_last",
          "fit / plain torch loop", "detection training steps", "instance training steps",
          "prediction on the device", "export (TorchScript on the device, ONNX)",
          "torchrun --nproc_per_node 1"]


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import gpu

    return gpu


@pytest.mark.slow
def test_every_check_runs_on_the_cpu_in_tiny_mode_and_prints_one_row_each(gpu_check,
                                                                         torch_one_thread):
    out = io.StringIO()
    code = gpu_check.main(["--device", "cpu", "--tiny"], out=out)
    lines = out.getvalue().splitlines()
    rows = [line for line in lines if line.startswith(("ok ", "FAIL "))]
    assert code == 0, out.getvalue()
    assert len(rows) == len(CHECKS)
    for row, check in zip(rows, CHECKS, strict=True):
        assert row.startswith("ok") and check in row, row
    by_check = dict(zip(CHECKS, rows, strict=True))
    assert "img/s" in by_check["U-Net fit 64 px, AMP, channels_last"]
    assert "ratio" in by_check["fit / plain torch loop"]
    assert "fasterrcnn" in by_check["detection training steps"]
    assert "maskrcnn" in by_check["instance training steps"]
    assert "gloo on cpu" in by_check["torchrun --nproc_per_node 1"]
    assert "weights agree: True" in by_check["torchrun --nproc_per_node 1"]
    # the CPU mode never claims a GPU figure
    assert "GPU busy n/a on cpu" in by_check["U-Net fit 64 px, AMP, channels_last"]
    assert lines[-1].startswith(f"{len(CHECKS)} checks, {len(CHECKS)} ok, 0 failed")


def test_a_failing_check_is_a_row_and_the_others_still_run(gpu_check, monkeypatch):
    def broken(self):
        raise RuntimeError("no devices at all\nsecond line")

    monkeypatch.setattr(gpu_check.Checks, "check_device_list", broken)
    checks = gpu_check.Checks("cpu", gpu_check.TINY, True, io.StringIO())
    checks.run_check("device list", checks.check_device_list)
    checks.run_check("CUDA device", checks.check_cuda)
    checks.run_check("prediction", checks.check_predict, needs="unet_run")
    assert [r.ok for r in checks.rows] == [False, True, False]
    assert "RuntimeError: no devices at all" in checks.rows[0].figures
    assert "second line" not in checks.rows[0].figures
    assert "not run: needs the unet run" in checks.rows[2].figures
    checks.p = gpu_check.Profile(budget_s=0)  # past the time budget: nothing more starts
    checks.run_check("CUDA device", checks.check_cuda)
    assert not checks.rows[3].ok and "not run: the checks took over" in checks.rows[3].figures


def test_without_cuda_it_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-m", "benchmarks", "gpu"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("no CUDA device")
    assert len(out.stdout.strip().splitlines()) == 1


def test_kernel_intervals_on_several_streams_count_once(gpu_check):
    assert gpu_check.union_length([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20
    assert gpu_check.union_length([]) == 0
