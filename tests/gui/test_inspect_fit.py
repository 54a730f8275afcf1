"""Inspect fits a 1366 x 768 laptop (and a 1920 x 1080 screen) for a run of each task, in
the whole window: a tiny run per task trained here, opened with the Open button, then
the readout table shows all its columns (no sideways scrolling, every figure whole) and
all its rows, every tab of the left panel is in sight (no scroll arrows; Pre-labels
included), no panel is squeezed below its minimum and nothing's minimum exceeds the
screen. Screenshots go to INSPECT_SHOTS when it names a folder."""

from __future__ import annotations

import os
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractScrollArea, QSplitter, QTableWidget, QToolButton
from testutil import (
    FAST_TRAINING,
    add_toy_classification,
    add_toy_objects,
    add_toy_segmentation,
)

from studio.core.project import Project

SCREENS = [(1366, 768), (1920, 1080)]
TINY = {
    "semantic": {"image_size": 16, "batch_size": 4, "samples_per_image": 1,
                 "model_options": {"depth": 2, "width": 8}},
    "classification": {"image_size": 16, "batch_size": 4, "model_options": {"width": 8,
                                                                              "fc": [16]}},
    "detection": {"image_size": 48, "batch_size": 2, "resize_policy": "resize",
                  "model_options": {"min_size": 64, "max_size": 64}},
}
TINY["instance"] = TINY["detection"]


def train_tiny(task: str, root) -> tuple:
    """A project at root/task with a one-epoch run of `task`: (folder, run id)."""
    import torch

    from studio.ml.fit import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with Project.create(root / task, name=task) as project:
            images = root / f"{task}-images"
            if task == "semantic":
                add_toy_segmentation(project, images, ["train"] * 3 + ["val"] * 3)
            elif task == "classification":
                add_toy_classification(project, images, ["train"] * 6 + ["val"] * 4)
            else:
                add_toy_objects(project, images, ["train"] * 2 + ["val"] * 3,
                                kind="mask" if task == "instance" else "box", empty=(4,))
            config = {"task": task, "epochs": 1, "device": "cpu", **TINY[task],
                      **FAST_TRAINING}
            return root / task, fit(project, config).run_id
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A project with one one-epoch run per task: {task: (folder, run id)}."""
    root = tmp_path_factory.mktemp("fit")
    return {task: train_tiny(task, root) for task in TINY}


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from studio.gui.main_window import MainWindow
    from studio.gui.settings import Settings

    monkeypatch.setattr(QMessageBox, "exec", lambda _box: int(QMessageBox.StandardButton.Ok))
    win = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(win)
    win.resize(*SCREENS[0])
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.inspect.widget is not None:
        win.inspect.widget.shutdown()
    win.close()


def open_in_inspect(qtbot, win, folder, run_id):
    assert win.open_project(folder)
    QTest.keyClick(win, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.AltModifier)  # the workspace's shortcut
    ws = win.inspect.widget
    assert ws is not None and win.workspaces.current_key == "inspect"
    ws.device = "cpu"
    qtbot.waitUntil(lambda: ws.isVisible())
    QTest.qWait(50)  # laid out: before a run is opened too, the readouts show whole
    # before Open, the panels of the chosen run's task: the readouts for a semantic run
    assert ws.readouts.isVisible() == ws.views.semantic_tools
    assert ws.detection.panel.isVisible() == ws.views.detection
    if win.size().toTuple() == SCREENS[0]:
        if ws.views.semantic_tools:
            assert_table_whole(ws.readouts.table, "the empty readout table")
        assert ws.browser.horizontalScrollBar().maximum() == 0
    bar = ws.run_bar
    bar.run.setCurrentIndex(bar.run.findData(run_id))
    with qtbot.waitSignal(ws.sessionOpened, timeout=60000):
        qtbot.mouseClick(bar.open, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ws.pool.busy and not ws.readouts.status.text().endswith(
        "updating…"), timeout=30000)
    return ws


def assert_table_whole(table: QTableWidget, what: str) -> None:
    """Every column in sight and every figure whole; every row in sight."""
    header, view = table.horizontalHeader(), table.viewport()
    assert table.horizontalScrollBar().maximum() == 0, f"{what} scrolls sideways"
    last = table.columnCount() - 1
    assert header.sectionViewportPosition(last) + header.sectionSize(last) <= view.width(), (
        f"{what}: its last column ends past the right edge")
    metrics = table.fontMetrics()
    for c in range(table.columnCount()):
        for r in range(table.rowCount()):
            item = table.item(r, c)
            if item is not None and item.text():
                assert metrics.horizontalAdvance(item.text()) < header.sectionSize(c), (
                    f"{what}: {item.text()!r} is cut in column {c}")
    assert table.verticalScrollBar().maximum() == 0, (
        f"{what}: {table.rowCount()} rows, {view.height()} px for them")


def assert_tabs_in_sight(tabs) -> None:
    bar = tabs.tabBar()
    arrows = [b for b in bar.findChildren(QToolButton) if b.isVisible()]
    assert not arrows, "the tab bar needs scroll arrows"
    for i in range(tabs.count()):
        if tabs.isTabVisible(i):
            assert bar.rect().contains(bar.tabRect(i)), f"tab {tabs.tabText(i)!r} is cut"
            assert bar.geometry().right() <= tabs.width(), "the tab bar is cut"


def assert_fits(win, ws, size) -> None:
    width, height = size
    hint = win.minimumSizeHint()
    assert hint.width() <= width and hint.height() <= height, (hint, size)
    page = win.workspaces.currentWidget()
    need, room = page.widget().minimumSizeHint(), page.viewport().size()
    assert need.width() <= room.width() and need.height() <= room.height(), (need, room, size)
    assert page.horizontalScrollBar().maximum() == 0 and page.verticalScrollBar().maximum() == 0
    for splitter in ws.findChildren(QSplitter):
        if not splitter.isVisible():
            continue
        for i in range(splitter.count()):
            w = splitter.widget(i)
            if w.isVisible():  # no panel squeezed below what it needs
                least = w.minimumSizeHint().expandedTo(w.minimumSize())
                assert w.width() >= least.width() and w.height() >= least.height(), (
                    type(w).__name__, w.size(), least, size)
    canvases = list(ws.view.canvases())  # the image pans: its scroll bars are no cut
    for area in ws.findChildren(QAbstractScrollArea):  # nothing cut at the right
        if area.isVisible() and area not in canvases:
            assert area.horizontalScrollBar().maximum() == 0, (type(area).__name__, size)


@pytest.mark.parametrize("task", list(TINY))
def test_inspect_fits_a_laptop_for_each_task(task, runs, window, qtbot, tmp_path):
    folder, run_id = runs[task]
    shutil.copytree(folder, tmp_path / task, ignore=shutil.ignore_patterns("project.lock"))
    ws = open_in_inspect(qtbot, window, tmp_path / task, run_id)
    assert ws.session.task == task
    for size in SCREENS:
        window.resize(*size)
        qtbot.waitUntil(lambda s=size: window.size().toTuple() == s)
        QTest.qWait(50)  # the splitters and tables lay out
        assert_fits(window, ws, size)
        assert_tabs_in_sight(ws.left_tabs)
        if task in ("semantic", "classification"):  # the review queues' tabs show
            index = ws.left_tabs.indexOf(ws.jobs.prelabels)
            assert ws.left_tabs.isTabVisible(index)
        if task == "semantic":
            assert ws.readouts.isVisible()
            assert_table_whole(ws.readouts.table, "the readout table")
            assert "Split:" in ws.readouts.status.text()
        elif task == "classification":
            assert ws.confusion.isVisible() and not ws.right_panel.isVisible()
            matrix = ws.confusion.matrix
            assert matrix.horizontalScrollBar().maximum() == 0
            # no overlays to choose: the bar is hidden, not greyed out above the image
            assert not ws.view_bar.isVisible()
            # the list is as wide as its tabs need, the image gets the rest
            assert ws.left_tabs.width() <= max(340, ws.left_tabs.minimumWidth() + 20)
        else:
            panel = ws.detection.panel
            assert panel.isVisible()
            assert_table_whole(panel.readouts, f"the {task} readouts")
            assert panel.objects.horizontalScrollBar().maximum() == 0
        folder_out = os.environ.get("INSPECT_SHOTS")
        if folder_out:
            window.grab().save(os.path.join(folder_out, f"fit_{task}_{size[0]}x{size[1]}.png"))
    # the Pre-labels tab is reached with one click where it shows
    if task in ("semantic", "classification"):
        bar = ws.left_tabs.tabBar()
        index = ws.left_tabs.indexOf(ws.jobs.prelabels)
        window.resize(*SCREENS[0])
        qtbot.waitUntil(lambda: window.size().toTuple() == SCREENS[0])
        qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
        assert ws.left_tabs.currentWidget() is ws.jobs.prelabels
