"""Click-to-segment in the window: the S key picks the tool, the model dialog installs
files only with the right SHA-256, and boxes to masks runs as a background job with
progress and Cancel that is taken back as a whole. Tiny ONNX model; nothing downloads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from testutil import refuse_model_downloads, write_png

from studio.core.project import Project
from studio.gui.main_window import MainWindow
from studio.gui.segment_settings import SEGMENT
from studio.gui.settings import Settings
from studio.ml.segment.engine import forget_loaded
from studio.ml.segment.registry import register_model, unregister_model
from studio.ml.segment.tiny import TINY_NAME, tiny_spec, write_tiny_files
from studio.ml.segment.weights import is_installed


@pytest.fixture
def made(monkeypatch, tmp_path):
    refuse_model_downloads(monkeypatch, tmp_path)
    files = write_tiny_files(tmp_path / "made")
    register_model(tiny_spec(*files))
    saved = dict(SEGMENT.config.__dict__)
    yield files
    SEGMENT.update(**saved)
    forget_loaded()
    unregister_model(TINY_NAME)


@pytest.fixture
def win(qtbot, tmp_path):
    with Project.create(tmp_path / "proj", name="det") as p:
        cls = p.add_class("cell", "#ff0000")
        for i in range(4):
            iid, _ = p.add_image(write_png(tmp_path / "imgs" / f"{i}.png",
                                           np.full((60, 80, 3), 30 + 30 * i, np.uint8)))
            p.add_annotation(iid, cls, "box", (5, 5, 30, 25))
            p.add_annotation(iid, cls, "box", (40, 20, 30, 30))
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.open_project(tmp_path / "proj")
    yield window
    window.close()


def _masks(project):
    return [a for i in project.image_ids() for a in project.annotations(i, kind="mask")]


def test_dialog_installs_only_files_with_the_right_hash(made, win, tmp_path, qtbot):
    encoder, decoder = made
    SEGMENT.update(model=TINY_NAME)
    dialog = win.label.segment.show_model_dialog()
    try:
        dialog.model.setCurrentIndex(dialog.model.findData(TINY_NAME))
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"\0" * 100)
        task = dialog.install_files([bad])  # hashed on a worker
        qtbot.waitUntil(lambda: task.done, timeout=10000)
        assert "Refused bad.onnx" in dialog.state.text() and "SHA-256" in dialog.state.text()
        task = dialog.install_files([encoder, decoder])
        qtbot.waitUntil(lambda: task.done, timeout=10000)
        assert is_installed(tiny_spec(encoder, decoder)) and "Installed" in dialog.state.text()
        assert "MIT" in dialog.licence.text()
        dialog.output.setCurrentIndex(dialog.output.findData("polygon"))
        dialog.accept()
        assert SEGMENT.config.output == "polygon"
        assert win.settings.value("segment/output") == "polygon"
    finally:
        dialog.close()


def test_s_key_picks_the_tool(made, win, qtbot):
    canvas = win.label.canvas
    QTest.keyClick(canvas, Qt.Key.Key_S)
    assert canvas.tool_name == "segment"


def test_boxes_to_masks_job_progress_cancel_and_revert(made, win, qtbot):
    from studio.ml.segment.tiny import install_tiny_model

    install_tiny_model(made[0].parent)
    SEGMENT.update(model=TINY_NAME)
    seg, project = win.label.segment, win.project
    task = seg.run_boxes_to_masks(None)
    qtbot.waitUntil(lambda: task.done, timeout=20000)
    job = seg.last_job
    assert job.masks == 8 and job.images_done == 4
    assert len(_masks(project)) == 8
    assert all(project.image(i).status == "review" for i in project.image_ids())
    assert all(m.source == f"model:{TINY_NAME}" for m in _masks(project))
    assert seg.revert_last() == 8
    assert _masks(project) == []
    assert all(project.image(i).status == "new" for i in project.image_ids())
    # Cancel: asked while the job runs, it stops between images and nothing is lost
    from studio.ml.segment import engine

    model = engine.load_model(TINY_NAME)
    real = model.embed
    tasks, submitted = [], threading.Event()

    def embed_then_cancel(image, size=None):
        submitted.wait(10)
        tasks[0].cancel()  # the person presses Cancel during the first image
        return real(image, size)

    model.embed = embed_then_cancel
    tasks.append(seg.run_boxes_to_masks(None))
    submitted.set()
    qtbot.waitUntil(lambda: tasks[0].done, timeout=20000)
    assert len(_masks(project)) == 2  # the first image only; the job is on record
    assert seg.revert_last() == 2 and _masks(project) == []


def test_download_shows_progress_and_cancels(made, win, qtbot, monkeypatch):
    """The dialog's download runs on its worker with progress and Cancel (osam's fetch is
    replaced: no test downloads anything)."""
    from studio.gui import segment_settings
    from studio.ml.segment.weights import DownloadCancelled

    def fake_pull(spec, progress=None, cancel=None):
        progress(spec.files[0].filename, 1_000_000, 10_000_000)
        cancel.wait(10)
        raise DownloadCancelled("cancelled")

    monkeypatch.setattr(segment_settings, "pull", fake_pull)
    dialog = win.label.segment.show_model_dialog()
    try:
        dialog.model.setCurrentIndex(dialog.model.findData("efficientsam:10m"))
        assert "about 40 MB" in dialog.state.text() and "Apache" in dialog.licence.text()
        dialog.download.click()
        qtbot.waitUntil(lambda: dialog.progress.value() == 100, timeout=10000)
        assert "efficient_sam_vitt_encoder.onnx" in dialog.progress.format()
        dialog.cancel_download.click()
        qtbot.waitUntil(lambda: not dialog.workers.busy, timeout=10000)
        assert not dialog.cancel_download.isVisible() and "Not installed" in dialog.state.text()
    finally:
        dialog.close()
