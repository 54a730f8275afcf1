"""Click-to-segment on the canvas with real mouse and key events, run by the tests' tiny
ONNX model (a disc around positive points, an ellipse in a box, cut around negative
points) through osam, the registry and the hash-checked install. Nothing downloads."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from testutil import refuse_model_downloads

from studio.gui.segment_settings import SEGMENT
from studio.ml.segment.engine import forget_loaded, load_model
from studio.ml.segment.registry import unregister_model
from studio.ml.segment.tiny import DISC_RADIUS, TINY_NAME, install_tiny_model

SHIFT, NONE = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.NoModifier


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    refuse_model_downloads(monkeypatch, tmp_path)
    install_tiny_model(tmp_path / "made")
    saved = dict(SEGMENT.config.__dict__)
    SEGMENT.update(model=TINY_NAME, device="cpu", output="mask")
    yield
    SEGMENT.update(**saved)
    forget_loaded()
    unregister_model(TINY_NAME)


@pytest.fixture
def seg(tiny, canvas, mouse):
    canvas.set_paint_mode("instance")
    canvas.set_tool("segment")
    mouse.settle()  # the shown image's embedding
    return canvas.tool_named("segment")


def _masks(doc):
    return doc.project.annotations(doc.image_id, kind="mask")


def test_click_shift_click_enter_undo(seg, canvas, doc, mouse):
    other = doc.project.class_by_name("other").id
    doc.set_active_class(other)
    mouse.click(100, 75)
    disc = seg.preview
    assert disc.area == pytest.approx(np.pi * DISC_RADIUS ** 2, rel=0.1)
    assert canvas.paint_layer().region() is not None  # the preview is drawn
    mouse.click(106, 75, mods=SHIFT)  # negative point cuts the disc
    assert [p[2] for p in seg.points] == [1, 0]
    assert 0 < seg.preview.area < disc.area
    mouse.click(98, 70, button=Qt.MouseButton.RightButton)  # right click: negative too
    assert seg.points[-1][2] == 0
    cut = seg.preview
    mouse.key(Qt.Key.Key_Return)
    (mask,) = _masks(doc)
    assert mask.class_id == other and mask.kind == "mask" and mask.source == "manual"
    assert mask.geometry.equals(cut) or mask.geometry.area == cut.area
    assert not seg.points and seg.preview is None
    mouse.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo step
    assert _masks(doc) == []


def test_drag_box_then_polygon_output_and_esc(seg, doc, mouse):
    mouse.click(30, 30)
    mouse.key(Qt.Key.Key_Escape)  # clears the prompt
    assert not seg.points and seg.preview is None
    SEGMENT.update(output="polygon")
    mouse.drag([(60, 40), (100, 70), (140, 110)])
    assert seg.box == pytest.approx((60, 40, 140, 110), abs=1)
    x, y, w, h = seg.preview.bbox()
    assert 60 <= x and 40 <= y and x + w <= 140 and y + h <= 110
    mouse.key(Qt.Key.Key_Return)
    (poly,) = doc.project.annotations(doc.image_id, kind="polygon")
    assert poly.class_id == doc.active_class_id
    px, py, pw, ph = poly.bbox
    assert 59 <= px and 39 <= py and px + pw <= 141 and py + ph <= 111
    mouse.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.project.annotations(doc.image_id, kind="polygon") == []


def test_segment_this_box(seg, doc, mouse):
    cls = doc.active_class_id
    box_id = doc.add_annotation("box", (50, 40, 60, 50), class_id=cls)
    doc.select([box_id])
    mouse.key(Qt.Key.Key_Return)  # no prompt: the selected box is segmented
    (mask,) = _masks(doc)
    x, y, w, h = mask.bbox
    assert 50 <= x and 40 <= y and x + w <= 110 and y + h <= 90
    mouse.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _masks(doc) == [] and len(doc.project.annotations(doc.image_id, kind="box")) == 1
    mouse.double_click(80, 60)  # double click inside a box: that box is the prompt
    assert seg.box == (50, 40, 110, 90) and seg.preview is not None and not seg.points


def test_second_image_opened_while_first_embeds_gets_its_own_mask(tiny, canvas, doc, mouse,
                                                                  label_project, qtbot):
    model = load_model(TINY_NAME)
    real = model.embed

    def slow(image, size=None):
        time.sleep(0.3)
        return real(image, size)

    model.embed = slow
    a, b = label_project.test_image_ids
    seg = canvas.tool_named("segment")
    canvas.set_tool("segment")
    qtbot.waitUntil(lambda: seg.service.current_key is not None)  # A is being embedded
    assert seg.service.embedding() is None
    doc.set_image(b)  # newest wins
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, NONE, mouse.at(150, 60))
    assert seg.waiting and "preparing" in canvas.toast_text
    mouse.settle()
    assert not seg.waiting
    assert (seg.preview_embedding.width, seg.preview_embedding.height) == (160, 120)
    assert seg.preview.x + seg.preview.width <= 160  # decoded on B's own size
    mouse.key(Qt.Key.Key_Return)
    assert len(doc.project.annotations(b, kind="mask")) == 1
    assert doc.project.annotations(a, kind="mask") == []


def test_cache_makes_the_second_open_free(tiny, canvas, doc, mouse, label_project):
    model = load_model(TINY_NAME)
    calls = []
    real = model.embed
    model.embed = lambda image, size=None: calls.append(1) or real(image, size)
    a, b = label_project.test_image_ids
    canvas.set_tool("segment")
    mouse.settle()
    doc.set_image(b)
    mouse.settle()
    assert len(calls) == 2
    doc.set_image(a)  # in memory
    mouse.settle()
    seg = canvas.tool_named("segment")
    assert len(calls) == 2 and seg.service.embedding() is not None
    seg.service.cache.clear_memory()  # as after restarting: from the project's disk cache
    doc.set_image(b)
    mouse.settle()
    assert len(calls) == 2 and seg.service.cache.disk_reads == 1
    mouse.click(80, 60)
    assert seg.preview is not None


def test_missing_model_says_so_and_downloads_nothing(tiny, canvas, mouse):
    SEGMENT.update(model="efficientsam:10m")
    asked = []
    seg = canvas.tool_named("segment")
    seg.on_missing_model = asked.append
    canvas.set_tool("segment")
    mouse.settle()  # the files are checked on the worker
    assert asked == ["efficientsam:10m"] and "not installed" in canvas.toast_text
    mouse.click(100, 75)
    assert seg.preview is None and not seg.waiting
