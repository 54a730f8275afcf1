"""Every action of the labelling window with its shortcut, made in one place.

Shortcuts follow labelme / X-AnyLabeling / CVAT habits: A/D previous/next image, V select,
R box, P polygon, B brush, E eraser, F fill, W magic wand, G GrabCut, 1-9 class, Del delete,
Ctrl+C/V copy/paste, Ctrl+0 fit. Keys the canvas handles itself (Space to pan, [ and ] for
the brush size, Enter/Esc while drawing) are listed by the canvas in SHORTCUT_HELP and are
deliberately not bound here. Undo/Redo come from the document's QUndoGroup
(`set_undo_group`), so their text says what will be undone.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMenu, QSlider, QWidget

from studio.gui.icons import icon

TOOLS = (  # canvas tool name, text, key
    ("select", "Select / edit", "V"),
    ("box", "Box", "R"),
    ("polygon", "Polygon", "P"),
    ("brush", "Brush", "B"),
    ("eraser", "Eraser", "E"),
    ("fill", "Fill", "F"),
    ("wand", "Magic wand", "W"),
    ("grabcut", "GrabCut", "G"),
    ("segment", "Click-to-segment", "S"),
)
SPLITS = (("train", "train"), ("val", "val"), ("test", "test"), ("none", "no split"))


class Actions:
    """The window's QActions, grouped by menu. Handlers are connected by the window."""

    def __init__(self, window: QWidget) -> None:
        self.window = window
        self.groups: dict[str, list[QAction]] = {}
        a = self._action
        # File
        self.new_project = a("File", "&New project...", QKeySequence.StandardKey.New)
        self.open_project = a("File", "&Open project...", QKeySequence.StandardKey.Open)
        self.open_sample = a("File", "Open &sample project")
        self.import_dataset = a("File", "&Import...", "Ctrl+I", "Import a dataset (COCO, VOC, "
                                "YOLO, labelme, masks, folders) into this project")
        self.export_dataset = a("File", "&Export...", "Ctrl+E")
        self.add_images = a("File", "&Add images...", "Ctrl+Shift+I",
                            "Add image files or a folder of images (drag and drop works too)")
        self.close_project = a("File", "&Close project", "Ctrl+W")
        self.quit = a("File", "&Quit", QKeySequence.StandardKey.Quit)
        # Edit (undo and redo are added per document by set_undo_group)
        self.copy = a("Edit", "&Copy", QKeySequence.StandardKey.Copy)
        self.paste = a("Edit", "&Paste", QKeySequence.StandardKey.Paste)
        self.duplicate = a("Edit", "D&uplicate", "Ctrl+D")
        self.delete = a("Edit", "&Delete objects", [QKeySequence(QKeySequence.StandardKey.Delete),
                                                     QKeySequence("Backspace")])
        self.select_all = a("Edit", "Select &all objects", QKeySequence.StandardKey.SelectAll)
        # View
        self.fit = a("View", "&Fit to window", "Ctrl+0")
        self.zoom_100 = a("View", "&Actual size (100%)", "Ctrl+1")
        self.show_objects = a("View", "&Show objects", "Ctrl+H", checkable=True, checked=True)
        self.window_level = a("View", "&Brightness / contrast...", "Ctrl+L")
        self.show_labels = a("View", "Show class &names", "Ctrl+Shift+L",
                             "Class names beside the objects", checkable=True, checked=True)
        self.show_ids = a("View", "Show object &ids", tip="Object ids beside the class names",
                          checkable=True)
        # Tools
        self.tool_group = QActionGroup(window)
        self.tool_group.setExclusive(True)
        self.tools: dict[str, QAction] = {}
        for name, text, key in TOOLS:
            act = a("Tools", text, key, f"{text} tool ({key})", checkable=True)
            act.setData(name)
            self.tool_group.addAction(act)
            self.tools[name] = act
        self.tools["select"].setChecked(True)
        self.instance_mode = a("Tools", "&Instance painting", "I",
                               "Each brush stroke makes a separate object instead of one "
                               "region per class; hold Shift to add a stroke to the selected "
                               "object", checkable=True)
        self.preserve_labels = a("Tools", "&Preserve other labels", "Shift+P",
                                 "Painting does not overwrite other classes", checkable=True)
        self.to_mask = a("Tools", "Convert selection to &mask", "Ctrl+Shift+M")
        self.to_polygon = a("Tools", "Convert selection to p&olygon", "Ctrl+Shift+P")
        self.segment_model = a("Tools", "Click-to-segment &model...", tip="Choose the "
                               "segmentation model (licence, size), download or install it")
        self.boxes_to_masks = a("Tools", "Boxes to mas&ks...", tip="Every box becomes a mask "
                                "made by the click-to-segment model (marked for review)")
        self.revert_boxes_to_masks = a("Tools", "Revert boxes to masks")
        self.classes = []
        for n in range(1, 10):
            act = a("Class", f"Draw class {n}", str(n),
                    f"Draw the next shapes with the class of hotkey {n}; the selection "
                    "keeps its class")
            act.setData(n)
            self.classes.append(act)
        self.selection_classes = []
        for n in range(1, 10):
            act = a("Class", f"Give selection class {n}", f"Alt+{n}",
                    f"Change the selected objects to the class of hotkey {n} (undoable)")
            act.setData(n)
            self.selection_classes.append(act)
        # Image
        self.previous_image = a("Image", "&Previous image", "A")
        self.next_image = a("Image", "&Next image", "D")
        self.next_unlabelled = a("Image", "Next &unlabelled image", "Shift+D")
        self.mark_done = a("Image", "Mark &done and go on", ["Ctrl+Return", "Ctrl+Enter"],
                           "Mark this image as done and show the next unlabelled one")
        self.mark_review = a("Image", "Mark as needs &review", "Ctrl+R")
        self.mark_in_progress = a("Image", "Mark as in pro&gress")
        self.splits: dict[str, QAction] = {}
        for split, text in SPLITS:
            act = a("Split", f"Put in {text}" if split != "none" else "Remove from split")
            act.setData(split)
            self.splits[split] = act
        self.random_split = a("Image", "&Random split...")
        self.relink_file = a("Image", "Re&link missing file...", tip="Point the project at "
                             "the file of this image where it is now")
        self.relink_folder = a("Image", "Relink missing images from a &folder...", tip="Find "
                               "every missing image by its name in a folder")
        self.reread_changed = a("Image", "Re-read c&hanged images", tip="Record the new size "
                                "and content of image files changed on disk since import")
        # Help
        self.cheat_sheet = a("Help", "&Keyboard shortcuts", "F1")
        self.about = a("Help", "&About Vision Studio")
        self.undo: QAction | None = None
        self.redo: QAction | None = None
        for act, short in ((self.tools["select"], "Select"), (self.tools["wand"], "Wand"),
                           (self.previous_image, "Prev"), (self.next_image, "Next"),
                           (self.next_unlabelled, "Next new"), (self.mark_done, "Done"),
                           (self.fit, "Fit"), (self.show_objects, "Objects")):
            act.setIconText(short)  # toolbar label; menus keep the full text
        self.apply_icons()

    def icon_names(self) -> dict[str, QAction]:
        """Icon name -> action, for every action that has an icon."""
        named = {name: act for name, act in self.tools.items()}
        named.update(prev=self.previous_image, next=self.next_image,
                     next_new=self.next_unlabelled, done=self.mark_done, fit=self.fit,
                     objects=self.show_objects, new=self.new_project, open=self.open_project,
                     sample=self.open_sample, delete=self.delete, copy=self.copy,
                     paste=self.paste, duplicate=self.duplicate, zoom_100=self.zoom_100,
                     add_images=self.add_images)
        named["import"], named["export"] = self.import_dataset, self.export_dataset
        return named

    def apply_icons(self) -> None:
        """(Re)draw every action's icon in the current palette (after a theme change too)."""
        for name, act in self.icon_names().items():
            act.setIcon(icon(name))
        for act, name in ((self.undo, "undo"), (self.redo, "redo")):
            if act is not None:
                act.setIcon(icon(name))

    def _action(self, group: str, text: str, shortcut=None, tip: str = "",
                checkable: bool = False, checked: bool = False) -> QAction:
        act = QAction(text, self.window)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([s if isinstance(s, QKeySequence) else QKeySequence(s)
                              for s in shortcuts])
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        if checkable:
            act.setCheckable(True)
            act.setChecked(checked)
        self.window.addAction(act)  # shortcuts work even for actions not in a menu
        self.groups.setdefault(group, []).append(act)
        return act

    def set_undo_group(self, group: QUndoGroup | None) -> tuple[QAction, QAction]:
        """Make Undo/Redo actions of a document's undo group (replacing older ones)."""
        for old in (self.undo, self.redo):
            if old is not None:
                self.window.removeAction(old)
                old.deleteLater()
        if group is None:
            self.undo, self.redo = QAction("&Undo", self.window), QAction("&Redo", self.window)
            self.undo.setEnabled(False)
            self.redo.setEnabled(False)
        else:
            self.undo = group.createUndoAction(self.window, "&Undo")
            self.redo = group.createRedoAction(self.window, "&Redo")
        self.undo.setIcon(icon("undo"))
        self.redo.setIcon(icon("redo"))
        self.undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.window.addAction(self.undo)
        self.window.addAction(self.redo)
        return self.undo, self.redo

    def fill_edit_menu(self, menu: QMenu) -> None:
        """(Re)fill the Edit menu: the current document's Undo/Redo, then the edits."""
        menu.clear()
        menu.addActions([self.undo, self.redo])
        menu.addSeparator()
        menu.addActions(self.groups["Edit"])
        menu.addMenu("Change &class of selection").addActions(self.selection_classes)

    def shortcut_rows(self, canvas_help: list[tuple[str, str]] = ()) -> list[tuple[str, str, str]]:
        """(keys, what, where) for every bound shortcut plus the canvas's own keys."""
        rows = []
        extra = [("Edit", self.undo), ("Edit", self.redo)] if self.undo is not None else []
        listed = [(g, act) for g, acts in self.groups.items() for act in acts] + extra
        for group, act in listed:
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                             for s in act.shortcuts())
            if keys:
                text = act.text().replace("&", "").rstrip(".")
                if act in (self.undo, self.redo):
                    text = "Undo" if act is self.undo else "Redo"
                rows.append((keys, text, group))
        rows += [(keys, text, "Canvas") for keys, text in canvas_help]
        return rows


def build_menus(window: QMainWindow, a: Actions, docks) -> tuple[QMenu, QMenu]:
    """Fill the menu bar; returns the Edit menu (undo/redo change per document) and the
    Open recent menu (filled when shown)."""
    bar = window.menuBar()
    menus = {name: bar.addMenu(f"&{name}") for name in
             ("File", "Edit", "View", "Tools", "Image", "Help")}
    recent = None
    for act in a.groups["File"]:
        if act is a.import_dataset:
            recent = menus["File"].addMenu("Open &recent")
            menus["File"].addSeparator()
        if act in (a.close_project, a.quit):
            menus["File"].addSeparator()
        menus["File"].addAction(act)
    menus["View"].addActions(a.groups["View"])
    menus["View"].addSeparator()
    panels = menus["View"].addMenu("&Panels")
    for dock in docks:
        if isinstance(dock, QDockWidget):
            panels.addAction(dock.toggleViewAction())
    menus["Tools"].addActions(list(a.tools.values()))
    menus["Tools"].addSeparator()
    menus["Tools"].addActions([a.instance_mode, a.preserve_labels, a.to_mask, a.to_polygon])
    menus["Tools"].addActions([a.segment_model, a.boxes_to_masks, a.revert_boxes_to_masks])
    menus["Tools"].addMenu("Drawing &class").addActions(a.classes)
    for act in a.groups["Image"]:
        menus["Image"].addAction(act)
        if act is a.mark_in_progress:
            menus["Image"].addMenu("&Split").addActions(list(a.splits.values()))
    menus["Help"].addActions(a.groups["Help"])
    return menus["Edit"], recent


def build_toolbars(window: QMainWindow, a: Actions) -> QSlider:
    """Tools, image navigation and view toolbars; returns the opacity slider."""
    style = Qt.ToolButtonStyle.ToolButtonTextUnderIcon  # icon plus a short word
    window.setToolButtonStyle(style)
    window.setIconSize(QSize(22, 22))
    tools = window.addToolBar("Tools")
    tools.setObjectName("toolbar_tools")
    tools.addActions(list(a.tools.values()))
    nav = window.addToolBar("Image")
    nav.setObjectName("toolbar_image")
    nav.addActions([a.previous_image, a.next_image, a.next_unlabelled, a.mark_done])
    view = window.addToolBar("View")
    view.setObjectName("toolbar_view")
    view.addActions([a.fit, a.show_objects])
    view.addWidget(QLabel(" Opacity "))
    slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=45,
                     toolTip="Fill opacity of the objects")
    slider.setMaximumWidth(140)
    view.addWidget(slider)
    return slider
