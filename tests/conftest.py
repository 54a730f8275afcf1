"""Shared fixtures. Qt tests run offscreen; the real datasets live beside the checkout."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from testutil import write_png

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the application's log (studio.core.logs) never goes to the person's own log folder
os.environ.setdefault("VISION_STUDIO_LOG_DIR", tempfile.mkdtemp(prefix="studio-test-logs-"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
TEST_DATA = Path(__file__).resolve().parent / "data"


THREAD_GRACE_S = 5.0  # a thread that is ending may take this long to finish


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Fail a test that leaves a Python thread running (it would outlive its owner and
    can crash the interpreter at exit). Threads Qt made (seen by Python as dummy threads)
    are checked by the GUI tests' own fixture."""
    before = set(threading.enumerate())
    yield
    new = [t for t in threading.enumerate() if t not in before
           and not t.name.startswith("Dummy-")]  # Python's stand-ins for foreign threads
    for thread in new:
        thread.join(THREAD_GRACE_S)
    alive = [t.name for t in new if t.is_alive()]
    assert not alive, f"threads outlived the test: {', '.join(alive)}"


@pytest.fixture(autouse=True)
def no_safety_net_left_behind():
    """A test that started the application (studio.app.main) installed the safety net:
    take its hooks down, so a later test's error is not answered by a dialog."""
    yield
    safety = sys.modules.get("studio.gui.safety")
    if safety is not None and safety.safety_net() is not None:
        safety.uninstall_safety_net()


@pytest.fixture
def shared_datasets() -> Path:
    """../shared/datasets (real public datasets); tests needing it skip in a user's clone."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets not present (CI has it)")
    return SHARED_DATASETS


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture
def project(tmp_path):
    """A fresh, empty project; closed after the test."""
    from studio.core.project import Project

    p = Project.create(tmp_path / "proj", name="test")
    yield p
    if not p.closed:
        p.close()


@pytest.fixture
def make_image(tmp_path):
    """Factory: make_image(name, h, w, seed) -> path of a random RGB PNG under tmp_path."""

    def _make(name: str = "img.png", height: int = 32, width: int = 48, seed: int = 0,
              folder: Path | None = None) -> Path:
        rng = np.random.default_rng(seed)
        arr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        return write_png((folder or tmp_path / "images") / name, arr)

    return _make


@pytest.fixture
def torch_one_thread():
    """Tiny models train faster on one thread (and do not suffer from busy CPUs)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
