"""The labelling canvas: view, scene items, image tiles and drawing tools."""

from __future__ import annotations

from studio.core import images as _images  # noqa: F401  (sets OpenCV's pixel limit first)
from studio.gui.canvas.view import CanvasView

# (keys, what they do) for the cheat sheet; tool letters and digits belong to the window.
SHORTCUT_HELP: list[tuple[str, str]] = [
    ("Mouse wheel", "Zoom at the cursor"),
    ("Middle drag / Space + drag", "Pan"),
    ("Ctrl+0", "Fit the image in the window"),
    ("Ctrl+1", "Zoom to 100 % (one image pixel per screen pixel)"),
    ("+ / -", "Zoom in / out"),
    ("Click", "Select an object (select tool)"),
    ("Ctrl+click / Shift+click", "Add an object to the selection or remove it"),
    ("Drag", "Move the selected objects (one undo step)"),
    ("Drag a handle", "Resize a box / move a polygon vertex"),
    ("Alt+click or double-click an edge", "Insert a vertex into the selected polygon"),
    ("Shift+click or right-click a vertex", "Delete the vertex (a polygon keeps 3)"),
    ("Delete", "Delete the selected objects"),
    ("Esc", "Cancel the shape being drawn, else clear the selection"),
    ("Ctrl+C / Ctrl+V / Ctrl+D", "Copy / paste / duplicate the selected objects"),
    ("Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y", "Undo / redo (each image keeps its own history)"),
    ("Polygon: click", "Add a point; click the first point or press Enter to close"),
    ("Polygon: Backspace", "Remove the last point"),
    ("[ / ]", "Smaller / bigger brush"),
    ("Brush: right drag", "Erase with the brush (paint with the eraser)"),
    ("Instance painting: Shift + stroke", "Add the stroke to the selected object "
     "(without Shift each stroke is a new object)"),
    ("Fill / wand: drag left-right", "Lower / raise the colour tolerance while held (shown "
     "by the cursor; it starts from the image's noise)"),
    ("GrabCut: drag a box", "Propose the object's mask"),
    ("GrabCut: left / right drag", "Mark object / background and recompute"),
    ("GrabCut: Enter", "Accept the proposed mask"),
    ("Segment: click / Shift+click, right click", "Object point / background point"),
    ("Segment: drag, or double-click in a box", "Box prompt"),
    ("Segment: Enter / Shift+Enter", "Accept as a new object / add it to the selected one "
     "(no prompt: segment the selected boxes)"),
]

__all__ = ["CanvasView", "SHORTCUT_HELP"]
