"""Fixtures for the canvas and document tests: a tiny project and real mouse input.

Every GUI test is checked for background work left behind: a WorkerPool (the one way the
GUI runs work off its thread) or QThreadPool still running a task, or a QThread still
running, fails the test that left it (and is stopped, so the next test starts clean).
"""

from __future__ import annotations

import weakref

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

DISC_CENTER, DISC_RADIUS = (100, 75), 40


@pytest.fixture(autouse=True)
def no_qt_work_left_behind(qapp, monkeypatch):
    """Fail a test that leaves a QThread, a QThreadPool task or a WorkerPool running."""
    from PySide6.QtCore import QThread, QThreadPool

    from studio.gui.workers import live_pools

    threads: weakref.WeakSet = weakref.WeakSet()
    original_start = QThread.start

    def start(self, *args, **kwargs):
        threads.add(self)
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    pools_before = set(map(id, live_pools()))
    yield
    QApplication.processEvents()  # deliver what finished just now (deleteLater included)
    left = []
    for thread in list(threads):
        if thread.isRunning():
            left.append(f"QThread {thread!r} still running")
            thread.quit()
            thread.wait(5000)
    for pool in live_pools():
        if pool.running and not pool.busy:
            pool.wait(2000)  # outcomes delivered: its threads are just returning
        if pool.busy or pool.running:
            left.append(f"WorkerPool '{pool.name}' still running {pool.running} task(s)")
        if id(pool) not in pools_before:
            pool.shutdown()  # idle pools of this test: stop their threads too
    if QThreadPool.globalInstance().activeThreadCount():
        left.append("the global QThreadPool is still running a task")
        QThreadPool.globalInstance().waitForDone(5000)
    assert not left, "background work outlived the test: " + "; ".join(left)


def write_rgb(path, arr: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr)
    return path


def disc_image(height: int = 150, width: int = 200, value: int = 230) -> np.ndarray:
    """A bright disc on a dark, slightly noisy background (RGB uint8)."""
    rng = np.random.default_rng(0)
    img = rng.integers(10, 30, (height, width, 3), dtype=np.uint8)
    cv2.circle(img, DISC_CENTER, DISC_RADIUS, (value, value, value), -1)
    return img


@pytest.fixture
def label_project(project, tmp_path):
    """Project with images A (disc) and B (square) and classes cell, other."""
    a = write_rgb(tmp_path / "images" / "a.png", disc_image())
    b_arr = np.full((120, 160, 3), 15, np.uint8)
    b_arr[30:90, 40:120] = 200
    b = write_rgb(tmp_path / "images" / "b.png", b_arr)
    ids = [project.add_image(a)[0], project.add_image(b)[0]]
    project.add_class("cell", color="#ff0000")
    project.add_class("other", color="#00ff00")
    project.test_image_ids = ids
    return project


@pytest.fixture
def doc(label_project, qapp):
    from studio.gui.document import LabelDocument

    d = LabelDocument(label_project)
    d.set_image(label_project.test_image_ids[0])
    return d


@pytest.fixture
def canvas(qtbot, doc):
    from studio.gui.canvas import CanvasView

    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(420, 330)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return view


class Mouse:
    """Real mouse events on the canvas viewport, at image (scene) coordinates.

    After each event it waits, as a person would, until the canvas's background work
    (fills, GrabCut, the store write of a stroke) has landed."""

    def __init__(self, canvas, qtbot) -> None:
        self.canvas = canvas
        self.vp = canvas.viewport()
        self.qtbot = qtbot

    def settle(self) -> None:
        self.qtbot.waitUntil(lambda: self.canvas.idle, timeout=10000)

    def at(self, x: float, y: float) -> QPoint:
        return self.canvas.mapFromScene(QPointF(x, y))

    def press(self, x, y, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
        QTest.mousePress(self.vp, button, mods, self.at(x, y))
        self.settle()

    def release(self, x, y, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
        QTest.mouseRelease(self.vp, button, mods, self.at(x, y))
        self.settle()

    def move(self, x, y, buttons=Qt.MouseButton.NoButton, mods=Qt.KeyboardModifier.NoModifier):
        p = QPointF(self.at(x, y))
        ev = QMouseEvent(QMouseEvent.Type.MouseMove, p, self.vp.mapToGlobal(p),
                         Qt.MouseButton.NoButton, buttons, mods)
        QApplication.sendEvent(self.vp, ev)
        self.settle()

    def click(self, x, y, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
        QTest.mouseClick(self.vp, button, mods, self.at(x, y))
        self.settle()

    def double_click(self, x, y, mods=Qt.KeyboardModifier.NoModifier):
        QTest.mouseDClick(self.vp, Qt.MouseButton.LeftButton, mods, self.at(x, y))
        self.settle()

    def drag(self, points, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
        (x0, y0), *rest = points
        self.press(x0, y0, button, mods)
        for x, y in rest:
            self.move(x, y, button, mods)
        self.release(*points[-1], button, mods)

    def key(self, key, mods=Qt.KeyboardModifier.NoModifier):
        QTest.keyClick(self.vp, key, mods)
        self.settle()


@pytest.fixture
def mouse(canvas, qtbot) -> Mouse:
    return Mouse(canvas, qtbot)
