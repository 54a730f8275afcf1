"""The Label workspace: the start page while no project is open, else the labelling
editor (the canvas with the Images, Classes, Objects and Image tags panels and the tool
bars around it).

The editor is a QMainWindow nested in the workspace, so its docks and tool bars belong to
Label: they leave with it when another workspace is shown and never widen the window
there. The main window hands it the open project's document through the workspace hook
`set_document` (see workspaces.py), which rebuilds every view from the store.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.editing import mark_edited
from studio.core.errors import StudioError
from studio.gui import dialogs, relink_ui
from studio.gui.actions import Actions, build_toolbars
from studio.gui.canvas import CanvasView
from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.panels.classes import ClassesPanel
from studio.gui.panels.images import ImagesPanel
from studio.gui.panels.objects import ObjectsPanel
from studio.gui.panels.tags import TagsPanel
from studio.gui.panels.welcome import WelcomePage
from studio.gui.prefetch import Prefetcher
from studio.gui.segment_actions import SegmentActions
from studio.gui.workers import WorkerPool

AREA = Qt.DockWidgetArea
READOUTS = ("cursor", "size", "zoom", "index")  # the status bar's labelling readouts


class LabelWorkspace(QStackedWidget):
    """Start page (no project) or labelling editor (a project is open)."""

    message = Signal(str, int)  # text for the status bar, milliseconds
    readout = Signal(str, str)  # one of READOUTS, its text ("" clears it)
    titleChanged = Signal()  # the shown image changed: the window title names it

    def __init__(self, actions: Actions, thumb_workers: WorkerPool, prefetcher: Prefetcher,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.actions = actions
        self.prefetcher = prefetcher
        self.doc: LabelDocument | None = None
        self.canvas: CanvasView | None = None
        self.active = True  # the workspace shown (its actions work only then)
        self.welcome = WelcomePage(workers=thumb_workers)
        self.editor = QMainWindow()
        self.editor.setWindowFlags(Qt.WindowType.Widget)
        self.editor.setObjectName("label_editor")
        self.images_panel = ImagesPanel(workers=thumb_workers)
        self.classes_panel = ClassesPanel()
        self.objects_panel = ObjectsPanel()
        self.tags_panel = TagsPanel()
        self.docks = {
            "images": self._dock("Images", self.images_panel, AREA.LeftDockWidgetArea),
            "classes": self._dock("Classes", self.classes_panel, AREA.RightDockWidgetArea),
            "objects": self._dock("Objects", self.objects_panel, AREA.RightDockWidgetArea),
            "tags": self._dock("Image tags", self.tags_panel, AREA.RightDockWidgetArea),
        }
        self.canvas_holder = QWidget()
        self.canvas_holder.setSizePolicy(QSizePolicy.Policy.Expanding,
                                         QSizePolicy.Policy.Expanding)
        QVBoxLayout(self.canvas_holder).setContentsMargins(0, 0, 0, 0)
        self.editor.setCentralWidget(self.canvas_holder)
        self.opacity_slider = build_toolbars(self.editor, actions)
        self.addWidget(self.welcome)
        self.addWidget(self.editor)
        self._connect()
        self.segment = SegmentActions(self)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.editor)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.editor.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a, on_doc, on_canvas = self.actions, self._doc_slot, self._canvas_slot
        for act, slot in (
            (a.copy, on_doc(LabelDocument.copy_selection)), (a.paste, on_doc(LabelDocument.paste)),
            (a.duplicate, on_doc(LabelDocument.duplicate_selection)),
            (a.delete, on_doc(LabelDocument.delete_selection)),
            (a.select_all, self.objects_panel.select_all), (a.fit, on_canvas(CanvasView.fit)),
            (a.zoom_100, on_canvas(CanvasView.zoom_100)),
            (a.window_level, self.show_brightness_contrast),
            (a.to_mask, on_canvas(CanvasView.convert_selection, "mask")),
            (a.to_polygon, on_canvas(CanvasView.convert_selection, "polygon")),
            (a.previous_image, lambda: self.go(-1)), (a.next_image, lambda: self.go(1)),
            (a.next_unlabelled, self.images_panel.go_next_unlabelled),
            (a.mark_done, self.images_panel.mark_done_and_next),
            (a.mark_review, lambda: self.images_panel.set_status("review")),
            (a.mark_in_progress, lambda: self.images_panel.set_status("in_progress")),
            (a.random_split, self.images_panel.random_split),
            (a.relink_file, lambda: relink_ui.ask_relink_file(self.window())),
            (a.relink_folder, lambda: relink_ui.ask_relink_folder(self.window())),
            (a.reread_changed, lambda: relink_ui.reread_changed_images(self.window())),
        ):
            act.triggered.connect(slot)
        a.show_objects.toggled.connect(lambda on: self.doc and self.doc.set_all_visible(on))
        for act in (a.show_labels, a.show_ids):
            act.toggled.connect(lambda _on: on_canvas(
                CanvasView.set_labels, a.show_labels.isChecked(), a.show_ids.isChecked())())
        a.tool_group.triggered.connect(
            lambda act: on_canvas(CanvasView.set_tool, act.data())())
        a.instance_mode.toggled.connect(lambda on: on_canvas(
            CanvasView.set_paint_mode, "instance" if on else "semantic")())
        a.preserve_labels.toggled.connect(
            lambda on: on_canvas(CanvasView.set_preserve_other_labels, on)())
        for n, act in enumerate(a.classes, start=1):
            act.triggered.connect(lambda _=False, n=n: self.use_class_hotkey(n))
        for n, act in enumerate(a.selection_classes, start=1):
            act.triggered.connect(lambda _=False, n=n: self.give_selection_class(n))
        for split, act in a.splits.items():
            act.triggered.connect(lambda _=False, s=split: self.images_panel.set_split(s))
        self.opacity_slider.valueChanged.connect(
            lambda v: on_canvas(CanvasView.set_opacity, v / 100.0)())
        self.images_panel.countChanged.connect(self._on_count_changed)
        self.images_panel.message.connect(lambda text: self.message.emit(text, 5000))

    # --- workspace hooks --------------------------------------------------------------------
    def set_document(self, doc: LabelDocument | None) -> None:
        """A project was opened, created or closed: every labelling view starts afresh
        from the store (no filter, selection or zoom of the previous project is kept)."""
        if self.canvas is not None:
            self.canvas.shutdown()
            self.canvas.setParent(None)
            self.canvas.deleteLater()
            self.canvas = None
        if self.doc is not None:  # the same document again (after an import) included
            for signal, slot in self._doc_links(self.doc):
                signal.disconnect(slot)
        self.doc = doc
        for key in READOUTS:
            self.readout.emit(key, "")
        if doc is not None:
            self.segment.load_settings()
            self._make_canvas(doc)
            self.segment.attach(self.canvas)
        for panel in (self.images_panel, self.classes_panel, self.objects_panel, self.tags_panel):
            panel.set_document(doc)
        self.actions.set_undo_group(doc.undo_group if doc else None)
        self.update_actions()
        for dock in self.docks.values():
            dock.setEnabled(doc is not None)
        self.setCurrentWidget(self.editor if doc is not None else self.welcome)
        if doc is not None and doc.image_id is None:
            first = (self.images_panel.first_unlabelled_after(None)
                     or self.images_panel.neighbour(1))
            if first is not None:
                doc.set_image(first)
        elif doc is not None:
            doc.reload_image()  # the views that just reset follow the image shown
        self.focus_canvas()
        self.titleChanged.emit()

    def focus_canvas(self) -> None:
        """Keys go to the canvas (A/D, tools), not to the first field of a panel: a "d"
        typed into the image search would hide every image."""
        if self.canvas is not None and self.active:
            self.canvas.setFocus()

    def _doc_links(self, doc: LabelDocument) -> tuple:
        return ((doc.errorOccurred, self._show_doc_error),
                (doc.imageChanged, self._on_image_changed),
                (doc.annotationsChanged, self._on_annotations_changed))

    def _show_doc_error(self, text: str) -> None:
        show_error(self, StudioError(text))

    def _make_canvas(self, doc: LabelDocument) -> None:
        self.canvas = canvas = CanvasView(doc, prefetcher=self.prefetcher)
        canvas.set_opacity(self.opacity_slider.value() / 100.0)
        canvas.set_labels(self.actions.show_labels.isChecked(), self.actions.show_ids.isChecked())
        self.canvas_holder.layout().addWidget(canvas)
        canvas.zoomChanged.connect(lambda z: self.readout.emit("zoom", f"{z:.0f} %"))
        canvas.cursorMoved.connect(lambda x, y: self.readout.emit("cursor", f"x {x}, y {y}"))
        canvas.message.connect(lambda text: self.message.emit(text, 5000))
        canvas.errorOccurred.connect(lambda text: show_error(self, StudioError(text)))
        canvas.toolChanged.connect(lambda name: self.actions.tools[name].setChecked(True))
        canvas.noticeAction.connect(lambda name: relink_ui.on_notice_action(self.window(), name))
        for signal, slot in self._doc_links(doc):
            signal.connect(slot)
        self.actions.tools["select"].setChecked(True)
        self.actions.show_objects.setChecked(True)

    def workspace_entered(self) -> None:
        self.active = True
        self.update_actions()
        self.focus_canvas()

    def workspace_left(self) -> None:
        self.active = False
        self.update_actions()

    def update_actions(self) -> None:
        """Labelling actions (and their shortcuts) work only in Label with a project."""
        on = self.doc is not None and self.active
        for group in ("Edit", "View", "Tools", "Class", "Image", "Split"):
            for act in self.actions.groups[group]:
                act.setEnabled(on)

    # --- slots on the current document or canvas -------------------------------------------
    def _doc_slot(self, method, *args):
        """A slot calling `method` (a LabelDocument function) on the current document,
        showing any error; nothing happens without a document."""
        return lambda *_signal_args: self._call_on(self.doc, method, *args)

    def _canvas_slot(self, method, *args):
        """Like _doc_slot, for a CanvasView function on the current canvas."""
        return lambda *_signal_args: self._call_on(self.canvas, method, *args)

    def _call_on(self, target, method, *args):
        if target is None:
            return None
        try:
            return method(target, *args)
        except StudioError as exc:
            show_error(self, exc)
            return None

    def _on_image_changed(self, image_id: int) -> None:
        self.titleChanged.emit()
        if image_id < 0 or self.doc is None:
            self.readout.emit("size", "")
            return
        project = self.doc.project
        rec = project.image(image_id)
        self.readout.emit("size", f"{rec.width} x {rec.height}")
        ids = [self.images_panel.neighbour(d) for d in (1, -1)]
        self.prefetcher.prefetch([project.image(i).abs_path for i in ids if i is not None])
        if self.canvas is not None:
            self.canvas.tool_named("segment").service.set_prefetch(ids[:1])

    def _on_annotations_changed(self, image_id: int) -> None:
        if self.doc is not None and mark_edited(self.doc.project, image_id):
            self.images_panel.refresh_image(image_id)

    def _on_count_changed(self, row: int, total: int) -> None:
        self.readout.emit("index", f"{row + 1:,} / {total:,}" if row >= 0 else f"- / {total:,}")

    # --- images and classes -----------------------------------------------------------------
    def go(self, delta: int) -> None:
        if not self.images_panel.go(delta):
            self.message.emit("No more images in this direction.", 3000)

    def use_class_hotkey(self, digit: int) -> None:
        """Keys 1-9: the class of the next shape drawn; the selection keeps its class."""
        if self.doc is None:
            return
        if not self.classes_panel.use_hotkey(digit):
            self.message.emit(f"No class has the key {digit}.", 3000)
            return
        name = self.doc.project.class_record(self.doc.active_class_id).name
        hint = (f"; the selection keeps its class (Alt+{digit} gives it {name})"
                if self.doc.selected_ids else "")
        self.message.emit(f"Drawing class: {name}{hint}", 5000)

    def give_selection_class(self, digit: int) -> None:
        """Alt+1-9: change the selected objects' class (undoable)."""
        if self.doc is None:
            return
        n = self.classes_panel.give_selection_hotkey_class(digit)
        if n is None:
            self.message.emit(f"No class has the key {digit}.", 3000)
        elif not self.doc.selected_ids:
            self.message.emit("Select objects first to change their class.", 3000)
        else:
            name = self.classes_panel.class_for_hotkey(digit).name
            self.message.emit(f"{n} object(s) changed to {name} (Ctrl+Z undoes)", 5000)

    def show_brightness_contrast(self) -> None:
        dialog = dialogs.BrightnessContrastDialog(self)
        dialog.changed.connect(
            lambda b, c: self._canvas_slot(CanvasView.set_brightness_contrast, b, c)())
        dialog.show()
