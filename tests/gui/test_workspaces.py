"""Workspaces of the main window: one click or key switches; the project stays as it was."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel

from studio.core.project import Project
from studio.gui.main_window import MainWindow
from studio.gui.settings import Settings
from studio.gui.workspaces import LazyWorkspace, WorkspaceFrame


class Recorder(QLabel):
    """A workspace that records its hooks; `keep_open` answers confirm_close."""

    def __init__(self) -> None:
        super().__init__("other workspace")
        self.calls: list[tuple] = []
        self.keep_open = False

    def set_document(self, doc) -> None:
        self.calls.append(("doc", doc))

    def workspace_entered(self) -> None:
        self.calls.append(("entered",))

    def workspace_left(self) -> None:
        self.calls.append(("left",))

    def confirm_close(self) -> bool:
        self.calls.append(("confirm",))
        return not self.keep_open

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))


@pytest.fixture
def folder_project(tmp_path, make_image):
    with Project.create(tmp_path / "proj", name="demo") as p:
        for i in range(3):
            p.add_image(make_image(f"img_{i}.png", 24, 32, seed=i))
        p.add_class("cell", "#ff0000")
    return tmp_path / "proj"


@pytest.fixture
def win(qtbot, tmp_path):
    window = MainWindow(Settings.at(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    yield window
    window.close()


def test_frame_rejects_duplicate_keys_and_unknown_switches(qtbot):
    frame = WorkspaceFrame()
    qtbot.addWidget(frame)
    frame.add_workspace("a", "A", QLabel("a"), "Alt+7")
    assert frame.current_key == "a"  # the first one added is shown
    with pytest.raises(ValueError):
        frame.add_workspace("a", "A again", QLabel("a"))
    with pytest.raises(KeyError):
        frame.switch_to("nope")
    assert "Alt+7" in frame.switch_actions()[0].toolTip()


def test_switch_by_key_keeps_document_selection_and_undo(win, folder_project, qtbot):
    other = Recorder()
    win.workspaces.add_workspace("other", "Other", other, "Ctrl+Alt+9")
    win.open_project(folder_project)
    doc = win.doc
    ann = doc.add_annotation("box", (1, 1, 5, 5))
    doc.select([ann])
    assert ("doc", doc) in other.calls
    assert win.docks["images"].isVisible()
    QTest.keyClick(win, Qt.Key.Key_9, Qt.KeyboardModifier.ControlModifier
                  | Qt.KeyboardModifier.AltModifier)
    QApplication.processEvents()
    assert win.workspaces.current_key == "other"
    assert win.workspaces.currentWidget().widget() is other  # in its scroll area
    assert ("entered",) in other.calls
    assert not win.docks["images"].isVisible()  # labelling chrome belongs to Label
    assert not win.actions.next_image.isEnabled()  # "D" does not flip images from here
    QTest.keyClick(win, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier
                  | Qt.KeyboardModifier.AltModifier)
    QApplication.processEvents()
    assert win.workspaces.current_key == "label"
    assert ("left",) in other.calls
    assert win.doc is doc and doc.selected_ids == [ann]
    assert win.docks["images"].isVisible() and win.actions.next_image.isEnabled()
    assert doc.undo_stack().canUndo()
    win.actions.undo.trigger()
    assert win.project.annotations(doc.image_id) == []


def test_one_click_on_the_bar_switches(win, folder_project):
    other = Recorder()
    action = win.workspaces.add_workspace("other", "Other", other)
    win.open_project(folder_project)
    button = win.workspaces.bar.widgetForAction(action)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert win.workspaces.current_key == "other"


def test_a_workspace_can_keep_the_project_and_window_open(win, folder_project):
    other = Recorder()
    win.workspaces.add_workspace("other", "Other", other)
    win.open_project(folder_project)
    other.keep_open = True
    assert not win.close_project()
    assert win.project is not None
    assert win.workspaces.current_key == "other"  # shows the workspace that said no
    assert not win.close()
    assert win.project is not None and not other.calls.count(("shutdown",))
    other.keep_open = False
    assert win.close_project()
    assert other.calls[-1] == ("doc", None)
    assert win.close()
    assert ("shutdown",) in other.calls


def test_a_lazy_workspace_is_built_on_first_entry_and_forwards_hooks(qtbot):
    built: list[Recorder] = []

    def factory() -> Recorder:
        built.append(Recorder())
        return built[-1]

    frame = WorkspaceFrame()
    qtbot.addWidget(frame)
    frame.add_workspace("first", "First", QLabel("first"))
    lazy = LazyWorkspace(factory)
    frame.add_workspace("lazy", "Lazy", lazy)
    frame.set_document("doc-1")
    assert built == [] and lazy.confirm_close()  # nothing built, nothing to confirm
    frame.switch_to("lazy")
    assert len(built) == 1 and lazy.widget is built[0]
    assert built[0].calls == [("doc", "doc-1"), ("entered",)]  # the document it missed
    frame.switch_to("first")
    frame.switch_to("lazy")
    assert len(built) == 1  # built once
    built[0].keep_open = True
    assert not frame.confirm_close()
    frame.set_document(None)
    frame.shutdown()
    assert built[0].calls[-2:] == [("doc", None), ("shutdown",)]


def test_the_window_has_label_train_and_inspect(win):
    assert win.workspaces.keys() == ["label", "train", "inspect"]
    keys = [a.shortcut().toString() for a in win.workspaces.switch_actions()]
    assert keys == ["Ctrl+Alt+1", "Ctrl+Alt+2", "Ctrl+Alt+3"]  # Alt+1-9 give a class
    assert isinstance(win.workspaces.workspace("inspect"), LazyWorkspace)
    assert win.workspaces.workspace("inspect").widget is None  # the engine is not loaded


def test_the_gc_policy_settles_at_start_engine_load_and_switches(win):
    import gc

    from studio.gui import gcpolicy

    try:
        gcpolicy.install(win)
        assert gc.get_freeze_count() > 0  # what the window holds now is never walked again
        gc.unfreeze()
        win.train.ready.emit()  # the engine loaded
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        win.workspaces.switch_to("train")  # first visit: built now
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        win.workspaces.switch_to("label")
        win.workspaces.switch_to("train")  # seen before: a project's objects stay collectable
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()  # tests drop windows: their cycles must stay collectable
