"""Journeys through the real window, as a person walks them: real clicks and keys on the
start page, the dialogs, the panels and the workspace bar (pytest-qt). Only the platform's
folder chooser is answered for the test (a native dialog takes no synthetic input).

More journeys (Train and Inspect paths) live beside this file in test_journeys_*.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QTreeWidgetItem,
)
from testutil import write_png

from studio.gui import dialogs
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings

LAPTOP = (1366, 768)
FULL_HD = (1920, 1080)


# --- the person's hands ---------------------------------------------------------------------
@pytest.fixture
def boxes(monkeypatch):
    """Every QMessageBox shown: (title, text) instead of a blocking dialog."""
    shown: list[tuple[str, str]] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append((box.windowTitle(), box.text()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def win(qtbot, tmp_path, boxes):
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.resize(*LAPTOP)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    window.close()


def when_shown(kind, act, tries: int = 500) -> None:
    """Run `act(dialog)` once a modal dialog of `kind` shows (from inside its exec loop)."""

    def poll(left: int) -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind) and dialog.isVisible():
            act(dialog)
        elif left > 0:
            QTimer.singleShot(20, lambda: poll(left - 1))

    QTimer.singleShot(0, lambda: poll(tries))


def type_into(edit: QLineEdit, text: str) -> None:
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(edit, Qt.Key.Key_Delete)
    QTest.keyClicks(edit, text)


def click_ok(dialog: QDialog) -> None:
    button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def new_project_dialog(folder, name: str, then=None):
    def act(dialog: dialogs.NewProjectDialog) -> None:
        type_into(dialog.folder, str(folder))
        type_into(dialog.name, name)
        if then is not None:
            then()
        click_ok(dialog)

    return act


def add_class(win: MainWindow, name: str) -> None:
    def act(dialog: QInputDialog) -> None:
        QTest.keyClicks(dialog.findChild(QLineEdit), name)
        click_ok(dialog)

    when_shown(QInputDialog, act)
    QTest.mouseClick(win.classes_panel.buttons["add"], Qt.MouseButton.LeftButton)


def tick_tag(win: MainWindow, name: str) -> None:
    """Click the check box of class `name` in the Image tags panel."""
    tags = win.tags_panel.list
    item = next(tags.item(i) for i in range(tags.count()) if tags.item(i).text() == name)
    rect = tags.visualItemRect(item)
    QTest.mouseClick(tags.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(rect.left() + 10, rect.center().y()))


def drag_on_canvas(win: MainWindow, qtbot, start, end) -> None:
    """Press, move and release the left button on the canvas, at image coordinates."""
    canvas = win.canvas
    viewport = canvas.viewport()
    a, b = (canvas.mapFromScene(QPointF(*p)) for p in (start, end))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for f in (0.3, 0.7, 1.0):
        p = QPointF(a + (b - a) * f)
        QApplication.sendEvent(viewport, QMouseEvent(
            QMouseEvent.Type.MouseMove, p, viewport.mapToGlobal(p), Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    qtbot.waitUntil(lambda: canvas.idle)


def switch(win: MainWindow, key: str) -> None:
    """One click on the workspace bar."""
    action = dict(zip(win.workspaces.keys(), win.workspaces.switch_actions(), strict=True))[key]
    QTest.mouseClick(win.workspaces.bar.widgetForAction(action), Qt.MouseButton.LeftButton)
    assert win.workspaces.current_key == key


def press(win: MainWindow, key, mods=Qt.KeyboardModifier.NoModifier) -> None:
    """A key on the canvas (shortcuts go through the window, active again after a dialog)."""
    win.activateWindow()
    QApplication.processEvents()
    target = win.canvas if win.canvas is not None else win
    target.setFocus()
    QTest.keyClick(target, key, mods)
    QApplication.processEvents()


# --- what the window must keep true ------------------------------------------------------------
def assert_fits(win: MainWindow, size=LAPTOP) -> None:
    """At `size` the shown workspace needs no scrolling and no panel of it is cut: the
    workspace's minimum size fits its page, and no scroll area inside it scrolls sideways
    (a form or plot cut at the right edge)."""
    win.resize(*size)
    QApplication.processEvents()
    assert (win.width(), win.height()) == size
    page = win.workspaces.currentWidget()
    assert isinstance(page, QScrollArea)
    hint = page.widget().minimumSizeHint()
    viewport = page.viewport().size()
    key = win.workspaces.current_key
    assert hint.width() <= viewport.width() and hint.height() <= viewport.height(), (
        f"{key} needs {hint.width()} x {hint.height()} px, has {viewport.width()} x "
        f"{viewport.height()} at {size}")
    def cut() -> list:
        return [a for a in page.widget().findChildren(QScrollArea)
                if a.isVisible() and a.horizontalScrollBar().isVisible()]

    deadline = time.monotonic() + 3.0  # a panel's late fields re-fit the divider (queued)
    while cut() and time.monotonic() < deadline:
        QTest.qWait(50)
    for area in page.widget().findChildren(QScrollArea):
        if area.isVisible():
            assert not area.horizontalScrollBar().isVisible(), (
                f"{key}: {type(area.widget()).__name__} is cut at the right at {size}")
    if key == "label" and win.project is not None:
        for name, dock in win.docks.items():
            assert dock.isVisible(), name
            assert dock.width() >= dock.minimumSizeHint().width(), name
            assert dock.height() >= dock.minimumSizeHint().height(), name


def assert_train_fits_every_task(win: MainWindow, qtbot) -> None:
    """Each task's setup panels (their fields differ by task), each tab in turn, at the
    laptop size: none is cut."""
    train = win.train
    switch(win, "train")
    qtbot.waitUntil(lambda: train.backend is not None, timeout=60000)
    combo = train.controls.task
    for task in train.backend.TASKS:
        combo.setCurrentIndex(combo.findData(task))  # as a pick from its list does
        assert train.task == task
        for i in range(train.setup_tabs.count()):
            QTest.mouseClick(train.setup_tabs.tabBar(), Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier,
                             train.setup_tabs.tabBar().tabRect(i).center())
            assert train.setup_tabs.currentIndex() == i
            assert_fits(win, LAPTOP)


def visit_all(win: MainWindow, qtbot, minimum) -> None:
    """Every workspace, at a laptop's and a full HD screen's size: each fits and the window's
    minimum size never changes."""
    for key in ("train", "inspect", "label"):
        switch(win, key)
        if key == "train":
            qtbot.waitUntil(lambda: win.train.backend is not None, timeout=60000)
        for size in (LAPTOP, FULL_HD):
            assert_fits(win, size)
            assert win.minimumSizeHint() == minimum, key
        win.resize(*LAPTOP)


# --- data on disk ------------------------------------------------------------------------------
def photos(tmp_path, n: int = 3):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i in range(n):
        write_png(folder / f"photo_{i}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return folder


def membrane_masks(tmp_path):
    """A masks dataset of two images whose 0/255 masks mean membrane / cell."""
    source = tmp_path / "cells"
    for i, name in enumerate(("a", "b")):
        img = np.full((20, 20, 3), 40, np.uint8)
        mask = np.zeros((20, 20), np.uint8)
        mask[5:15, 5 + i:15] = 255  # two different images
        img[mask > 0] = 200
        write_png(source / "images" / f"{name}.png", img)
        write_png(source / "masks" / f"{name}.png", mask)
    return source


# --- journeys ----------------------------------------------------------------------------------
def test_first_project_from_a_folder_then_a_second_by_import(win, qtbot, tmp_path, boxes,
                                                            monkeypatch):
    """Start page -> new project from a folder -> classes and tags -> Train -> Inspect ->
    a second project made by importing masks (named classes) -> every workspace shows only
    the second -> each fits 1366 x 768 and 1920 x 1080 with one window minimum."""
    minimum = win.minimumSizeHint()
    assert win.label.currentWidget() is win.welcome
    assert not win.status_labels["zoom"].isVisible()  # no canvas: no zoom readout

    folder = photos(tmp_path)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    when_shown(dialogs.NewProjectDialog, new_project_dialog(tmp_path / "first", "first"))
    QTest.mouseClick(win.welcome.folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.project is not None and win.project.count_images() == 3,
                    timeout=15000)
    qtbot.waitUntil(lambda: win.images_panel.model.rowCount() == 3 and win.doc.image_id)
    assert win.label.currentWidget() is win.label.editor
    assert win.status_labels["zoom"].isVisible() and win.status_labels["zoom"].text()
    assert win.windowTitle().startswith("Vision Studio - first")

    add_class(win, "cat")
    add_class(win, "dog")
    qtbot.waitUntil(lambda: win.tags_panel.list.count() == 2)
    cat, dog = (c.id for c in win.project.classes())
    tick_tag(win, "cat")
    assert win.doc.tags() == {cat}
    shown = win.doc.image_id
    press(win, Qt.Key.Key_D)
    assert win.doc.image_id != shown
    tick_tag(win, "dog")
    assert win.doc.tags() == {dog}
    press(win, Qt.Key.Key_D)
    press(win, Qt.Key.Key_R)  # the box tool
    drag_on_canvas(win, qtbot, (4, 4), (20, 16))
    boxes_drawn = [a for a in win.project.annotations(win.doc.image_id) if a.kind == "box"]
    assert len(boxes_drawn) == 1 and boxes_drawn[0].class_id == dog  # the class last added
    press(win, Qt.Key.Key_V)

    # a filter on the image list, to see that it does not follow into the next project
    QTest.keyClicks(win.images_panel.search, "photo_1")
    qtbot.waitUntil(lambda: win.images_panel.model.rowCount() == 1)

    switch(win, "train")
    assert not win.status_labels["zoom"].isVisible()  # the readouts are Label's
    qtbot.waitUntil(lambda: win.train.backend is not None, timeout=60000)
    train = win.train
    assert train.task == "classification"
    train.form.fields["epochs"].editor.set_value(69)
    train.form.show_reasons({"epochs": "69: about 1440 steps (membranes)"})
    train.controls.reasons.setText("about the membranes")
    train.controls.mirror.set_value(True)

    switch(win, "inspect")
    inspect = win.inspect.widget
    assert inspect is not None and not win.status_labels["zoom"].isVisible()
    # what a classification run leaves on screen (its confusion matrix, pre-labels, rows)
    inspect.confusion.set_data(np.array([[2, 0], [1, 3]]), {(0, 0): [1]}, ["cat", "dog"], {})
    inspect.jobs.prelabel_list.addTopLevelItem(QTreeWidgetItem(["photo_0.png", "review", "1"]))
    inspect.readouts.set_classes(["cat", "dog"])
    visit_all(win, qtbot, minimum)

    # File > New project (Ctrl+N) from an open project, then back to the first one
    when_shown(dialogs.NewProjectDialog, new_project_dialog(tmp_path / "empty", "empty"))
    press(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.project is not None and win.project.name == "empty")
    assert win.images_panel.model.rowCount() == 0 and win.tags_panel.list.count() == 0
    assert win.open_project(tmp_path / "first")

    # the second project: File > Close, then the start page's import
    press(win, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert win.project is None and win.label.currentWidget() is win.welcome
    assert str((tmp_path / "first").resolve()) in win.welcome.recent_paths()
    source = membrane_masks(tmp_path)

    def fill_import(dialog: dialogs.ImportDialog) -> None:
        dialog.format.setFocus()
        dialog.format.setCurrentIndex(dialog.format.findData("masks"))
        assert dialog.class_names.isVisible()
        type_into(dialog.source, str(source))
        type_into(dialog.class_names, "0=membrane, 255=cell")
        click_ok(dialog)

    when_shown(dialogs.NewProjectDialog, new_project_dialog(
        tmp_path / "second", "second", then=lambda: when_shown(dialogs.ImportDialog, fill_import)))
    QTest.mouseClick(win.welcome.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(t == "Import finished" for t, _ in boxes), timeout=20000)
    assert win.project.name == "second"

    # Label: the second project's images, no filter, its named classes
    panel = win.images_panel
    assert panel.search.text() == "" and panel.class_filter.currentIndex() == 0
    assert win.project.count_images() == 2
    assert panel.model.filters == {"status": None, "split": None, "class_id": None, "search": None}
    assert panel.model.rowCount() == 2 and panel.count_label.text() == "2 image(s)"
    assert [c.name for c in win.project.classes()] == ["membrane", "cell"]
    assert win.classes_panel.tree.topLevelItemCount() == 2
    assert win.doc.image_id is not None and win.canvas is not None

    # Train: the task the labels point to, its defaults, no word of the first project
    switch(win, "train")
    assert train.task == "semantic"
    defaults = train.backend.default_config("semantic")
    assert train.config()["epochs"] == defaults["epochs"]
    assert all(f.reason.isHidden() for f in train.form.fields.values())
    assert train.controls.reasons.text() == "" and train.controls.mirror.value() is None

    # Inspect: no run of the second project, nothing of the first's results
    switch(win, "inspect")
    assert inspect.run_bar.run.count() == 0
    assert inspect.confusion.matrix.rowCount() == 0
    assert inspect.jobs.prelabel_list.topLevelItemCount() == 0
    assert inspect.readouts.class_names == []
    visit_all(win, qtbot, minimum)


def test_two_projects_opened_one_after_the_other_share_nothing(win, qtbot, tmp_path):
    """Open a classification project, then (without closing) a semantic one: Label, Train
    and Inspect show only the second."""
    from studio.core.geometry import MaskGeom
    from studio.core.project import Project

    first, second = tmp_path / "tags", tmp_path / "seg"
    folder = photos(tmp_path, 4)
    with Project.create(first, name="tags") as p:
        ids = [p.add_image(f)[0] for f in sorted(folder.iterdir())]
        cat = p.add_class("cat")
        p.add_class("dog")
        p.add_annotation(ids[0], cat, "tag")
    with Project.create(second, name="seg") as p:
        image_id = p.add_image(membrane_masks(tmp_path) / "images" / "a.png")[0]
        p.add_class("membrane")
        cell = p.add_class("cell")
        mask = np.zeros((20, 20), bool)
        mask[2:8, 2:8] = True
        p.add_annotation(image_id, cell, "mask", MaskGeom.from_full(mask))

    minimum = win.minimumSizeHint()
    assert win.open_project(first)
    shown = win.doc.image_id
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_D)  # where the keys go after opening
    assert win.doc.image_id != shown and win.images_panel.search.text() == ""
    status_filter = win.images_panel.status_filter
    status_filter.setCurrentIndex(status_filter.findData("done"))
    qtbot.waitUntil(lambda: win.images_panel.model.rowCount() == 0)
    switch(win, "train")
    qtbot.waitUntil(lambda: win.train.backend is not None, timeout=60000)
    assert win.train.task == "classification"
    assert_train_fits_every_task(win, qtbot)
    win.train.controls.mirror.set_value(False)
    switch(win, "inspect")
    win.inspect.widget.confusion.set_data(np.eye(2, dtype=int), {}, ["cat", "dog"], {})
    visit_all(win, qtbot, minimum)

    assert win.open_project(second)  # straight from the first
    assert win.project.name == "seg"
    assert win.images_panel.status_filter.currentIndex() == 0
    assert win.images_panel.model.rowCount() == 1
    assert [win.classes_panel.tree.topLevelItem(i).text(0) for i in range(2)] == [
        "membrane", "cell"]
    assert win.train.task == "semantic" and win.train.controls.mirror.value() is None
    assert win.inspect.widget.confusion.matrix.rowCount() == 0
    visit_all(win, qtbot, minimum)
