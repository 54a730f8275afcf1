"""Workspaces of the main window (Label, Train, Inspect): one click or key switches.

The frame is a stack of workspace widgets plus a toolbar of exclusive, checkable
actions (one per workspace, each with its shortcut). Switching only changes which widget
is shown: the open project, the document (selection, undo history) and any running job
stay as they are, so a person can label the next images while a model trains.

Each workspace sits in a scroll area of its own: the window's minimum size never depends
on the workspace shown (a QStackedWidget would otherwise take the largest minimum of all
its pages, so one visit to a wide workspace would widen the window for good), and a
workspace that does not fit a small screen scrolls instead of being cut off.

A workspace widget may implement any of these optional hooks (duck-typed):

- ``set_document(doc)``: the project changed: the open project's LabelDocument (a new
  one for each project opened or created; the same one again after an import into it),
  or None when it closes;
  ``doc.project`` is the Project. This is the one "project changed" path: the workspace
  resets every per-project view from the store (nothing of the previous project, such as
  its task, settings, filters, runs or results, may stay on screen).
- ``workspace_entered()`` / ``workspace_left()``: it became / stopped being visible.
- ``confirm_close() -> bool``: asked before the project or the window closes (e.g.
  "a run is training: stop it?"); False keeps everything open.
- ``shutdown()``: the window closes; stop threads and leave nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFrame, QScrollArea, QStackedWidget, QToolBar, QVBoxLayout, QWidget


@dataclass
class WorkspaceEntry:
    key: str
    title: str
    widget: QWidget
    action: QAction
    page: QScrollArea  # holds the widget in the frame's stack


def scroll_page(widget: QWidget) -> QScrollArea:
    """`widget` in a frameless scroll area that resizes it: it fills the area and scrolls
    only when the area is smaller than the widget's minimum size."""
    page = QScrollArea()
    page.setFrameShape(QFrame.Shape.NoFrame)
    page.setWidgetResizable(True)
    page.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the workspace's own widgets
    page.setWidget(widget)
    return page


class WorkspaceFrame(QStackedWidget):
    """The window's central widget: workspaces stacked, one visible at a time."""

    currentChanged = Signal(str)  # key of the workspace now shown  # type: ignore[assignment]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: dict[str, WorkspaceEntry] = {}
        self._current: str | None = None
        self._doc = None
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.bar = QToolBar("Workspaces")
        self.bar.setObjectName("toolbar_workspaces")
        self.bar.setMovable(False)

    # --- building ---------------------------------------------------------------------
    def add_workspace(self, key: str, title: str, widget: QWidget,
                      shortcut: str | QKeySequence | None = None, tooltip: str = "") -> QAction:
        """Add a workspace; returns its (checkable) action, also shown on the bar.

        The shortcut works anywhere in the window (the action is added to the frame,
        the window's central widget).
        """
        if key in self._entries:
            raise ValueError(f"workspace {key!r} exists already")
        action = QAction(title, self)
        action.setCheckable(True)
        action.setData(key)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = tooltip or f"Show the {title} workspace"
        action.setToolTip(f"{tip} ({keys})" if keys else tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False, k=key: self.switch_to(k))
        self.group.addAction(action)
        self.bar.addAction(action)
        self.addAction(action)
        page = scroll_page(widget)
        self.addWidget(page)
        self._entries[key] = WorkspaceEntry(key, title, widget, action, page)
        if self._doc is not None:
            _call(widget, "set_document", self._doc)
        if self._current is None:
            self.switch_to(key)
        return action

    def switch_actions(self) -> list[QAction]:
        """The switching actions, in the order the workspaces were added."""
        return [e.action for e in self._entries.values()]

    # --- switching --------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self._entries)

    @property
    def current_key(self) -> str | None:
        return self._current

    def workspace(self, key: str) -> QWidget:
        return self._entries[key].widget

    def switch_to(self, key: str) -> None:
        """Show the workspace `key` (KeyError for an unknown key)."""
        entry = self._entries[key]
        entry.action.setChecked(True)
        if key == self._current:
            return
        old = self._entries.get(self._current) if self._current else None
        self._current = key
        if old is not None:
            _call(old.widget, "workspace_left")
        self.setCurrentWidget(entry.page)
        _call(entry.widget, "workspace_entered")
        self.currentChanged.emit(key)

    # --- project life -----------------------------------------------------------------
    def set_document(self, doc) -> None:
        """Hand the open project's document (or None) to every workspace."""
        self._doc = doc
        for entry in self._entries.values():
            _call(entry.widget, "set_document", doc)

    def confirm_close(self) -> bool:
        """Ask each workspace whether it may close (a training run asks the person)."""
        for entry in self._entries.values():
            hook = getattr(entry.widget, "confirm_close", None)
            if hook is not None and not hook():
                self.switch_to(entry.key)
                return False
        return True

    def shutdown(self) -> None:
        """The window closes: each workspace stops its threads."""
        for entry in self._entries.values():
            _call(entry.widget, "shutdown")


def _call(widget: QWidget, hook: str, *args) -> None:
    fn = getattr(widget, hook, None)
    if fn is not None:
        fn(*args)


class LazyWorkspace(QWidget):
    """A workspace built the first time it is shown: its modules (and the engine they
    import) load only when a person opens it, so the labelling window starts light.

    Forwards the frame's hooks to the built widget; before it exists, it remembers the
    document for it and has nothing to confirm or shut down.
    """

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._doc = None
        self.widget: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def build(self) -> QWidget:
        """The workspace widget, built now if it was not yet."""
        if self.widget is None:
            self.widget = self._factory()
            self._layout.addWidget(self.widget)
            _call(self.widget, "set_document", self._doc)
        return self.widget

    def set_document(self, doc) -> None:
        self._doc = doc
        if self.widget is not None:
            _call(self.widget, "set_document", doc)

    def workspace_entered(self) -> None:
        _call(self.build(), "workspace_entered")

    def workspace_left(self) -> None:
        if self.widget is not None:
            _call(self.widget, "workspace_left")

    def confirm_close(self) -> bool:
        hook = getattr(self.widget, "confirm_close", None)
        return True if hook is None else bool(hook())

    def shutdown(self) -> None:
        if self.widget is not None:
            _call(self.widget, "shutdown")
