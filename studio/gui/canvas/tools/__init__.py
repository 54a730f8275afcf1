"""The canvas tools, by the names `CanvasView.set_tool` accepts."""

from __future__ import annotations

from studio.gui.canvas.tools.base import Tool
from studio.gui.canvas.tools.box import BoxTool
from studio.gui.canvas.tools.brush import BrushTool, EraserTool
from studio.gui.canvas.tools.fill import FillTool, WandTool
from studio.gui.canvas.tools.grabcut import GrabCutTool
from studio.gui.canvas.tools.polygon import PolygonTool
from studio.gui.canvas.tools.segment import SegmentTool
from studio.gui.canvas.tools.select import SelectTool

TOOL_CLASSES: dict[str, type[Tool]] = {
    cls.name: cls
    for cls in (SelectTool, BoxTool, PolygonTool, BrushTool, EraserTool, FillTool, WandTool,
                GrabCutTool, SegmentTool)
}

__all__ = ["TOOL_CLASSES", "Tool"]
