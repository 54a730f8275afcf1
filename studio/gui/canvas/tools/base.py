"""Base of the canvas tools: each tool turns mouse and key events into document edits.

The view hands every tool event positions in scene (= image pixel-edge) coordinates and
the Qt event (for buttons and modifiers). A handler returns True when it used the event.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent

from studio.core.errors import StudioError
from studio.gui.canvas.tools.host import ToolHost


class Tool:
    """Does nothing by itself; subclasses override the handlers they need."""

    name = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: ToolHost) -> None:
        self.canvas = canvas
        self.doc = canvas.document

    # life cycle ---------------------------------------------------------------------------
    def activate(self) -> None:
        """The tool became the current one."""

    def deactivate(self) -> None:
        """The tool is left, or the image changes: drop any half-made shape."""
        self.cancel()

    def cancel(self) -> None:
        """Forget the shape being drawn (Esc)."""

    @property
    def busy(self) -> bool:
        """True while a shape is half made (Esc then cancels it, not the selection)."""
        return False

    # events ---------------------------------------------------------------------------------
    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        return False

    def move(self, pos: QPointF, event: QMouseEvent) -> bool:
        return False

    def release(self, pos: QPointF, event: QMouseEvent) -> bool:
        return False

    def double_click(self, pos: QPointF, event: QMouseEvent) -> bool:
        return False

    def key_press(self, event: QKeyEvent) -> bool:
        """Esc cancels a shape in progress; tools with more keys extend this."""
        if event.key() == Qt.Key.Key_Escape and self.busy:
            self.cancel()
            return True
        return False

    # helpers --------------------------------------------------------------------------------
    def screen_tol(self, pixels: float = 6.0) -> float:
        """A distance of `pixels` screen pixels expressed in image pixels."""
        return pixels / max(self.canvas.scale_factor(), 1e-9)

    def commit_mask(self, x: int, y: int, footprint, erase: bool = False, text: str = "Paint",
                    new_object: bool = False, on_done=None) -> None:
        """Hand a footprint to the document under the canvas's paint mode, without blocking:
        the store write runs on the canvas's worker and the undo step lands when it is
        done (then on_done(mask id or None) runs). In instance mode a new object is made
        unless `new_object` is False and a mask is selected (erasing clears the selected
        mask, or every mask when none is)."""
        canvas = self.canvas
        mode = canvas.paint_mode
        target = None if new_object else canvas.selected_mask_id()

        def done(new_id: int | None) -> None:
            if mode == "instance" and new_id is not None and not erase:
                self.doc.select([new_id])
            if on_done is not None:
                on_done(new_id)

        try:
            self.doc.paint_mask_async(canvas.edit_workers, x, y, footprint, erase=erase,
                                      mode=mode, preserve_others=canvas.preserve_other_labels,
                                      target_id=target, text=text, on_done=done,
                                      on_error=self.report)
        except StudioError as exc:
            self.report(exc)

    def report(self, exc: Exception) -> None:
        self.canvas.errorOccurred.emit(str(exc))
