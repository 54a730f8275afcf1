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
