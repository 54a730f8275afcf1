"""The window's face: icons, the application icon, light and dark themes, the canvas's
right-click menu."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QMenu

from studio.gui.icons import NAMES, app_icon, icon_pixmap


def test_every_icon_draws_something_in_the_asked_colour(qapp):
    for name in NAMES:
        img = icon_pixmap(name, 32, "#ff00ff").toImage()
        painted = [img.pixelColor(x, y) for y in range(32) for x in range(32)
                   if img.pixelColor(x, y).alpha() > 200]
        assert len(painted) > 20, name
    with pytest.raises(KeyError):
        icon_pixmap("no such icon")
    assert {s.width() for s in app_icon().availableSizes()} >= {16, 32, 64, 256}


def test_actions_have_icons_and_toolbar_shows_icon_and_text(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from studio.gui.main_window import MainWindow
    from studio.gui.settings import Settings

    win = MainWindow(Settings.at(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    for name, act in win.actions.icon_names().items():
        assert not act.icon().isNull(), name
    assert win.label.editor.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextUnderIcon
    assert win.actions.tools["wand"].iconText() == "Wand"
    assert not win.windowIcon().isNull()
    win.close()


def test_theme_follows_the_system_by_default_and_can_be_chosen(qtbot, tmp_path):
    from studio.gui.main_window import MainWindow
    from studio.gui.settings import Settings
    from studio.gui.theme import SETTING, scheme_for

    settings = Settings.at(tmp_path / "s.ini")
    win = MainWindow(settings)
    qtbot.addWidget(win)
    assert win.theme.mode == "system" and win.theme.scheme == scheme_for("system")
    before = win.actions.tools["box"].icon().pixmap(24).toImage()
    assert win.theme.choose("dark") == "dark"
    window_colour = QApplication.instance().palette().color(QPalette.ColorRole.Window)
    assert window_colour.lightness() < 80 and settings.value(SETTING) == "dark"
    after = win.actions.tools["box"].icon().pixmap(24).toImage()
    assert before != after  # icons redrawn in the dark theme's text colour
    assert win.theme.choose("light") == "light"
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 150
    win.theme.choose("system")
    win.close()


def test_right_click_menu_changes_class_deletes_duplicates_restacks(canvas, mouse, monkeypatch):
    from PySide6.QtCore import Qt

    doc = canvas.document
    other = doc.project.class_by_name("other").id
    a = doc.add_annotation("box", (20, 20, 60, 60))
    b = doc.add_annotation("box", (40, 40, 60, 60))
    menus: list[QMenu] = []
    monkeypatch.setattr("studio.gui.canvas.context_menu.run_menu",
                        lambda menu, pos: menus.append(menu))

    def right_click(x, y):
        """Press the right button, then the context menu event the platform sends."""
        from PySide6.QtGui import QContextMenuEvent

        mouse.click(x, y, Qt.MouseButton.RightButton)
        pos = mouse.at(x, y)
        QApplication.sendEvent(canvas.viewport(), QContextMenuEvent(
            QContextMenuEvent.Reason.Mouse, pos, canvas.viewport().mapToGlobal(pos)))
        QApplication.processEvents()
        return menus[-1] if menus else None

    def act(menu, text):
        for action in menu.actions():
            if action.text().replace("&", "").startswith(text):
                return action
            if action.menu() is not None:
                found = act(action.menu(), text)
                if found is not None:
                    return found
        return None

    menu = right_click(30, 30)  # selects the object under the mouse first
    assert doc.selected_ids == [a]
    act(menu, "other").trigger()
    assert doc.project.annotation(a).class_id == other
    assert canvas.items_by_id()[a].color == QColor("#00ff00")
    doc.undo_group.undo()
    assert doc.project.annotation(a).class_id != other
    # the smaller / later object is on top where they overlap; send it to the back
    assert canvas.item_at(mouse_pos := canvas.mapToScene(mouse.at(50, 50))).ann_id == b
    menu = right_click(50, 50)
    act(menu, "Send to back").trigger()
    assert canvas.item_at(mouse_pos).ann_id == a
    menu = right_click(30, 30)
    act(menu, "Duplicate").trigger()
    assert len(doc.project.annotations(doc.image_id)) == 3
    menu = right_click(30, 30)
    act(menu, "Delete").trigger()
    assert len(doc.project.annotations(doc.image_id)) == 2
    # a right click the tool used (deleting a polygon vertex) opens no menu
    poly = doc.add_annotation("polygon", [[120, 20], [180, 20], [180, 80], [150, 90]])
    doc.select([poly])
    count = len(menus)
    right_click(150, 90)
    assert len(menus) == count and len(doc.project.annotation(poly).geometry) == 3


def test_hide_lock_and_attributes_of_single_objects(canvas, mouse):
    from studio.core.errors import StudioError

    doc = canvas.document
    a = doc.add_annotation("box", (20, 20, 40, 40))
    b = doc.add_annotation("box", (100, 20, 30, 30))
    doc.select([a])
    doc.set_hidden([a], True)
    assert not canvas.items_by_id()[a].isVisible() and canvas.items_by_id()[b].isVisible()
    assert doc.selected_ids == []
    canvas.set_tool("select")
    mouse.click(30, 30)
    assert doc.selected_ids == []  # a hidden object cannot be picked
    doc.set_all_visible(True)  # showing every class keeps the object's own choice
    assert not canvas.items_by_id()[a].isVisible()
    doc.set_hidden([a], False)
    assert canvas.items_by_id()[a].isVisible()
    doc.set_locked([b], True)
    assert "(locked)" in canvas.items_by_id()[b].label.text
    steps = doc.undo_stack().count()
    for edit in (lambda: doc.set_geometry(b, (0, 0, 5, 5)), lambda: doc.delete_annotations([b]),
                 lambda: doc.set_class([b], doc.project.class_by_name("other").id),
                 lambda: doc.convert_annotations([b], "mask")):
        with pytest.raises(StudioError, match="locked"):
            edit()
    doc.select([b])
    mouse.drag([(110, 30), (150, 70)])  # dragging a locked box moves nothing
    assert doc.project.annotation(b).geometry == (100, 20, 30, 30)
    assert doc.undo_stack().count() == steps
    doc.set_locked([b], False)
    doc.set_attribute([b], "difficult", True)
    assert doc.project.annotation(b).attributes == {"difficult": True}
    doc.delete_annotations([b])
    doc.undo_group.undo()  # undo of a delete brings the attributes back
    assert doc.project.annotation(b).attributes == {"difficult": True}


def test_semantic_painting_leaves_locked_masks_alone(canvas):
    import numpy as np

    from studio.core.geometry import MaskGeom

    doc = canvas.document
    other = doc.project.class_by_name("other").id
    m = np.zeros((150, 200), bool)
    m[10:50, 10:50] = True
    locked = doc.add_annotation("mask", MaskGeom.from_full(m), class_id=other)
    doc.set_locked([locked], True)
    doc.paint_mask(0, 0, np.ones((60, 60), bool))  # the active class paints over it
    assert doc.project.annotation(locked).geometry.area == 1600


def test_image_note_is_saved_per_image(qtbot, doc):
    from studio.gui.panels.tags import TagsPanel

    panel = TagsPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    first = doc.image_id
    panel.note.setPlainText("cells cut at the border")
    doc.set_image(doc.project.test_image_ids[1])  # moving on saves what was typed
    assert doc.project.image_note(first) == "cells cut at the border"
    assert panel.note.toPlainText() == ""
    panel.note.setPlainText("dim")
    qtbot.waitUntil(lambda: doc.project.image_note(doc.image_id) == "dim", timeout=3000)
    doc.set_image(first)
    assert panel.note.toPlainText() == "cells cut at the border"
