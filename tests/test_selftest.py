"""`studio --version` and `studio --self-test` from the source tree, and a self-test that
fails says which check failed and exits 1."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import studio

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["window opens", "sample project", "training", "prediction", "post-processing",
          "close and reopen"]


def _run(args: list[str], tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "VISION_STUDIO_LOG_DIR": str(tmp_path / "logs"), "HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_version_prints_the_version_without_starting_the_window(tmp_path):
    out = _run(["--version"], tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(f"Vision Studio {studio.__version__} (Python ")


@pytest.mark.slow
def test_the_self_test_passes_from_the_source_tree_with_one_line_per_check(tmp_path):
    out = _run(["--self-test"], tmp_path)
    rows = [line for line in out.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert [r.split(None, 1)[0] for r in rows] == ["ok"] * len(CHECKS)
    for row, check in zip(rows, CHECKS, strict=True):
        assert row[6:].startswith(check), row
    assert "finished in a child process" in rows[2]
    assert out.stdout.splitlines()[-1].startswith(f"self-test: {len(CHECKS)} of {len(CHECKS)}")
    assert not list((tmp_path / "home").glob("**/project.db"))  # nothing of the person's


def test_a_failing_check_fails_the_self_test_and_says_why(qapp, monkeypatch):
    from studio.core.errors import StudioError
    from studio.gui.errors import show_error
    from studio.gui.selftest import SelfTest

    def make_project(self) -> str:
        show_error(self.window, StudioError("The sample data is missing."))  # a dialog
        return "made"

    monkeypatch.setattr(SelfTest, "make_project", make_project)
    out = io.StringIO()
    test = SelfTest(out)
    code = test.run()
    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[0].startswith("ok    window opens")
    assert lines[1].startswith("FAIL  sample project")
    assert "a dialog appeared: The sample data is missing." in lines[1]
    assert len(lines) == 3 and "failed: sample project" in lines[2]  # nothing ran after it
    assert not test.folder.exists()


def test_checks_after_a_failed_training_say_they_did_not_run(qapp, monkeypatch):
    from studio.gui.selftest import CheckFailed, SelfTest

    def train(self) -> str:
        raise CheckFailed("training failed: the loss became nan")

    monkeypatch.setattr(SelfTest, "train", train)
    out = io.StringIO()
    assert SelfTest(out).run() == 1
    rows = out.getvalue().splitlines()[:-1]
    status = {row[6:].split("  ")[0].strip(): row.split()[0] for row in rows}
    assert status == {"window opens": "ok", "sample project": "ok", "training": "FAIL",
                      "prediction": "FAIL", "post-processing": "FAIL",
                      "close and reopen": "ok"}
    assert "not run: needs the training check" in rows[3]
    assert "the loss became nan" in rows[2]
