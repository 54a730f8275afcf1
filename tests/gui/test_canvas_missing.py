"""An image whose file is missing: the canvas says so, drawing is off until relinked; an
empty project says what to do next."""

from __future__ import annotations

import shutil

import pytest

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

    mouse = Mouse(view)
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
