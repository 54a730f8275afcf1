"""Drawing and editing tools driven by real mouse and key events on the canvas."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.core.geometry import MaskGeom

L, R = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
SHIFT, ALT, CTRL = (Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier,
                    Qt.KeyboardModifier.ControlModifier)


def anns(canvas, kind=None):
    return canvas.document.project.annotations(canvas.document.image_id, kind=kind)


def disc_truth():
    yy, xx = np.mgrid[:150, :200]
    return (xx - 100) ** 2 + (yy - 75) ** 2 <= 40 ** 2


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def shot(canvas, tmp_path, name):
    path = tmp_path / f"{name}.png"
    assert canvas.grab().save(str(path))
    return path


def test_box_tool(canvas, mouse, tmp_path):
    canvas.set_tool("box")
    mouse.drag([(20, 20), (50, 40), (80, 60)])
    (box,) = anns(canvas, "box")
    assert box.geometry == pytest.approx((20, 20, 60, 40), abs=0.6)
    assert canvas.document.selected_ids == [box.id]
    mouse.click(5, 5)  # a click is not a box
    assert len(anns(canvas)) == 1
    shot(canvas, tmp_path, "box")


def test_polygon_tool_close_enter_backspace_escape(canvas, mouse):
    canvas.set_tool("polygon")
    for x, y in [(10, 10), (60, 10), (60, 50), (10, 50)]:
        mouse.click(x, y)
    mouse.click(10.5, 10.5)  # the first point closes it
    (poly,) = anns(canvas, "polygon")
    assert len(poly.geometry) == 4 and poly.area == pytest.approx(2000, rel=0.05)
    for x, y in [(100, 100), (150, 100), (150, 140), (120, 140)]:
        mouse.click(x, y)
    mouse.key(Qt.Key.Key_Backspace)  # drops (120, 140)
    mouse.key(Qt.Key.Key_Return)
    polys = anns(canvas, "polygon")
    assert len(polys) == 2 and len(polys[1].geometry) == 3
    mouse.click(5, 100)
    mouse.click(30, 100)
    mouse.key(Qt.Key.Key_Escape)
    assert not canvas.tool.busy and len(anns(canvas, "polygon")) == 2


def test_select_move_resize_and_vertex_edits(canvas, mouse, tmp_path):
    doc = canvas.document
    box = doc.add_annotation("box", (20, 20, 40, 30))
    poly = doc.add_annotation("polygon", [(100, 20), (160, 20), (160, 80), (100, 80)])
    canvas.set_tool("select")
    mouse.click(30, 30)
    assert doc.selected_ids == [box]
    n = doc.undo_stack().count()
    mouse.drag([(30, 30), (35, 35), (40, 40)])  # move by ~(10, 10): one undo step
    g = doc.project.annotation(box).geometry
    assert g[0] == pytest.approx(30, abs=1) and g[2] == pytest.approx(40)
    assert doc.undo_stack().count() == n + 1
    mouse.drag([(g[0] + g[2], g[1] + g[3]), (g[0] + g[2] + 20, g[1] + g[3] + 10)])  # corner
    g2 = doc.project.annotation(box).geometry
    assert g2[2] == pytest.approx(60, abs=1) and g2[3] == pytest.approx(40, abs=1)
    mouse.click(130, 50)  # select the polygon
    assert doc.selected_ids == [poly]
    mouse.drag([(160, 80), (170, 90), (180, 95)])  # drag a vertex
    pts = doc.project.annotation(poly).geometry
    assert pts[2] == pytest.approx((180, 95), abs=1)
    mouse.click(130, 20, mods=ALT)  # insert on the top edge
    assert len(doc.project.annotation(poly).geometry) == 5
    mouse.double_click(100, 50)  # insert on the left edge
    assert len(doc.project.annotation(poly).geometry) == 6
    mouse.click(130, 20, R)  # delete a vertex
    mouse.click(100, 50, mods=SHIFT)
    assert len(doc.project.annotation(poly).geometry) == 4
    shot(canvas, tmp_path, "select")
    mouse.click(100, 20, R)
    assert len(doc.project.annotation(poly).geometry) == 3
    mouse.click(100, 80, R)  # cannot go below 3
    assert len(doc.project.annotation(poly).geometry) == 3
    mouse.click(35, 35, mods=CTRL)  # add the box to the selection
    assert set(doc.selected_ids) == {box, poly}
    mouse.key(Qt.Key.Key_Delete)
    assert anns(canvas) == []
    mouse.key(Qt.Key.Key_Z, CTRL)
    assert len(anns(canvas)) == 2


def test_brush_stroke_without_gaps_is_one_step(canvas, mouse, tmp_path):
    doc = canvas.document
    canvas.set_tool("brush")
    canvas.set_brush_size(6)
    n = doc.undo_stack().count()
    # a fast stroke: only three mouse events across 140 pixels
    mouse.press(20, 30)
    mouse.move(90, 30, L)
    shot(canvas, tmp_path, "brush_live")
    assert canvas.paint_layer().buf[30, 20:90].all()  # preview drawn while dragging
    mouse.release(160, 30)
    (m,) = anns(canvas, "mask")
    full = m.geometry.to_full(150, 200)
    assert full[30, 20:161].all() and full[:, 20:161].sum(axis=0).min() >= 5
    assert doc.undo_stack().count() == n + 1
    cmd = doc.undo_stack().command(n)
    assert cmd.ops[0].item is None  # the add keeps no copy; patches hold only the region
    picture = canvas.grab().toImage()  # the landed stroke is drawn (stroke preview gone)
    assert canvas.paint_layer().region() is None
    on, off = (picture.pixelColor(canvas.mapFromScene(x, y)) for x, y in ((50.5, 30.5),
                                                                           (50.5, 60.5)))
    assert on.red() > off.red() + 60
    shot(canvas, tmp_path, "brush")
    # semantic mode: painting "other" over it takes the pixels
    classes = {c.name: c.id for c in doc.project.classes()}
    doc.set_active_class(classes["other"])
    mouse.drag([(80, 10), (80, 50)])
    assert doc.project.annotation(m.id).geometry.to_full(150, 200)[30, 78:83].sum() == 0
    canvas.set_preserve_other_labels(True)
    mouse.drag([(120, 10), (120, 50)])
    assert doc.project.annotation(m.id).geometry.to_full(150, 200)[30, 118:123].all()
    # the eraser (and the brush's right button) removes pixels
    canvas.set_tool("eraser")
    canvas.set_preserve_other_labels(False)
    mouse.drag([(40, 20), (40, 40)])
    assert doc.project.annotation(m.id).geometry.to_full(150, 200)[30, 38:43].sum() == 0
    canvas.set_tool("brush")
    mouse.drag([(140, 20), (140, 40)], R)
    assert doc.project.annotation(m.id).geometry.to_full(150, 200)[30, 138:143].sum() == 0


def test_stroke_undo_and_redo_are_written_in_the_background_in_order(canvas, mouse):
    from PySide6.QtTest import QTest

    doc, vp = canvas.document, canvas.viewport()
    canvas.set_tool("brush")
    canvas.set_brush_size(6)
    mouse.drag([(20, 30), (90, 30)])
    (first,) = anns(canvas, "mask")
    mouse.drag([(20, 60), (90, 60)])  # the same class: grows the same mask
    (m,) = anns(canvas, "mask")
    QTest.keyClick(vp, Qt.Key.Key_Z, CTRL)
    QTest.keyClick(vp, Qt.Key.Key_Z, CTRL)
    assert canvas.edit_workers.busy  # the keys returned before the store was written
    mouse.settle()
    assert anns(canvas) == [] and canvas.items_by_id() == {}
    QTest.keyClick(vp, Qt.Key.Key_Z, CTRL | SHIFT)
    QTest.keyClick(vp, Qt.Key.Key_Z, CTRL | SHIFT)
    mouse.settle()
    assert [a.area for a in anns(canvas, "mask")] == [m.area]
    assert list(canvas.items_by_id()) == [m.id]
    # an edit made while an undo is being written waits for it: it sees the store after
    QTest.keyClick(vp, Qt.Key.Key_Z, CTRL)
    box = doc.add_annotation("box", (5, 5, 10, 10))
    assert [a.area for a in anns(canvas, "mask")] == [first.area]
    mouse.settle()
    assert set(canvas.items_by_id()) == {m.id, box}


def test_brush_instance_mode_one_object_per_stroke_shift_adds(canvas, mouse):
    """Each stroke is its own object (as the action's tooltip says); Shift adds to the
    selected one; the eraser clears only the selected object."""
    doc = canvas.document
    canvas.set_tool("brush")
    canvas.set_paint_mode("instance")
    canvas.set_brush_size(5)
    mouse.drag([(20, 20), (40, 20)])
    (first,) = anns(canvas, "mask")
    assert doc.selected_ids == [first.id]
    mouse.drag([(20, 40), (40, 40)])  # a second stroke, the first still selected
    masks = anns(canvas, "mask")
    assert len(masks) == 2 and doc.selected_ids == [masks[1].id]
    assert doc.project.annotation(first.id).area == first.area  # untouched
    mouse.drag([(20, 60), (40, 60)], L, SHIFT)  # Shift: into the selected (second) object
    assert len(anns(canvas, "mask")) == 2
    grown = doc.project.annotation(masks[1].id).geometry.to_full(150, 200)
    assert grown[40, 30] and grown[60, 30]
    canvas.set_tool("eraser")
    mouse.drag([(25, 15), (25, 65)])  # crosses all three strokes
    assert not doc.project.annotation(masks[1].id).geometry.to_full(150, 200)[40, 25]
    assert doc.project.annotation(first.id).geometry.to_full(150, 200)[20, 25]


def test_instance_painting_tooltip_says_what_strokes_do(qtbot):
    from PySide6.QtWidgets import QWidget

    from studio.gui.actions import Actions

    owner = QWidget()
    qtbot.addWidget(owner)
    tip = Actions(owner).instance_mode.toolTip()
    assert "separate object" in tip and "Shift" in tip


def test_fill_and_wand(canvas, mouse, tmp_path):
    canvas.set_tool("wand")
    mouse.click(100, 75)
    (m,) = anns(canvas, "mask")
    assert iou(m.geometry.to_full(150, 200), disc_truth()) > 0.97
    canvas.document.undo_stack().undo()
    canvas.set_tool("fill")
    mouse.press(100, 75)
    shot(canvas, tmp_path, "fill_live")
    mouse.release(100, 75)
    (m,) = anns(canvas, "mask")
    assert iou(m.geometry.to_full(150, 200), disc_truth()) > 0.97
    canvas.document.undo_stack().undo()
    # dragging right raises the tolerance: the dark background joins the disc
    canvas.set_tool("wand")
    mouse.press(100, 75)
    x0 = mouse.at(100, 75).x()
    mouse.move((x0 + 600) / canvas.scale_factor(), 75, L)
    assert "tolerance" in canvas.tool.tolerance_text  # shown beside the cursor while dragging
    mouse.release(100, 75)
    (m,) = anns(canvas, "mask")
    assert m.area == 200 * 150
    # the drag is remembered relative to the noise: a plain click now takes as much
    canvas.document.undo_stack().undo()
    mouse.click(100, 75)
    (m,) = anns(canvas, "mask")
    assert m.area == 200 * 150 and canvas.tool.tolerance_scale > 5


def test_grabcut_box_refine_accept(canvas, mouse, tmp_path):
    canvas.set_tool("grabcut")
    mouse.drag([(55, 30), (100, 75), (146, 121)])
    tool = canvas.tool
    assert tool.result is not None and anns(canvas) == []  # proposal only
    shot(canvas, tmp_path, "grabcut")
    mouse.drag([(60, 40), (70, 45)], R)  # background marks
    mouse.drag([(100, 75), (110, 80)])  # object marks
    mouse.key(Qt.Key.Key_Return)
    (m,) = anns(canvas, "mask")
    assert iou(m.geometry.to_full(150, 200), disc_truth()) > 0.9
    assert canvas.document.undo_stack().count() == 1
    mouse.drag([(10, 10), (40, 40)])
    mouse.key(Qt.Key.Key_Escape)
    assert len(anns(canvas)) == 1 and not canvas.tool.busy


def test_grabcut_runs_in_the_background_and_says_when_it_finds_nothing(canvas, qtbot,
                                                                         tmp_path):
    from PySide6.QtTest import QTest

    from studio.gui.canvas.tools.grabcut import EMPTY_HINT

    canvas.set_tool("grabcut")
    tool = canvas.tool
    vp, at = canvas.viewport(), lambda x, y: canvas.mapFromScene(x, y)
    QTest.mousePress(vp, L, Qt.KeyboardModifier.NoModifier, at(10, 10))
    QTest.mouseMove(vp, at(40, 40))
    QTest.mouseRelease(vp, L, Qt.KeyboardModifier.NoModifier, at(40, 40))
    assert tool.computing and tool.result is None  # the release handler did not wait
    qtbot.waitUntil(lambda: canvas.idle and not tool.computing, timeout=10000)
    assert tool.result is not None and not tool.result.any()  # background only
    assert canvas.toast_text == EMPTY_HINT  # said at once, on the canvas
    shot(canvas, tmp_path, "grabcut_empty")
    QTest.keyClick(vp, Qt.Key.Key_Return)  # nothing to accept: the hint again, no object
    assert anns(canvas) == [] and tool.busy
    QTest.keyClick(vp, Qt.Key.Key_Escape)
    assert not tool.busy


def test_grabcut_box_around_the_whole_image_is_a_clear_error(canvas, mouse):
    errors = []
    canvas.errorOccurred.connect(errors.append)
    canvas.set_tool("grabcut")
    mouse.drag([(-5, -5), (100, 80), (205, 155)])
    assert errors and "background" in errors[0] and not canvas.tool.busy


def test_convert_selection_and_copy_paste_keys(canvas, mouse):
    doc = canvas.document
    poly = doc.add_annotation("polygon", [(10, 10), (50, 10), (50, 40), (10, 40)])
    doc.select([poly])
    (mask_id,) = canvas.convert_selection("mask")
    assert doc.project.annotation(mask_id).geometry.bbox() == (10, 10, 40, 30)
    assert isinstance(canvas.items_by_id()[mask_id].geometry, MaskGeom)
    mouse.key(Qt.Key.Key_C, CTRL)
    mouse.key(Qt.Key.Key_V, CTRL)
    mouse.key(Qt.Key.Key_D, CTRL)
    assert len(anns(canvas, "mask")) == 3
    (back,) = canvas.convert_selection("polygon")
    assert doc.project.annotation(back).kind == "polygon"


def test_undo_keys_follow_the_image(canvas, mouse):
    doc = canvas.document
    a, b = doc.project.test_image_ids
    canvas.set_tool("box")
    mouse.drag([(10, 10), (40, 40)])
    doc.set_image(b)
    mouse.drag([(10, 10), (40, 40)])
    doc.set_image(a)
    mouse.key(Qt.Key.Key_Z, CTRL)
    assert doc.project.annotations(a) == [] and len(doc.project.annotations(b)) == 1
    mouse.key(Qt.Key.Key_Z, CTRL | SHIFT)
    assert len(doc.project.annotations(a)) == 1
    assert len(canvas.items_by_id()) == 1
