"""The labelling window end to end: real key presses, drops, dialogs and error boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from studio.core.geometry import MaskGeom
from studio.core.project import Project
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def boxes(monkeypatch):
    """Every QMessageBox shown: (icon, text) instead of a blocking dialog."""
    shown: list[tuple[QMessageBox.Icon, str]] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append((box.icon(), box.text()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def folder_project(tmp_path, make_image):
    """A closed project folder with 4 images (ids 1..4) and classes cell (key 1), other (2)."""
    with Project.create(tmp_path / "proj", name="demo") as p:
        for i in range(4):
            p.add_image(make_image(f"img_{i}.png", 24 + i, 32, seed=i))
        p.add_class("cell", "#ff0000")
        p.add_class("other", "#00ff00")
    return tmp_path / "proj"


@pytest.fixture
def win(qtbot, tmp_path, boxes):
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    window.close()


def key(win: MainWindow, k, mod=Qt.KeyboardModifier.NoModifier) -> None:
    """Press a key on the canvas, as a person would (shortcuts go through the window)."""
    target = win.canvas if win.canvas is not None else win
    target.setFocus()
    QTest.keyClick(target, k, mod)
    QApplication.processEvents()


def test_open_project_lists_images_and_keys_navigate(win, folder_project):
    assert win.label.currentWidget() is win.welcome
    assert win.open_project(folder_project)
    assert win.label.currentWidget() is win.label.editor
    assert win.images_panel.model.rowCount() == 4
    assert win.doc.image_id == 1  # the first unlabelled image
    assert win.status_labels["index"].text() == "1 / 4"
    key(win, Qt.Key.Key_D)
    assert win.doc.image_id == 2
    key(win, Qt.Key.Key_D)
    key(win, Qt.Key.Key_A)
    assert win.doc.image_id == 2
    assert win.status_labels["index"].text() == "2 / 4"
    assert win.status_labels["size"].text() == "32 x 25"
    assert win.images_panel.view.currentIndex().row() == 1
    assert win.settings.last_project == str(folder_project.resolve())


def test_mark_done_next_unlabelled_and_list_update(win, folder_project):
    win.open_project(folder_project)
    win.project.set_status(2, "done")
    win.images_panel.refresh()
    key(win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # mark done, go on
    assert win.project.image(1).status == "done"
    assert win.doc.image_id == 3  # image 2 was already done
    model = win.images_panel.model
    assert model.data(model.index(0, 1)) == "done"
    key(win, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)  # next unlabelled
    assert win.doc.image_id == 4
    key(win, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)  # wraps around
    assert win.doc.image_id == 3
    key(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert win.project.image(3).status == "review"


def test_digit_keys_choose_the_drawing_class_alt_digit_recolours_the_selection(
        win, folder_project):
    win.open_project(folder_project)
    cell, other = (c.id for c in win.project.classes())
    key(win, Qt.Key.Key_2)
    assert win.doc.active_class_id == other
    assert win.classes_panel.current_class_id() == other
    ann = win.doc.add_annotation("box", (1, 1, 5, 5), class_id=cell)
    win.doc.select([ann])
    key(win, Qt.Key.Key_1)  # the next shape's class: the selected box is left alone
    assert win.doc.active_class_id == cell
    key(win, Qt.Key.Key_2)
    assert win.project.annotation(ann).class_id == cell
    assert "keeps its class" in win.statusBar().currentMessage()
    steps = win.doc.undo_stack().count()
    key(win, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # change the selection's class
    assert win.project.annotation(ann).class_id == other
    assert "1 object(s) changed to other" in win.statusBar().currentMessage()
    assert win.canvas.items_by_id()[ann].color.name() == "#00ff00"  # visibly recoloured
    assert win.doc.undo_stack().count() == steps + 1
    key(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.project.annotation(ann).class_id == cell
    key(win, Qt.Key.Key_9)  # no class has it: only a note
    assert "9" in win.statusBar().currentMessage()


def test_tool_keys_and_view_actions_reach_the_canvas(win, folder_project):
    win.open_project(folder_project)
    for k, name in ((Qt.Key.Key_R, "box"), (Qt.Key.Key_P, "polygon"), (Qt.Key.Key_B, "brush"),
                    (Qt.Key.Key_E, "eraser"), (Qt.Key.Key_V, "select")):
        key(win, k)
        assert win.canvas.tool_name == name
        assert win.actions.tools[name].isChecked()
    win.label.opacity_slider.setValue(80)
    assert win.canvas.opacity == pytest.approx(0.8)
    win.actions.show_objects.setChecked(False)
    assert win.doc.hidden_class_ids == {c.id for c in win.project.classes()}
    win.actions.instance_mode.setChecked(True)
    assert win.canvas.paint_mode == "instance"


def test_panels_stay_in_sync(win, folder_project, qtbot):
    win.open_project(folder_project)
    objects = win.objects_panel
    a1 = win.doc.add_annotation("box", (1, 1, 5, 5))
    a2 = win.doc.add_annotation("polygon", np.array([[2, 2], [10, 2], [10, 9]], float))
    assert objects.tree.topLevelItemCount() == 2  # rows appear through the document
    assert win.images_panel.model.data(win.images_panel.model.index(0, 3)) == 2
    assert win.project.image(1).status == "in_progress"  # the first edit starts the image
    objects.tree.topLevelItem(1).setSelected(True)  # select in the panel -> document
    assert win.doc.selected_ids == [a2]
    win.doc.select([a1])  # document (canvas) -> panel
    assert objects.selected_ids() == [a1]
    assert win.canvas.items_by_id()[a1].selected
    key(win, Qt.Key.Key_Delete)
    assert objects.tree.topLevelItemCount() == 1
    key(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert objects.tree.topLevelItemCount() == 2
    # image tags: ticking a box stores a tag annotation (undoable)
    other = win.project.class_by_name("other").id
    win.tags_panel.item_of(other).setCheckState(Qt.CheckState.Checked)
    assert [a.class_id for a in win.project.annotations(1, kind="tag")] == [other]
    win.actions.undo.trigger()
    assert win.project.annotations(1, kind="tag") == []
    assert win.tags_panel.item_of(other).checkState() == Qt.CheckState.Unchecked


def test_ten_thousand_images_list_lazily(win, tmp_path):
    with Project.create(tmp_path / "big") as p, p.transaction() as conn:
        conn.executemany(
            "INSERT INTO images(path, width, height, channels, sha256, split, status, added_at,"
            " updated_at) VALUES (?, 64, 48, 3, ?, 'none', 'new', 0, 0)",
            [(f"missing/img_{i:05d}.png", f"{i:064x}") for i in range(10_000)])
    win.images_panel.thumbs_box.setChecked(False)
    win.open_project(tmp_path / "big")
    model, view = win.images_panel.model, win.images_panel.view
    assert model.rowCount() == 10_000
    assert 0 < model.loaded_rows < 10_000
    view.scrollToBottom()
    QApplication.processEvents()
    assert model.data(model.index(9_999, 0)) == "img_09999.png"
    assert model.loaded_rows < 10_000
    win.images_panel.search.setText("img_0999")
    win.images_panel._apply_filters()
    assert model.rowCount() == 10  # img_09990 .. img_09999


def test_drop_a_folder_adds_its_images(win, folder_project, tmp_path, make_image, qtbot,
                                       monkeypatch):
    from studio.core import tiles

    monkeypatch.setattr(tiles, "TILED_PIXELS", 300)  # 20x20 images count as huge here
    win.open_project(folder_project)
    drop = tmp_path / "dropped"
    for i in range(3):
        make_image(f"new_{i}.png", 20, 20, seed=100 + i, folder=drop / "sub")
    (drop / "notes.txt").write_text("not an image")
    (drop / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(drop))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)
    qtbot.waitUntil(lambda: win.images_panel.model.rowCount() == 7, timeout=10000)
    assert win.project.count_images() == 7
    assert "Added 3 image(s)" in win.statusBar().currentMessage()
    # the new images' pyramids are built in the background, ready for their first view
    new_ids = win.project.image_ids()[-3:]
    qtbot.waitUntil(lambda: all(
        tiles.TilePyramid(r.abs_path, win.project.cache_dir, key=tiles.pyramid_key(r.sha256))
        .is_built() for r in map(win.project.image, new_ids)), timeout=10000)


def test_import_dialog_runs_an_import_and_reports(win, tmp_path, monkeypatch, boxes, qtbot):
    from studio.gui import dialogs

    source = REPO / "tests" / "data" / "masks"
    Project.create(tmp_path / "empty").close()
    win.open_project(tmp_path / "empty")
    monkeypatch.setattr(dialogs.ImportDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(dialogs.ImportDialog, "values", lambda self: ("masks", source, None, {}))
    win.actions.import_dataset.trigger()
    qtbot.waitUntil(lambda: any("Imported" in text for _i, text in boxes), timeout=10000)
    assert win.project.count_images() > 0
    assert win.images_panel.model.rowCount() == win.project.count_images()
    assert win.classes_panel.tree.topLevelItemCount() == len(win.project.classes()) > 0
    assert win.doc.image_id is not None


def test_corrupt_coco_shows_an_error_and_changes_nothing(win, folder_project, tmp_path,
                                                         monkeypatch, boxes, qtbot):
    from studio.gui import dialogs

    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [ {"id": 1, "file_name": "../../etc/passwd"')
    win.open_project(folder_project)
    monkeypatch.setattr(dialogs.ImportDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(dialogs.ImportDialog, "values", lambda self: ("coco", bad, None, {}))
    win.actions.import_dataset.trigger()
    qtbot.waitUntil(lambda: bool(boxes), timeout=10000)
    icon, text = boxes[-1]
    assert icon == QMessageBox.Icon.Warning and "bad.json" in text
    assert win.project.count_images() == 4


def test_locked_project_shows_a_message(win, folder_project, boxes):
    with Project.open(folder_project):  # as if another window had it open
        assert not win.open_project(folder_project)
    assert win.project is None
    assert "open in another window" in boxes[-1][1]


def test_sample_project_opens_and_layout_is_remembered(win, tmp_path, qtbot):
    from studio.sample import ensure_sample_project

    folder = ensure_sample_project(tmp_path / "sample")
    assert win.open_project(folder)
    assert win.images_panel.model.rowCount() == 7
    assert [c.name for c in win.project.classes()] == ["membrane", "cell"]
    win.docks["tags"].hide()
    win.close()
    again = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(again)
    assert again.settings.last_project == str(folder)
    assert again.docks["tags"].isHidden()
    assert again.docks["images"].isVisibleTo(again.label.editor)  # shown with a project


def test_app_main_opens_the_sample(tmp_path, monkeypatch, qtbot, boxes):
    from PySide6.QtCore import QSettings

    from studio import app, sample

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    monkeypatch.setattr(sample, "default_sample_location", lambda: tmp_path / "sample_project")
    seen = {}

    def fake_exec() -> int:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)
                      and w.isVisible())
        qtbot.waitUntil(lambda: window.project is not None, timeout=15000)
        seen["images"] = window.project.count_images()
        window.close()
        window.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", staticmethod(fake_exec))
    assert app.main(["--sample"]) == 0
    assert seen["images"] == 7
    assert not boxes


def run_app(argv, tmp_path, monkeypatch, qtbot, look) -> dict:
    """studio.app.main(argv) with per-user settings under tmp_path; `look(window)` runs
    in place of the event loop and returns what the test checks."""
    from PySide6.QtCore import QSettings

    from studio import app

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    seen = {}

    def fake_exec() -> int:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)
                      and w.isVisible())
        seen.update(look(window))
        window.close()
        window.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", staticmethod(fake_exec))
    assert app.main(argv) == 0
    return seen


def test_a_first_start_lands_on_the_start_page(tmp_path, monkeypatch, qtbot, boxes):
    def look(window):
        return {"project": window.project, "page": window.label.currentWidget(),
                "welcome": window.welcome, "key": window.workspaces.current_key,
                "buttons": [b.isVisible() for b in (
                    window.welcome.folder_button, window.welcome.import_button,
                    window.welcome.sample_button, window.welcome.open_button)],
                "zoom": window.status_labels["zoom"].isVisible()}

    seen = run_app([], tmp_path, monkeypatch, qtbot, look)
    assert seen["project"] is None and seen["key"] == "label"
    assert seen["page"] is seen["welcome"] and all(seen["buttons"])
    assert not seen["zoom"]
    make = (REPO / "Makefile").read_text()
    assert "main.py --sample" not in make  # `make run` starts the same way


def test_app_main_opens_the_project_it_is_given(tmp_path, monkeypatch, qtbot, boxes,
                                               folder_project):
    seen = run_app([str(folder_project)], tmp_path / "user", monkeypatch, qtbot,
                   lambda window: {"name": window.project.name if window.project else None})
    assert seen["name"] == "demo" and not boxes


def test_cheat_sheet_lists_every_shortcut(win, folder_project):
    from studio.gui.canvas import SHORTCUT_HELP

    win.open_project(folder_project)
    key(win, Qt.Key.Key_F1)
    dialog = next(w for w in QApplication.topLevelWidgets() if w.windowTitle() ==
                  "Keyboard shortcuts")
    rows = {(dialog.table.item(r, 0).text(), dialog.table.item(r, 1).text())
            for r in range(dialog.table.rowCount())}
    for act in win.findChildren(type(win.actions.fit)):
        if act.shortcuts():
            assert any(text == act.text().replace("&", "").rstrip(".") or text in ("Undo", "Redo")
                       for _k, text in rows), act.text()
    assert {(k, t) for k, t in SHORTCUT_HELP} <= rows
    assert ("D", "Next image") in rows and ("Ctrl+Z", "Undo") in rows
    dialog.close()


def test_mask_objects_of_the_sample_show_in_objects_panel(win, tmp_path):
    from studio.sample import ensure_sample_project

    win.open_project(ensure_sample_project(tmp_path / "s"))
    win.doc.set_image(1)
    kinds = {win.objects_panel.tree.topLevelItem(i).text(2)
             for i in range(win.objects_panel.tree.topLevelItemCount())}
    assert kinds == {"mask"}
    geom = win.project.annotations(1)[0].geometry
    assert isinstance(geom, MaskGeom)


def test_export_dialog_runs_an_export_and_reports(win, folder_project, tmp_path, monkeypatch,
                                                  boxes, qtbot):
    from studio.gui import dialogs

    win.open_project(folder_project)
    win.doc.add_annotation("box", (2, 2, 6, 6))
    out = tmp_path / "export"
    monkeypatch.setattr(dialogs.ExportDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(dialogs.ExportDialog, "values", lambda self: ("coco", out, None))
    win.actions.export_dataset.trigger()
    qtbot.waitUntil(lambda: any("Exported" in text for _i, text in boxes), timeout=10000)
    assert any(out.rglob("*.json"))
    assert not win.workers.busy


def test_edit_and_view_actions_reach_the_current_document(win, folder_project):
    """The menu actions are bound to functions of the document and canvas (a renamed
    method fails when the window is built, not when a person clicks)."""
    assert win.open_project(folder_project)
    doc = win.doc
    box = doc.add_annotation("box", (2, 2, 10, 8))
    doc.select([box])
    win.actions.duplicate.trigger()
    assert len(win.project.annotations(doc.image_id, kind="box")) == 2
    win.actions.copy.trigger()
    win.actions.paste.trigger()
    assert len(win.project.annotations(doc.image_id, kind="box")) == 3
    win.actions.to_mask.trigger()
    assert [a.kind for a in win.project.annotations(doc.image_id) if a.id in doc.selected_ids] \
        == ["mask"]
    win.actions.delete.trigger()
    assert len(win.project.annotations(doc.image_id)) == 2
    win.actions.zoom_100.trigger()
    assert win.canvas.zoom_percent == pytest.approx(100)
    win.actions.fit.trigger()
    assert win.canvas.zoom_percent > 100  # a 32 px wide image fills the canvas
    win.actions.tools["brush"].trigger()
    assert win.canvas.tool_name == "brush"
    win.actions.instance_mode.setChecked(True)
    assert win.canvas.paint_mode == "instance"
    assert win.project.image(doc.image_id).status == "in_progress"  # the first edit
    win.close_project()
    win.actions.copy.trigger()  # no document: nothing happens, no error


def test_import_dialog_names_mask_classes_and_refuses_bad_names(qtbot, tmp_path):
    from testutil import write_png

    from studio.gui.dialogs import ImportDialog, parse_class_names
    from studio.gui.workers import WorkerPool

    source = tmp_path / "isbi"
    for i in range(3):
        write_png(source / "images" / f"{i}.png", np.full((8, 8, 3), 10 * i, np.uint8))
        mask = np.zeros((8, 8), np.uint8)
        mask[2:6, i:6] = 255
        write_png(source / "masks" / f"{i}.png", mask)
    pool = WorkerPool(1)
    dialog = ImportDialog(fmt="coco", workers=pool)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.class_names.isVisible()  # only masks have values to name
    dialog.format.setCurrentIndex(dialog.format.findData("masks"))
    assert dialog.class_names.isVisible()
    QTest.keyClicks(dialog.source, str(source))
    QTest.mouseClick(dialog.read_values, Qt.MouseButton.LeftButton)  # what values are there?
    qtbot.waitUntil(lambda: dialog.class_names.text() == "0=background, 255=foreground")
    assert "Values in 3 mask(s): 0, 255" in dialog.values_info.text()
    dialog.class_names.clear()
    QTest.keyClicks(dialog.class_names, "0=membrane, cell")
    QTest.keyClick(dialog.class_names, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    assert "'cell' is not value=name" in dialog.error.text() and dialog.error.isVisible()
    dialog.class_names.clear()
    QTest.keyClicks(dialog.class_names, "0=membrane, 255=cell")
    QTest.keyClick(dialog.class_names, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.values() == ("masks", source, None,
                               {"classes": {0: "membrane", 255: "cell"}})
    assert parse_class_names("") == {}
    for bad in ("1=a, 1=b", "70000=x", "x=y", "3="):
        with pytest.raises(ValueError):
            parse_class_names(bad)
    pool.shutdown()


def test_reading_mask_values_of_a_folder_without_masks_says_so(qtbot, tmp_path):
    from studio.gui.dialogs import ImportDialog
    from studio.gui.workers import WorkerPool

    pool = WorkerPool(1)
    dialog = ImportDialog(fmt="masks", workers=pool)
    qtbot.addWidget(dialog)
    dialog.show()
    QTest.keyClicks(dialog.source, str(tmp_path))
    QTest.mouseClick(dialog.read_values, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.error.isVisible)
    assert "No masks folder" in dialog.error.text() and dialog.class_names.text() == ""
    pool.shutdown()


def test_the_first_window_fits_the_screen(qtbot, tmp_path):
    window = MainWindow(Settings.at(tmp_path / "fresh.ini"))  # nothing remembered yet
    qtbot.addWidget(window)
    available = window.screen().availableGeometry()
    assert 0 < window.width() <= available.width()
    assert 0 < window.height() <= available.height()
    window.close()
