"""The start page shown while no project is open: recent projects (a thumbnail of each,
its name, image count and folder), the sample, a new project from a folder of images or
from an imported dataset, and what the workspaces do.

The recent projects are listed at once by their folder; what is in them is read on the
window's worker pool (studio.gui.panels.recent_projects) and filled in row by row. A
project that is gone or cannot be read stays a plain, greyed "not found" row.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QElapsedTimer, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.gui.panels.images_model import THUMB_SIZE
from studio.gui.panels.recent_projects import RecentProject, read_recent

RECENT_HEIGHT = 200  # px at most for the recent projects (then the list scrolls)
PathRole = Qt.ItemDataRole.UserRole + 1
WORKSPACES_TEXT = (
    "<p><b>Label</b> (Ctrl+Alt+1): draw boxes, polygons and masks, tag images.<br>"
    "<b>Train</b> (Ctrl+Alt+2): train a model by clicking, watch it learn.<br>"
    "<b>Inspect</b> (Ctrl+Alt+3): see a run's predictions, clean them<br>"
    "and accept them as labels.</p>")


class WelcomePage(QWidget):
    """Buttons that start the session; the window connects them to its actions."""

    newRequested = Signal()  # an empty project
    folderRequested = Signal()  # a new project holding a folder of images
    importRequested = Signal()  # a new project filled from a dataset (COCO, VOC, masks...)
    openRequested = Signal()
    sampleRequested = Signal()
    recentRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None, workers=None) -> None:
        super().__init__(parent)
        self.workers = workers  # a WorkerPool reading the recent projects (None: paths only)
        self._rows: dict[str, QListWidgetItem] = {}
        self._unread: list[str] = []  # listed, to be read when the page is shown
        self._last_open = QElapsedTimer()  # a double click must not open the project twice
        title = QLabel("<h1>Vision Studio</h1><p>Label images, train a model by clicking,<br>"
                       "inspect and clean its segmentations.</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.folder_button = QPushButton("New project from a folder of images...")
        self.import_button = QPushButton("New project from a dataset (COCO, VOC, YOLO, "
                                         "masks...)...")
        self.new_button = QPushButton("New empty project...")
        self.open_button = QPushButton("Open project...")
        self.sample_button = QPushButton("Open the sample project (cells, ready to train)")
        self.recent = QListWidget()
        self.recent.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.recent.setSpacing(2)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long folders keep their end
        self.recent.setToolTip("Click (or Enter) opens the project")
        self._blank = QPixmap(THUMB_SIZE, THUMB_SIZE)
        self._blank.fill(QColor(0, 0, 0, 0))  # keeps every row as high as a thumbnail
        self.recent_label = QLabel("Recent projects:")
        self.workspaces = QLabel(WORKSPACES_TEXT)  # lines broken by hand: a wrapped label
        column = QVBoxLayout()
        column.addWidget(title)
        column.addWidget(self.recent_label)
        column.addWidget(self.recent)
        for button in (self.folder_button, self.import_button, self.new_button,
                       self.open_button, self.sample_button):
            button.setMinimumHeight(32)
            column.addWidget(button)
        column.addWidget(self.workspaces)
        box = QWidget()
        box.setFixedWidth(500)  # (in a centred box) would get too little height
        box.setLayout(column)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.new_button.clicked.connect(self.newRequested)
        self.folder_button.clicked.connect(self.folderRequested)
        self.import_button.clicked.connect(self.importRequested)
        self.open_button.clicked.connect(self.openRequested)
        self.sample_button.clicked.connect(self.sampleRequested)
        self.recent.itemClicked.connect(self._open)
        self.recent.itemActivated.connect(self._open)  # Enter (and a double click)

    def set_recent(self, paths: list[str]) -> None:
        """List the projects by folder now; read their names, counts and thumbnails on the
        worker pool once the page is shown (a newer list supersedes an older reading)."""
        self.recent.clear()
        self._rows = {}
        for path in paths:
            item = QListWidgetItem(QIcon(self._blank), f"{Path(path).name}\n{path}")
            item.setData(PathRole, path)
            item.setToolTip(path)
            self.recent.addItem(item)
            self._rows[path] = item
        rows = sum(self.recent.sizeHintForRow(i) + 4 for i in range(len(paths)))
        self.recent.setFixedHeight(min(RECENT_HEIGHT, rows + 2 * self.recent.frameWidth() + 4))
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
        self._unread = list(paths)
        if self.isVisible():  # else when shown: no reading while a project is worked on
            self._read()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._read()

    def _read(self) -> None:
        paths, self._unread = self._unread, []
        if paths and self.workers is not None:
            self.workers.submit(read_recent, paths, THUMB_SIZE, with_token=True,
                                key=("recent-projects", id(self)), on_progress=self._show)

    def recent_paths(self) -> list[str]:
        return [self.recent.item(i).data(PathRole) for i in range(self.recent.count())]

    def recent_info(self, path: str) -> RecentProject | None:
        """What was read of a listed project (None while it is being read)."""
        item = self._rows.get(path)
        return item.data(PathRole + 1) if item is not None else None

    def _show(self, info: RecentProject) -> None:
        item = self._rows.get(info.path)
        if item is None:
            return
        item.setData(PathRole + 1, info)
        item.setText(f"{info.title}\n{info.path}")
        if info.thumbnail is not None:
            item.setIcon(QIcon(QPixmap.fromImage(info.thumbnail)))
        if not info.found:
            item.setFlags(Qt.ItemFlag.NoItemFlags)  # greyed; a click opens nothing
            item.setToolTip(f"{info.path}: {info.problem}")

    def _open(self, item: QListWidgetItem) -> None:
        if not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return
        if (self._last_open.isValid()
                and self._last_open.elapsed() < QApplication.doubleClickInterval()):
            return  # the second half of a double click
        self._last_open.start()
        self.recentRequested.emit(item.data(PathRole))
