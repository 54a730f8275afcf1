"""The start page shown while no project is open: New, Open, sample and recent projects."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    """Buttons that start the session; the window connects them to its actions."""

    newRequested = Signal()
    openRequested = Signal()
    sampleRequested = Signal()
    recentRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h1>Vision Studio</h1><p>Label images, train a model by clicking, "
                       "inspect and clean its segmentations.</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        self.new_button = QPushButton("New project...")
        self.open_button = QPushButton("Open project...")
        self.sample_button = QPushButton("Open the sample project")
        self.recent = QListWidget()
        self.recent.setMaximumHeight(160)
        self.recent_label = QLabel("Recent projects:")
        column = QVBoxLayout()
        column.addWidget(title)
        for button in (self.new_button, self.open_button, self.sample_button):
            button.setMinimumHeight(36)
            column.addWidget(button)
        column.addWidget(self.recent_label)
        column.addWidget(self.recent)
        box = QWidget()
        box.setMinimumWidth(380)  # room for the wrapped subtitle (else its last line is cut)
        box.setMaximumWidth(460)
        box.setLayout(column)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.new_button.clicked.connect(self.newRequested)
        self.open_button.clicked.connect(self.openRequested)
        self.sample_button.clicked.connect(self.sampleRequested)
        self.recent.itemActivated.connect(lambda item: self.recentRequested.emit(item.text()))

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(paths)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
