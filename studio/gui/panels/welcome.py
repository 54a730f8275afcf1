"""The start page shown while no project is open: recent projects, the sample, a new
project from a folder of images or from an imported dataset, and what the workspaces do."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

RECENT_HEIGHT = 140  # px at most for the recent projects (then the list scrolls)
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        self.recent.setToolTip("Double click (or Enter) opens the project")
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
        self.recent.itemActivated.connect(lambda item: self.recentRequested.emit(item.text()))

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(paths)
        rows = self.recent.sizeHintForRow(0) * len(paths) if paths else 0
        self.recent.setFixedHeight(min(RECENT_HEIGHT, rows + 2 * self.recent.frameWidth() + 4))
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
