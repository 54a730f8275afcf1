"""The canvas view: zoom, pan, brush size, opacity, visibility, display window, tiles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication
from testutil import huge_image_view

from studio.core.errors import StudioError
from studio.gui.canvas import SHORTCUT_HELP, CanvasView
from studio.gui.document import LabelDocument


def wheel(canvas, pos: QPoint, delta: int) -> None:
    vp = canvas.viewport()
    ev = QWheelEvent(QPointF(pos), QPointF(vp.mapToGlobal(pos)), QPoint(0, 0),
                     QPoint(0, delta), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)


def test_zoom_at_cursor_fit_and_100(canvas, mouse):
    zooms = []
    canvas.zoomChanged.connect(zooms.append)
    fit = canvas.zoom_percent
    assert fit == pytest.approx(200, rel=0.05)  # 200x150 image in a ~420x330 view
    anchor = mouse.at(50, 40)
    wheel(canvas, anchor, 240)
    assert canvas.zoom_percent > fit and zooms[-1] == canvas.zoom_percent
    assert canvas.mapToScene(anchor).x() == pytest.approx(50, abs=1.0)  # point stays put
    mouse.key(Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom_percent == pytest.approx(100)
    mouse.key(Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom_percent == pytest.approx(fit)


def drag_view(canvas, start: QPoint, offsets, button) -> None:
    """Drag in view coordinates (the scene moves under the mouse while panning)."""
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest

    vp = canvas.viewport()
    QTest.mousePress(vp, button, Qt.KeyboardModifier.NoModifier, start)
    for dx, dy in offsets:
        p = QPointF(start + QPoint(dx, dy))
        QApplication.sendEvent(vp, QMouseEvent(QMouseEvent.Type.MouseMove, p, vp.mapToGlobal(p),
                                               Qt.MouseButton.NoButton, button,
                                               Qt.KeyboardModifier.NoModifier))
    QTest.mouseRelease(vp, button, Qt.KeyboardModifier.NoModifier,
                       start + QPoint(*offsets[-1]))


def test_pan_with_middle_button_and_space(canvas, mouse):
    from PySide6.QtTest import QTest

    canvas.zoom_100()
    vp = canvas.viewport()
    before = canvas.mapToScene(vp.rect().center())
    drag_view(canvas, mouse.at(100, 75), [(-20, 0), (-40, -10)], Qt.MouseButton.MiddleButton)
    after = canvas.mapToScene(vp.rect().center())
    assert after.x() - before.x() == pytest.approx(40, abs=1)
    assert after.y() - before.y() == pytest.approx(10, abs=1)
    canvas.set_tool("box")
    QTest.keyPress(vp, Qt.Key.Key_Space)
    drag_view(canvas, mouse.at(100, 75), [(10, 0), (20, 0)], Qt.MouseButton.LeftButton)
    QTest.keyRelease(vp, Qt.Key.Key_Space)
    assert canvas.document.project.annotations(canvas.document.image_id) == []  # no box
    assert canvas.mapToScene(vp.rect().center()).x() == pytest.approx(after.x() - 20, abs=1)


def test_tools_brush_size_keys_and_cursor(canvas, mouse):
    names, sizes = [], []
    canvas.toolChanged.connect(names.append)
    canvas.brushSizeChanged.connect(sizes.append)
    for name in ("select", "box", "polygon", "brush", "eraser", "fill", "wand", "grabcut"):
        canvas.set_tool(name)
        assert canvas.tool_name == name
    assert names[-1] == "grabcut"
    with pytest.raises(StudioError):
        canvas.set_tool("lasso")
    canvas.set_tool("brush")
    mouse.move(60, 60)
    cursor = canvas.brush_cursor()
    assert cursor is not None and cursor.width() == canvas.brush_size
    assert abs(cursor.center().x() - 60) < 0.5 and abs(cursor.center().y() - 60) < 0.5
    start = canvas.brush_size
    mouse.key(Qt.Key.Key_BracketRight)
    assert canvas.brush_size > start and sizes[-1] == canvas.brush_size
    assert canvas.brush_cursor().width() == canvas.brush_size
    canvas.set_tool("select")
    assert canvas.brush_cursor() is None
    canvas.set_tool("brush")
    mouse.key(Qt.Key.Key_BracketLeft)
    mouse.key(Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < start


def test_opacity_visibility_and_class_colour(canvas, mouse):
    doc = canvas.document
    box = doc.add_annotation("box", (20, 20, 40, 40))
    item = canvas.items_by_id()[box]
    canvas.set_opacity(0.8)
    assert item.fill_opacity == 0.8
    cls = doc.active_class_id
    doc.set_class_visible(cls, False)
    assert not item.isVisible()
    canvas.set_tool("select")
    mouse.click(30, 30)
    assert doc.selected_ids == []  # hidden objects cannot be picked
    doc.set_all_visible(True)
    assert item.isVisible()
    doc.project.set_class_color(cls, "#0000ff")
    doc.notify_classes_changed()
    assert canvas.items_by_id()[box].color == QColor("#0000ff")


def test_sixteen_bit_window(qtbot, label_project, tmp_path):
    img = np.zeros((60, 80), np.uint16)
    img[:, 40:] = 1000  # dark 16-bit data: unreadable without a window
    path = tmp_path / "dark16.png"
    cv2.imwrite(str(path), img)
    image_id, _ = label_project.add_image(path)
    doc = LabelDocument(label_project)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    doc.set_image(image_id)
    assert view.image_region(0, 0, 80, 60)[0, 79] == 255  # auto window stretches
    with qtbot.waitSignal(view.image_layer.windowApplied, timeout=5000):
        view.set_window(0, 4000)
    assert view.image_region(0, 0, 80, 60)[0, 79] == pytest.approx(64, abs=1)
    applied = []
    view.image_layer.windowApplied.connect(lambda: applied.append(view.image_layer.window))
    for brightness in np.linspace(-0.5, 0.0, 12):  # a slider dragged: ticks in a burst
        view.set_brightness_contrast(brightness, 1.0)
    qtbot.waitUntil(lambda: view.idle and bool(applied), timeout=5000)
    assert len(applied) == 1  # debounced: the burst was mapped once, with the last value
    lo, hi = applied[0]
    assert lo < 1000 <= hi
    assert view.image_region(0, 0, 80, 60)[0, 79] == 255


def test_huge_image_overview_then_tiles(qtbot, label_project, tmp_path):
    yy, xx = np.mgrid[:700, :900]
    img = np.dstack([xx * 255 // 900, yy * 255 // 700, (xx + yy) * 255 // 1600]).astype(np.uint8)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), img)
    view, doc, image_id = huge_image_view(qtbot, label_project, path)
    shown = []
    view.image_layer.contentShown.connect(lambda: shown.append(True))
    doc.set_image(image_id)
    assert view.image_layer.tiled
    qtbot.waitUntil(lambda: view.image_layer.has_content, timeout=10000)
    assert shown
    layer = view.image_layer
    view.zoom_100()
    qtbot.waitUntil(lambda: bool(layer.shown_tile_levels()) and view.idle, timeout=10000)
    assert layer.shown_tile_levels() == {0}  # full resolution tiles
    # what the view shows at 100 % is the image's own pixels, not the blurred overview
    view.centerOn(520, 315)
    qtbot.waitUntil(lambda: view.idle, timeout=10000)
    picture = view.grab().toImage()
    centre = view.mapFromScene(520.5, 315.5)
    rgb = picture.pixelColor(centre).getRgb()[:3]
    assert np.abs(np.array(rgb) - img[315, 520, ::-1].astype(int)).max() <= 12  # JPEG
    region = view.image_region(500, 300, 40, 30)
    assert region.shape == (30, 40, 3)
    assert np.abs(region.astype(int) - img[300:330, 500:540, ::-1]).mean() < 4  # JPEG
    view.fit()
    qtbot.waitUntil(lambda: view.idle, timeout=10000)
    assert layer.shown_tile_levels() == set()  # the overview is enough when zoomed out
    layer.full_pixels = 4096 * 4096
    doc.set_image(label_project.test_image_ids[0])
    assert not layer.tiled and layer.shown_tile_levels() == set()


def test_shortcut_help_lists_canvas_gestures():
    keys = " ".join(k for k, _ in SHORTCUT_HELP)
    for needed in ("Ctrl+0", "[ / ]", "Alt+click", "Backspace", "Space"):
        assert needed in keys


def test_big_mask_zoomed_out_is_drawn_where_it_is(qtbot, label_project, tmp_path):
    """Zoomed out, a big mask is drawn from a reduced copy: same place, same colour."""
    from studio.core.geometry import MaskGeom

    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), np.full((1000, 1600, 3), 40, np.uint8))
    image_id, _ = label_project.add_image(path)
    full = np.zeros((1000, 1600), bool)
    full[100:900, 200:800] = True  # 480,000 px ... and a second block makes it > 1 Mpx
    full[:, 1000:1500] = True
    cell = label_project.classes()[0].id
    label_project.add_annotation(image_id, cell, "mask", MaskGeom.from_full(full))
    doc = LabelDocument(label_project)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(420, 300)
    view.show()
    qtbot.waitExposed(view)
    doc.set_image(image_id)
    view.fit()
    assert view.scale_factor() < 0.5
    picture = view.grab().toImage()

    def red(x, y):
        return picture.pixelColor(view.mapFromScene(x, y)).red()

    assert red(500, 500) > 80 and red(1250, 500) > 80  # inside the mask: tinted
    assert red(100, 500) < 60 and red(900, 500) < 60 and red(500, 950) < 60  # outside
    assert picture.save(str(tmp_path / "big_mask_fit.png"))


def test_canvas_view_satisfies_the_tool_host_protocol(canvas):
    """The tools see the canvas only through `ToolHost`: every member the protocol names
    is there on a real view, with the declared kind (attribute or method)."""
    from studio.gui.canvas.tools.host import ToolHost

    declared = set(ToolHost.__annotations__)
    methods = {n for n, v in vars(ToolHost).items() if callable(v) and not n.startswith("_")}
    assert {"document", "image_size", "workers"} <= declared and "paint_layer" in methods
    for name in declared:
        assert hasattr(canvas, name), name
        assert not callable(getattr(canvas, name)) or name in ("message", "errorOccurred"), name
    for name in methods:
        assert callable(getattr(canvas, name)), name
    assert all(tool.canvas is canvas for tool in canvas._tools.values())
