"""What a canvas tool may ask of the canvas that hosts it (`ToolHost`).

The tools are written against this protocol, not against `CanvasView`, so the view
imports its tools and the tools never import the view; `CanvasView` satisfies it.
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import QPointF, SignalInstance
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsScene

from studio.gui.canvas.items import AnnotationItem, PaintLayerItem
from studio.gui.document import LabelDocument
from studio.gui.workers import WorkerPool


class ToolHost(Protocol):
    """The canvas as its tools see it: the document, the image, the paint settings, the
    selection, the scene to draw previews in and the workers for heavy assists."""

    document: LabelDocument
    image_size: tuple[int, int]  # (width, height) of the image shown; (0, 0) for none
    brush_size: int
    paint_mode: str  # a `studio.core.editing.PAINT_MODES` name
    preserve_other_labels: bool
    workers: WorkerPool  # fill, wand, GrabCut
    edit_workers: WorkerPool  # store writes of strokes
    message: SignalInstance  # short hints for the status bar (str)
    errorOccurred: SignalInstance  # (str)

    def scene(self) -> QGraphicsScene: ...

    def scale_factor(self) -> float: ...

    def active_color(self) -> QColor: ...

    def paint_layer(self) -> PaintLayerItem: ...

    def image_region(self, x: int, y: int, w: int, h: int) -> Any: ...

    def selected_items(self) -> list[AnnotationItem]: ...

    def selected_mask_id(self) -> int | None: ...

    def item_at(self, pos: QPointF, tol: float = 0.0) -> AnnotationItem | None: ...

    def toast(self, text: str) -> None: ...
