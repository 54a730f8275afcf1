"""An image whose file is missing: the canvas says so, drawing is off until relinked; an
empty project says what to do next."""

from __future__ import annotations

import shutil

import pytest
from testutil import huge_image_view

from studio.core.errors import StudioError
from studio.core.relink import relink_image
from studio.gui.canvas import CanvasView
from studio.gui.document import LabelDocument


def test_missing_file_is_said_drawing_blocked_until_relinked(qtbot, label_project, tmp_path):
    a_id = label_project.test_image_ids[0]
    rec = label_project.image(a_id)
    moved = tmp_path / "elsewhere" / rec.name
    moved.parent.mkdir()
    shutil.move(rec.abs_path, moved)
    doc = LabelDocument(label_project)
    doc.set_image(a_id)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(420, 330)
    view.show()
    qtbot.waitExposed(view)
    assert view.notice.isVisible() and view.notice.kind == "missing"
    assert "missing" in view.notice.title.text() and str(rec.abs_path) in view.notice.text.text()
    assert view.notice.button("relink_file") is not None
    actions = []
    view.noticeAction.connect(actions.append)
    view.notice.button("relink_folder").click()
    assert actions == ["relink_folder"]
    from tests.gui.conftest import Mouse

    mouse = Mouse(view, qtbot)
    view.set_tool("box")
    mouse.drag([(20, 20), (60, 60)])
    assert label_project.annotations(a_id) == []  # nothing drawn on a blank canvas
    with pytest.raises(StudioError, match="missing"):
        doc.add_annotation("box", (1, 1, 5, 5))
    relink_image(label_project, a_id, moved)
    doc.reload_image()
    assert not view.notice.isVisible() and not doc.image_missing
    mouse.drag([(20, 20), (60, 60)])
    assert len(label_project.annotations(a_id)) == 1


def test_empty_project_says_what_to_do(qtbot, project):
    doc = LabelDocument(project)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    assert view.notice.kind == "empty" and view.notice.isVisible()
    assert "Drag image" in view.notice.text.text()
    assert view.notice.button("add_images") and view.notice.button("import")


def test_huge_image_shows_a_progress_notice_at_once_then_the_overview(qtbot, label_project,
                                                                      tmp_path):
    import cv2
    import numpy as np

    img = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), img)
    view, doc, image_id = huge_image_view(qtbot, label_project, path)
    doc.set_image(image_id)
    # the very moment the image is chosen: no blank canvas, a busy indicator and its size
    assert view.notice.kind == "loading" and not view.notice.isHidden()
    assert not view.notice.busy.isHidden() and "800 x 600" in view.notice.text.text()
    qtbot.waitUntil(lambda: view.image_layer.has_content, timeout=10000)
    assert view.notice.isHidden()
    view.image_layer.wait_idle()


def test_import_builds_pyramids_of_the_new_images(qtbot, tmp_path, make_image, monkeypatch):
    from studio.core.formats import import_dataset
    from studio.core.project import Project
    from studio.gui.main_window import MainWindow
    from studio.gui.settings import Settings

    folder = tmp_path / "ds"
    make_image("a.png", 16, 16, seed=1, folder=folder / "cat")
    make_image("b.png", 16, 16, seed=2, folder=folder / "dog")
    window = MainWindow(Settings.at(tmp_path / "s.ini"))
    qtbot.addWidget(window)
    window._install_project(Project.create(tmp_path / "p"))
    report = import_dataset(window.project, "folders", folder)
    assert len(report.added_ids) == 2
    asked, reports = [], []
    monkeypatch.setattr(window, "prebuild_pyramids", asked.append)
    monkeypatch.setattr("studio.gui.dialogs.show_import_report", lambda p, r: reports.append(r))
    window._on_imported(report)
    assert asked == [report.added_ids] and reports == [report]
    window.close()
