"""studio-cli models and segment end to end, with the tests' tiny ONNX model (nothing is
downloaded: osam's folder is the test's own and a fetch fails the test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testutil import refuse_model_downloads, write_png

from studio.cli import main
from studio.core.project import Project
from studio.ml.segment.engine import forget_loaded
from studio.ml.segment.registry import unregister_model
from studio.ml.segment.tiny import TINY_NAME, write_tiny_files

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(monkeypatch, tmp_path):
    refuse_model_downloads(monkeypatch, tmp_path)
    yield tmp_path / "home"
    forget_loaded()
    unregister_model(TINY_NAME)


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _project(tmp_path) -> Path:
    folder = tmp_path / "proj"
    with Project.create(folder, name="det") as p:
        cls = p.add_class("cell")
        for i in range(2):
            iid, _ = p.add_image(write_png(tmp_path / "imgs" / f"im{i}.png",
                                           np.full((70, 90, 3), 60 + 40 * i, np.uint8)))
            p.add_annotation(iid, cls, "box", (10, 10, 30, 20))
            p.add_annotation(iid, cls, "box", (45, 30, 35, 30))
    return folder


def test_models_import_then_segment_and_revert(capsys, home, tmp_path):
    from studio.ml.segment.registry import register_model
    from studio.ml.segment.tiny import tiny_spec

    enc, dec = write_tiny_files(tmp_path / "made")
    register_model(tiny_spec(enc, dec))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    code, _out, err = cli(capsys, "models", "import", bad)
    assert code == 1 and "SHA-256" in err and len(err.strip().splitlines()) == 1
    code, out, _err = cli(capsys, "models", "import", enc, dec)
    assert code == 0 and "complete" in out
    code, out, _ = cli(capsys, "models", "list")
    line = next(ln for ln in out.splitlines() if ln.startswith(TINY_NAME))
    assert "installed" in line
    assert "efficientsam:10m" in out and "Apache" in out

    proj = _project(tmp_path)
    code, out, err = cli(capsys, "segment", proj, "--boxes-to-masks", "--model", TINY_NAME,
                         "--images", "im0.png")
    assert code == 0, err
    assert "2 mask(s) from 2 box(es) in 1 image(s)" in out
    with Project.open_for_reading(proj) as p:
        masks = [a for i in p.image_ids() for a in p.annotations(i, kind="mask")]
        assert len(masks) == 2 and all(m.source == f"model:{TINY_NAME}" for m in masks)
        assert [p.image(i).status for i in p.image_ids()] == ["review", "new"]
    code, out, _ = cli(capsys, "segment", proj, "--revert-last")
    assert code == 0 and "2 mask(s) removed" in out
    with Project.open_for_reading(proj) as p:
        assert not [a for i in p.image_ids() for a in p.annotations(i, kind="mask")]
        assert [p.image(i).status for i in p.image_ids()] == ["new", "new"]


def test_segment_without_weights_says_what_and_where(capsys, home, tmp_path):
    proj = _project(tmp_path)
    code, _out, err = cli(capsys, "segment", proj, "--boxes-to-masks")
    assert code == 1
    assert "efficient_sam_vitt_encoder.onnx" in err and "osam" in err  # names file, folder
    assert "studio-cli models pull" in err


def test_subprocess_models_list_without_qt(home):
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(home))
    code = ("import sys; sys.modules['PySide6'] = None\n"
            "from studio.cli import main; sys.exit(main(['models', 'list']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sam2:tiny" in done.stdout and "files in" in done.stdout
