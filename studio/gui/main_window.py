"""The main window: a thin assembly. It holds the menus, the workspace bar, the status bar
and the open project; the workspaces (Label: label_workspace.LabelWorkspace; Train;
Inspect) do the work. Opening, creating or closing a project hands its LabelDocument to
every workspace through one hook, `set_document` (see workspaces.py), and each rebuilds
its views from the store. Long project work (import, export, adding files, building the
sample) runs in a worker."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QWidget

from studio.core.errors import StudioError
from studio.core.formats import export_dataset, import_dataset
from studio.core.project import Project
from studio.core.tiles import prebuild_pyramids
from studio.gui import dialogs
from studio.gui.actions import Actions, build_menus
from studio.gui.canvas import SHORTCUT_HELP
from studio.gui.document import LabelDocument
from studio.gui.errors import show_error
from studio.gui.help_menu import install_help_menu
from studio.gui.icons import app_icon
from studio.gui.label_workspace import READOUTS, LabelWorkspace
from studio.gui.panels.images_model import add_images_job
from studio.gui.prefetch import Prefetcher
from studio.gui.settings import Settings
from studio.gui.settings_dialog import install_settings
from studio.gui.theme import ThemeMenu
from studio.gui.train.workspace import TrainWorkspace
from studio.gui.workers import WorkerPool, run_with_progress
from studio.gui.workspaces import LazyWorkspace, WorkspaceFrame

TITLE_BAR = 32  # px a window manager's frame adds above the window (about)


class MainWindow(QMainWindow):
    """Vision Studio's window."""

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Vision Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else Settings()
        self.project: Project | None = None
        self.workers = WorkerPool(2, self)  # imports, exports, adding files
        self.thumb_workers = WorkerPool(2, self)  # thumbnails of the image list
        self.prefetcher = Prefetcher(parent=self)  # neighbours of the current image
        self.actions = Actions(self)
        self.label = LabelWorkspace(self.actions, self.thumb_workers, self.prefetcher)
        self.workspaces = WorkspaceFrame(self)
        self.workspaces.add_workspace("label", "Label", self.label, "Ctrl+Alt+1",
                                      "Label images: the canvas and its panels")
        self.train = TrainWorkspace()
        self.workspaces.add_workspace("train", "Train", self.train, "Ctrl+Alt+2",
                                      "Train a model on the labels, watch it learn, compare runs")
        self.inspect = LazyWorkspace(_inspect_workspace)
        self.workspaces.add_workspace(
            "inspect", "Inspect", self.inspect, "Ctrl+Alt+3",
            "Inspect a run's predictions, clean them with post-processing, accept them as labels")
        self.setCentralWidget(self.workspaces)
        self._build_menus()
        self.addToolBar(self.workspaces.bar)
        self._build_status_bar()
        self._connect()
        install_help_menu(self)  # shortcuts, About with versions, Report a problem
        install_settings(self)  # File > Settings; the stored preferences applied
        self.resize(default_size(self))
        self.settings.restore_window(self, self.label.editor)
        self._set_document(None)

    # --- the Label workspace's parts (read by relink_ui, tests and benchmarks) -------------------
    @property
    def doc(self) -> LabelDocument | None:
        return self.label.doc

    @property
    def canvas(self):
        return self.label.canvas

    @property
    def images_panel(self):
        return self.label.images_panel

    @property
    def classes_panel(self):
        return self.label.classes_panel

    @property
    def objects_panel(self):
        return self.label.objects_panel

    @property
    def tags_panel(self):
        return self.label.tags_panel

    @property
    def docks(self):
        return self.label.docks

    @property
    def welcome(self):
        return self.label.welcome

    # --- construction -----------------------------------------------------------------------
    def _build_menus(self) -> None:
        self.edit_menu, self.recent_menu = build_menus(self, self.actions,
                                                       self.label.docks.values())
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        view_menu = next(a.menu() for a in self.menuBar().actions() if a.text() == "&View")
        self.theme = ThemeMenu(self, view_menu, self.settings,
                               lambda _scheme: self.actions.apply_icons())
        self.actions.apply_icons()  # drawn in the theme's text colour

    def _build_status_bar(self) -> None:
        self.status_labels = {k: QLabel() for k in READOUTS}
        for label in self.status_labels.values():
            label.setMinimumWidth(90)
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        a = self.actions
        for act, slot in (
            (a.new_project, lambda: self.new_project()), (a.open_project, self.choose_project),
            (a.open_sample, self.open_sample), (a.import_dataset, self.import_dataset),
            (a.export_dataset, self.export_dataset), (a.add_images, self.choose_images),
            (a.close_project, self.close_project), (a.quit, self.close),
            (a.cheat_sheet, self.show_cheat_sheet),
        ):
            act.triggered.connect(slot)
        self.label.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.label.readout.connect(lambda key, text: self.status_labels[key].setText(text))
        self.label.titleChanged.connect(self._update_title)
        welcome = self.label.welcome
        welcome.newRequested.connect(self.new_project)
        welcome.openRequested.connect(self.choose_project)
        welcome.sampleRequested.connect(self.open_sample)
        welcome.importRequested.connect(self.new_project_from_import)
        welcome.folderRequested.connect(self.new_project_from_folder)
        welcome.recentRequested.connect(self.open_project)
        self.workspaces.currentChanged.connect(lambda _key: self._update_readouts())
        self.train.projectDataChanged.connect(self.images_panel.refresh)

    def _update_readouts(self) -> None:
        """Zoom, cursor, image size and position describe the Label canvas: shown only there."""
        on = self.project is not None and self.workspaces.current_key == "label"
        for label in self.status_labels.values():
            label.setVisible(on)

    def _set_document(self, doc: LabelDocument | None) -> None:
        """The one way a project reaches the views: every workspace gets the document
        (or None) and resets from the store."""
        self.label.welcome.set_recent(self.settings.recent_projects())
        self.workspaces.set_document(doc)
        self.actions.fill_edit_menu(self.edit_menu)
        for act in (self.actions.import_dataset, self.actions.export_dataset,
                    self.actions.add_images, self.actions.close_project):
            act.setEnabled(doc is not None)
        self._update_readouts()
        self._update_title()

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
        return self._install_project(project)

    def _install_project(self, project: Project) -> bool:
        if not self.close_project():  # an import or export still runs on the open one
            project.close()
            return False
        self.project = project
        self._set_document(LabelDocument(project, self))
        self.settings.set_last_project(project.root)
        self.statusBar().showMessage(f"Opened {project.root}", 5000)
        return True

    def close_project(self) -> bool:
        if self.project is None:
            return True
        if not self.workspaces.confirm_close():  # e.g. a run trains and the person keeps it
            return False
        if self.workers.busy:
            show_error(self, StudioError("Wait for the running import or export to finish."))
            return False
        self.thumb_workers.clear_pending()
        project, self.project = self.project, None
        self._set_document(None)
        project.close()
        self.prefetcher.clear()
        return True

    def new_project(self, start_dir: str = "") -> bool:
        """Ask for a folder and a name, create the project there and open it."""
        dialog = dialogs.NewProjectDialog(self, start_dir)
        if dialog.exec() != dialogs.QDialog.DialogCode.Accepted:
            return False
        folder, name = dialog.values()
        try:
            project = Project.create(folder, name)
        except StudioError as exc:
            show_error(self, exc, "Cannot create the project")
            return False
        return self._install_project(project)

    def new_project_from_folder(self) -> None:
        """Start page: a new project holding the images of a folder (its sub-folders too)."""
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to label")
        if not folder:
            return
        source = Path(folder)
        if self.new_project(str(source.parent / f"{source.name} project")):
            self.add_paths([source])

    def new_project_from_import(self) -> None:
        """Start page: a new project filled by importing a dataset (COCO, VOC, masks, ...)."""
        if self.new_project():
            self.import_dataset()

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
        if self.project is None:
            return
        dialog = dialogs.ImportDialog(self, workers=self.workers)
        if dialog.exec() != dialogs.QDialog.DialogCode.Accepted:
            return
        fmt, source, images, options = dialog.values()
        self.run_job(f"Importing {fmt}...", partial(import_dataset, **options), self.project,
                     fmt, source, images, on_result=self._on_imported)

    def _on_imported(self, report) -> None:
        if self.doc is not None:  # importing changed the project: every view resets
            self.doc.notify_classes_changed()
            self._set_document(self.doc)
        self.prebuild_pyramids(report.added_ids)  # huge PNG/TIFF: their first view paints fast
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
                self.label.go(1)
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

    # --- dialogs ---------------------------------------------------------------------------------
    def show_cheat_sheet(self) -> dialogs.CheatSheetDialog:
        dialog = dialogs.CheatSheetDialog(self.actions.shortcut_rows(SHORTCUT_HELP), self)
        dialog.show()
        return dialog

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.workspaces.confirm_close():
            event.ignore()
            return
        self.workspaces.shutdown()
        self.workers.shutdown()
        self.thumb_workers.shutdown()
        self.prefetcher.shutdown()
        self.settings.save_window(self, self.label.editor)
        if self.project is not None:
            self.settings.set_last_project(self.project.root)
            project, self.project = self.project, None
            self._set_document(None)
            project.close()
        super().closeEvent(event)


def default_size(window: QWidget) -> QSize:
    """1400 x 900, or less on a smaller screen (a 1366 x 768 laptop: the whole window on
    it, room left for the title bar)."""
    screen = window.screen()
    if screen is None:
        return QSize(1400, 900)
    available = screen.availableGeometry()
    return QSize(min(1400, available.width()), min(900, available.height() - TITLE_BAR))


def _inspect_workspace() -> QWidget:
    from studio.gui.inspect.workspace import InspectWorkspace  # loads the engine

    return InspectWorkspace()
