"""The main window: a thin assembly of workspaces (Label: the canvas, the dock panels,
menus and toolbars; Train; further ones added through `self.workspaces`). Panels and
canvas bind to one LabelDocument per open project; long work (import, export, adding
files, building the sample) runs in a worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.core.editing import mark_edited
from studio.core.errors import StudioError
from studio.core.formats import export_dataset, import_dataset
from studio.core.project import Project
from studio.core.tiles import prebuild_pyramids
from studio.gui import dialogs, relink_ui
from studio.gui.actions import Actions, build_menus, build_toolbars
from studio.gui.canvas import SHORTCUT_HELP, CanvasView
from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.help_menu import install_help_menu
from studio.gui.icons import app_icon
from studio.gui.panels.classes import ClassesPanel
from studio.gui.panels.images import ImagesPanel
from studio.gui.panels.images_model import add_images_job
from studio.gui.panels.objects import ObjectsPanel
from studio.gui.panels.tags import TagsPanel
from studio.gui.panels.welcome import WelcomePage
from studio.gui.prefetch import Prefetcher
from studio.gui.settings import Settings
from studio.gui.theme import ThemeMenu
from studio.gui.train.workspace import TrainWorkspace
from studio.gui.workers import WorkerPool, run_with_progress
from studio.gui.workspaces import LazyWorkspace, WorkspaceFrame

AREA = Qt.DockWidgetArea


class MainWindow(QMainWindow):
    """Vision Studio's labelling window."""

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Vision Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else Settings()
        self.project: Project | None = None
        self.doc: LabelDocument | None = None
        self.canvas: CanvasView | None = None
        self.workers = WorkerPool(2, self)  # imports, exports, adding files
        self.thumb_workers = WorkerPool(2, self)  # thumbnails of the image list
        self.prefetcher = Prefetcher(parent=self)  # neighbours of the current image
        self.actions = Actions(self)
        self.images_panel = ImagesPanel(workers=self.thumb_workers)
        self.classes_panel = ClassesPanel()
        self.objects_panel = ObjectsPanel()
        self.tags_panel = TagsPanel()
        self.docks = {
            "images": self._dock("Images", self.images_panel, AREA.LeftDockWidgetArea),
            "classes": self._dock("Classes", self.classes_panel, AREA.RightDockWidgetArea),
            "objects": self._dock("Objects", self.objects_panel, AREA.RightDockWidgetArea),
            "tags": self._dock("Image tags", self.tags_panel, AREA.RightDockWidgetArea),
        }
        self.welcome = WelcomePage()
        self.canvas_holder = QWidget()
        QVBoxLayout(self.canvas_holder).setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas_holder)
        self.workspaces = WorkspaceFrame(self)
        self.workspaces.add_workspace("label", "Label", self.stack, "Ctrl+Alt+1",
                                      "Label images: the canvas and its panels")
        self.train = TrainWorkspace()
        self.workspaces.add_workspace("train", "Train", self.train, "Ctrl+Alt+2",
                                      "Train a model on the labels, watch it learn, compare runs")
        self.inspect = LazyWorkspace(_inspect_workspace)
        self.workspaces.add_workspace(
            "inspect", "Inspect", self.inspect, "Ctrl+Alt+3",
            "Inspect a run's predictions, clean them with post-processing, accept them as labels")
        self.setCentralWidget(self.workspaces)
        self._hidden_by_workspace: list[QWidget] = []
        self._build_menus()
        self._build_toolbars()
        self._build_status_bar()
        self._connect()
        install_help_menu(self)  # shortcuts, About with versions, Report a problem
        self.resize(1400, 900)
        self.settings.restore_window(self)
        self._set_document(None)

    # --- construction -----------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        self.edit_menu, self.recent_menu = build_menus(self, self.actions, self.docks.values())
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        view_menu = next(a.menu() for a in self.menuBar().actions() if a.text() == "&View")
        self.theme = ThemeMenu(self, view_menu, self.settings,
                               lambda _scheme: self.actions.apply_icons())
        self.actions.apply_icons()  # drawn in the theme's text colour

    def _build_toolbars(self) -> None:
        self.addToolBar(self.workspaces.bar)
        self.opacity_slider = build_toolbars(self, self.actions)

    def _build_status_bar(self) -> None:
        self.status_labels = {k: QLabel() for k in ("cursor", "size", "zoom", "index")}
        for label in self.status_labels.values():
            label.setMinimumWidth(90)
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        a, on_doc, on_canvas = self.actions, self._doc_slot, self._canvas_slot
        for act, slot in (
            (a.new_project, self.new_project), (a.open_project, self.choose_project),
            (a.open_sample, self.open_sample), (a.import_dataset, self.import_dataset),
            (a.export_dataset, self.export_dataset), (a.add_images, self.choose_images),
            (a.close_project, self.close_project), (a.quit, self.close),
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
            (a.relink_file, lambda: relink_ui.ask_relink_file(self)),
            (a.relink_folder, lambda: relink_ui.ask_relink_folder(self)),
            (a.cheat_sheet, self.show_cheat_sheet),
            (a.about, self.show_about),
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
        self.images_panel.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.welcome.newRequested.connect(self.new_project)
        self.welcome.openRequested.connect(self.choose_project)
        self.welcome.sampleRequested.connect(self.open_sample)
        self.welcome.recentRequested.connect(self.open_project)
        self.workspaces.currentChanged.connect(self._on_workspace_changed)
        self.train.projectDataChanged.connect(self.images_panel.refresh)

    def _on_workspace_changed(self, key: str) -> None:
        """Docks, toolbars and shortcuts of labelling belong to the Label workspace."""
        if key == "label":
            for widget in self._hidden_by_workspace:
                widget.show()
            self._hidden_by_workspace = []
        elif not self._hidden_by_workspace:
            chrome = [*self.docks.values(), *(bar for bar in self.findChildren(QToolBar)
                                              if bar is not self.workspaces.bar)]
            self._hidden_by_workspace = [w for w in chrome if w.isVisible()]
            for widget in self._hidden_by_workspace:
                widget.hide()
        self._update_label_actions()

    def _update_label_actions(self) -> None:
        on = self.doc is not None and self.workspaces.current_key == "label"
        for group in ("Edit", "View", "Tools", "Class", "Image", "Split"):
            for act in self.actions.groups[group]:
                act.setEnabled(on)

    # --- document and canvas ----------------------------------------------------------------
    def _set_document(self, doc: LabelDocument | None) -> None:
        if self.canvas is not None:
            self.canvas.shutdown()
            self.canvas.setParent(None)
            self.canvas.deleteLater()
            self.canvas = None
        self.doc = doc
        if doc is not None:
            self.canvas = CanvasView(doc, prefetcher=self.prefetcher)
            self.canvas.set_opacity(self.opacity_slider.value() / 100.0)
            self.canvas.set_labels(self.actions.show_labels.isChecked(),
                                   self.actions.show_ids.isChecked())
            self.canvas_holder.layout().addWidget(self.canvas)
            self.canvas.zoomChanged.connect(
                lambda z: self.status_labels["zoom"].setText(f"{z:.0f} %"))
            self.canvas.cursorMoved.connect(
                lambda x, y: self.status_labels["cursor"].setText(f"x {x}, y {y}"))
            self.canvas.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
            self.canvas.errorOccurred.connect(lambda text: show_error(self, StudioError(text)))
            self.canvas.toolChanged.connect(lambda name: self.actions.tools[name].setChecked(True))
            self.canvas.noticeAction.connect(lambda name: relink_ui.on_notice_action(self, name))
            doc.errorOccurred.connect(lambda text: show_error(self, StudioError(text)))
            doc.imageChanged.connect(self._on_image_changed)
            doc.annotationsChanged.connect(self._on_annotations_changed)
            self.actions.tools["select"].setChecked(True)
            self.actions.show_objects.setChecked(True)
        for panel in (self.images_panel, self.classes_panel, self.objects_panel, self.tags_panel):
            panel.set_document(doc)
        self.actions.set_undo_group(doc.undo_group if doc else None)
        self.actions.fill_edit_menu(self.edit_menu)
        self._update_label_actions()
        for act in (self.actions.import_dataset, self.actions.export_dataset,
                    self.actions.add_images, self.actions.close_project):
            act.setEnabled(doc is not None)
        for dock in self.docks.values():
            dock.setEnabled(doc is not None)
        self.welcome.set_recent(self.settings.recent_projects())
        self.stack.setCurrentIndex(1 if doc is not None else 0)
        self.workspaces.set_document(doc)
        self._update_title()

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
        self._update_title()
        if image_id < 0 or self.project is None:
            self.status_labels["size"].setText("")
            return
        rec = self.project.image(image_id)
        self.status_labels["size"].setText(f"{rec.width} x {rec.height}")
        ids = [self.images_panel.neighbour(d) for d in (1, -1)]
        self.prefetcher.prefetch([self.project.image(i).abs_path for i in ids if i is not None])

    def _on_annotations_changed(self, image_id: int) -> None:
        if self.project is not None and mark_edited(self.project, image_id):
            self.images_panel.refresh_image(image_id)

    def _on_count_changed(self, row: int, total: int) -> None:
        self.status_labels["index"].setText(f"{row + 1:,} / {total:,}" if row >= 0
                                            else f"- / {total:,}")

    def _update_title(self) -> None:
        parts = ["Vision Studio"]
        if self.project is not None:
            parts.append(self.project.name)
            if self.doc is not None and self.doc.image_id is not None:
                parts.append(self.project.image(self.doc.image_id).name)
        self.setWindowTitle(" - ".join(parts))

    # --- projects -------------------------------------------------------------------------------
    def open_project(self, folder: str | Path) -> bool:
        """Open a project folder; errors (locked, missing, too new) are shown, not raised."""
        try:
            project = Project.open(folder)
        except StudioError as exc:
            show_error(self, exc, "Cannot open the project")
            return False
        self._install_project(project)
        return True

    def _install_project(self, project: Project) -> None:
        if not self.close_project():  # an import or export still runs on the open one
            project.close()
            return
        self.project = project
        self._set_document(LabelDocument(project, self))
        self.settings.set_last_project(project.root)
        first = self.images_panel.first_unlabelled_after(None) or self.images_panel.neighbour(1)
        if first is not None:
            self.doc.set_image(first)
        self.statusBar().showMessage(f"Opened {project.root}", 5000)

    def close_project(self) -> bool:
        if self.project is None:
            return True
        if not self.workspaces.confirm_close():  # e.g. a run trains and the person keeps it
            return False
        if self.workers.busy:
            show_error(self, StudioError("Wait for the running import or export to finish."))
            return False
        self.thumb_workers.clear_pending()
        self._set_document(None)
        self.project.close()
        self.project = None
        self.prefetcher.clear()
        return True

    def new_project(self) -> None:
        dialog = dialogs.NewProjectDialog(self)
        if dialog.exec() != dialogs.QDialog.DialogCode.Accepted:
            return
        folder, name = dialog.values()
        try:
            project = Project.create(folder, name)
        except StudioError as exc:
            show_error(self, exc, "Cannot create the project")
            return
        self._install_project(project)

    def choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project")
        if folder:
            self.open_project(folder)

    def open_sample(self) -> None:
        from studio.sample import default_sample_location, ensure_sample_project

        self.run_job("Preparing the sample project...", ensure_sample_project,
                     default_sample_location(), on_result=self.open_project)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_projects():
            self.recent_menu.addAction(path, lambda p=path: self.open_project(p))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # --- long jobs ---------------------------------------------------------------------------------
    def run_job(self, title: str, fn, *args, on_result=None, cancellable: bool = False):
        """Run fn in a worker behind a modal progress dialog; errors are shown."""
        return run_with_progress(self, self.workers, title, fn, *args, on_result=on_result,
                                 cancellable=cancellable)

    def import_dataset(self) -> None:
        dialog = dialogs.ImportDialog(self)
        if self.project is None or dialog.exec() != dialogs.QDialog.DialogCode.Accepted:
            return
        fmt, source, images = dialog.values()
        self.run_job(f"Importing {fmt}...", import_dataset, self.project, fmt, source, images,
                     on_result=self._on_imported)

    def _on_imported(self, report) -> None:
        self.images_panel.refresh()
        self.prebuild_pyramids(report.added_ids)  # huge PNG/TIFF: their first view paints fast
        if self.doc is not None:
            self.doc.notify_classes_changed()
            if self.doc.image_id is None:
                self.go(1)
        dialogs.show_import_report(self, report)

    def export_dataset(self) -> None:
        dialog = dialogs.ExportDialog(self)
        if self.project is None or dialog.exec() != dialogs.QDialog.DialogCode.Accepted:
            return
        fmt, out_dir, split = dialog.values()
        self.run_job(f"Exporting {fmt}...", export_dataset, self.project, fmt, out_dir, split,
                     on_result=lambda report: dialogs.show_export_report(self, report))

    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", "", "Images (*.png *.jpg "
                                                "*.jpeg *.tif *.tiff *.bmp *.webp);;All (*)")
        if files:
            self.add_paths([Path(f) for f in files])

    def add_paths(self, paths: list[Path]):
        """Add image files and folders to the project (one transaction, in a worker)."""
        if self.project is None:
            return None

        def done(report) -> None:
            self.images_panel.refresh()
            self.prebuild_pyramids(report.added_ids)
            if self.doc is not None and self.doc.image_id is None:
                self.go(1)
            self.statusBar().showMessage(report.summary(), 8000)
            if report.skipped:
                dialogs.show_report(self, "Images added", report.summary(), report.details())

        return self.run_job("Adding images...", add_images_job, self.project, paths,
                            on_result=done, cancellable=True)

    def prebuild_pyramids(self, image_ids: list[int]) -> None:
        """Tile huge new images in the background so their first view paints at once."""
        if self.project is None or not image_ids:
            return
        self.thumb_workers.submit(
            lambda token, project, ids: prebuild_pyramids(project, ids, stop=lambda: token.cancelled),
            self.project, list(image_ids), with_token=True, key="pyramids",
            on_error=lambda exc: self.statusBar().showMessage(f"Tiling failed: {exc}", 8000))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.project is not None and event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and self.project is not None:
            event.acceptProposedAction()
            self.add_paths(paths)

    # --- images and classes ---------------------------------------------------------------------
    def go(self, delta: int) -> None:
        if not self.images_panel.go(delta):
            self.statusBar().showMessage("No more images in this direction.", 3000)

    def use_class_hotkey(self, digit: int) -> None:
        """Keys 1-9: the class of the next shape drawn; the selection keeps its class."""
        if self.doc is None:
            return
        if not self.classes_panel.use_hotkey(digit):
            self.statusBar().showMessage(f"No class has the key {digit}.", 3000)
            return
        name = self.project.class_record(self.doc.active_class_id).name
        hint = (f"; the selection keeps its class (Alt+{digit} gives it {name})"
                if self.doc.selected_ids else "")
        self.statusBar().showMessage(f"Drawing class: {name}{hint}", 5000)

    def give_selection_class(self, digit: int) -> None:
        """Alt+1-9: change the selected objects' class (undoable)."""
        if self.doc is None:
            return
        n = self.classes_panel.give_selection_hotkey_class(digit)
        if n is None:
            self.statusBar().showMessage(f"No class has the key {digit}.", 3000)
        elif not self.doc.selected_ids:
            self.statusBar().showMessage("Select objects first to change their class.", 3000)
        else:
            name = self.classes_panel.class_for_hotkey(digit).name
            self.statusBar().showMessage(f"{n} object(s) changed to {name} (Ctrl+Z undoes)", 5000)

    # --- dialogs ---------------------------------------------------------------------------------
    def show_brightness_contrast(self) -> None:
        dialog = dialogs.BrightnessContrastDialog(self)
        dialog.changed.connect(
            lambda b, c: self._canvas_slot(CanvasView.set_brightness_contrast, b, c)())
        dialog.show()

    def show_cheat_sheet(self) -> dialogs.CheatSheetDialog:
        dialog = dialogs.CheatSheetDialog(self.actions.shortcut_rows(SHORTCUT_HELP), self)
        dialog.show()
        return dialog

    def show_about(self) -> None:
        QMessageBox.about(self, "About Vision Studio", "<b>Vision Studio</b><p>Label images, "
                          "train a model by clicking, inspect and clean segmentations.</p>")

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.workspaces.confirm_close():
            event.ignore()
            return
        self.workspaces.shutdown()
        self.workers.shutdown()
        self.thumb_workers.shutdown()
        self.prefetcher.shutdown()
        self.workspaces.switch_to("label")  # save the labelling layout with its docks shown
        self.settings.save_window(self)
        if self.project is not None:
            self.settings.set_last_project(self.project.root)
            self._set_document(None)
            self.project.close()
            self.project = None
        super().closeEvent(event)


def _inspect_workspace() -> QWidget:
    from studio.gui.inspect.workspace import InspectWorkspace  # loads the engine

    return InspectWorkspace()
