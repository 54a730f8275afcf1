"""Image list and objects panel as a new user reads them: object counts, whole names,
next unlabelled."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.gui.document import LabelDocument


@pytest.fixture
def doc(project, make_image, qapp):
    for i in range(3):
        project.add_image(make_image(f"BloodImage_0000{i}.jpg.png", 16, 16, seed=i))
    project.add_class("cell")
    d = LabelDocument(project)
    d.set_image(1)
    return d


def test_image_list_counts_objects_not_tags_and_names_elide_in_the_middle(doc, qtbot):
    from studio.gui.panels.images import ImagesPanel
    from studio.gui.panels.images_model import COL_NAME, COL_OBJECTS

    cid = doc.active_class_id
    for x in range(4):
        doc.add_annotation("box", (x, 0, 3, 3))
    doc.set_tag(cid, True)
    panel = ImagesPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    assert panel.model.data(panel.model.index(0, COL_OBJECTS)) == 4  # the tag is no object
    tip = panel.model.data(panel.model.index(0, COL_NAME), Qt.ItemDataRole.ToolTipRole)
    assert "BloodImage_00000.jpg.png" in tip and "1 image tag" in tip
    assert panel.view.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_next_unlabelled_skips_images_with_annotations_whatever_their_status(doc, qtbot):
    from studio.gui.panels.images import ImagesPanel

    panel = ImagesPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    doc.set_image(2)
    doc.add_annotation("box", (0, 0, 3, 3))
    doc.project.set_status(2, "new")  # e.g. imported before statuses were set
    doc.set_image(1)
    assert panel.first_unlabelled_after(1) == 3


def test_objects_panel_shows_whole_source_and_tooltips(doc, qtbot):
    from studio.gui.panels.objects import ObjectsPanel

    doc.add_annotation("box", (0, 0, 3, 3), source="import:voc")
    panel = ObjectsPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    panel.resize(500, 300)
    item = panel.tree.topLevelItem(0)
    assert "import:voc" in item.toolTip(4)
    width = panel.tree.fontMetrics().horizontalAdvance("import:voc")
    assert panel.tree.columnWidth(4) >= width
