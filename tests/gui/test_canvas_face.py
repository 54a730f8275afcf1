"""What a new user of the canvas sees: handle density, class labels, context menu, missing
files."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF

from studio.gui.canvas.items import HANDLE_SPACING_PX, HandleItem


def _handles(item) -> list:
    return [c for c in item.childItems() if isinstance(c, HandleItem)]


def test_dense_polygon_shows_handles_at_a_readable_density(canvas):
    doc = canvas.document
    t = np.linspace(0, 2 * np.pi, 560, endpoint=False)
    ring = np.stack([100 + 40 * np.cos(t), 75 + 40 * np.sin(t)], axis=1)
    ann = doc.add_annotation("polygon", ring)
    doc.select([ann])
    item = canvas.items_by_id()[ann]
    scale = canvas.scale_factor()
    handles = _handles(item)
    perimeter_on_screen = 2 * np.pi * 40 * scale
    assert 8 <= len(handles) <= perimeter_on_screen / HANDLE_SPACING_PX * 1.5 + 2
    pos = [h.pos() for h in handles]
    gaps = [abs(a.x() - b.x()) + abs(a.y() - b.y()) for a, b in zip(pos, pos[1:], strict=False)]
    assert min(gaps) * scale >= HANDLE_SPACING_PX - 1e-6  # no two handles overlap
    canvas.set_zoom_percent(canvas.zoom_percent * 4, QPointF(10, 10))
    assert len(_handles(item)) > len(handles)  # zoomed in: more handles fit
    doc.select([])
    assert _handles(item) == []


def test_class_names_beside_shapes_at_constant_screen_size(canvas):
    from studio.gui.canvas.items import BOX_FILL_FACTOR

    doc = canvas.document
    box = doc.add_annotation("box", (20, 30, 40, 20))
    item = canvas.items_by_id()[box]
    assert item.label is not None and item.label.isVisible() and item.label.text == "cell"
    corner = item.mapToScene(item.label.pos())
    assert abs(corner.x() - 20) <= 1.5 and abs(corner.y() - 30) <= 1.5

    def on_screen():
        label = canvas.items_by_id()[box].label
        return label.deviceTransform(canvas.viewportTransform()).mapRect(label.boundingRect())

    before = on_screen()
    canvas.set_zoom_percent(canvas.zoom_percent * 5)
    assert abs(before.width() - on_screen().width()) <= 1  # the same size at any zoom
    assert on_screen().height() >= 10
    canvas.set_labels(True, ids=True)
    assert canvas.items_by_id()[box].label.text == f"cell #{box}"
    doc.project.rename_class(doc.active_class_id, "nucleus")
    doc.notify_classes_changed()
    assert canvas.items_by_id()[box].label.text == f"nucleus #{box}"
    canvas.set_labels(False)
    assert not canvas.items_by_id()[box].label.isVisible()
    assert BOX_FILL_FACTOR <= 0.5  # a box is an outline with a light fill


def test_box_fill_lets_the_image_show_through(canvas):
    from PySide6.QtGui import QColor

    doc = canvas.document
    canvas.set_labels(False)
    canvas.set_opacity(0.45)
    box = doc.add_annotation("box", (110, 60, 60, 40))  # over the bright disc and background
    img = canvas.grab().toImage()
    inside = img.pixelColor(canvas.mapFromScene(QPointF(120, 70)))
    assert isinstance(inside, QColor) and box
    assert inside.green() > 120  # the grey disc shows; a 45 % red fill would darken it
