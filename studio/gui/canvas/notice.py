"""A notice over the canvas: says why there is nothing to draw on and what to do next.

Shown for an image whose file is missing (relink buttons), while a huge image's first
pixels are on their way (a busy bar, so the canvas is never a silent blank) and for a
project without images (add or import buttons). Buttons emit `actionRequested(name)`.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class CanvasNotice(QFrame):
    """A centred card over the canvas: title, text, optional busy bar and buttons."""

    actionRequested = Signal(str)

    def __init__(self, view: QWidget) -> None:
        super().__init__(view)
        self.setObjectName("canvasNotice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.kind = ""  # "missing", "loading", "empty" or "" when hidden
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.text = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QProgressBar(minimum=0, maximum=0, textVisible=False)
        self.busy.setMaximumHeight(10)
        self._buttons = QHBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        layout.addWidget(self.busy)
        layout.addLayout(self._buttons)
        self.setMaximumWidth(520)
        view.installEventFilter(self)
        self.hide()

    def show_notice(self, kind: str, title: str, text: str,
                    actions: list[tuple[str, str]] = (), busy: bool = False) -> None:
        """Show the card; `actions` are (name, button text) pairs."""
        self.kind = kind
        self.title.setText(title)
        self.text.setText(text)
        self.busy.setVisible(busy)
        while self._buttons.count():
            w = self._buttons.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self._buttons.addStretch(1)
        for name, label in actions:
            button = QPushButton(label)
            button.setObjectName(f"notice_{name}")
            button.clicked.connect(lambda _=False, n=name: self.actionRequested.emit(n))
            self._buttons.addWidget(button)
        self.adjustSize()
        self._centre()
        self.show()
        self.raise_()

    def show_empty_project(self) -> None:
        self.show_notice("empty", "This project has no images yet", (
            "Drag image files or folders here, add images, or import a labelled "
            "dataset (COCO, VOC, YOLO, labelme, masks, folders)."),
            [("add_images", "Add images..."), ("import", "Import a dataset...")])

    def show_missing_file(self, name: str, path) -> None:
        self.show_notice("missing", f"{name}: the image file is missing", (
            f"It was at {path}. Point the project at the file where it is now, or at a "
            "folder to find every missing image by its name. Drawing is off until then."),
            [("relink_file", "Relink file..."), ("relink_folder", "Relink folder...")])

    def show_loading(self, name: str, width: int, height: int) -> None:
        self.show_notice("loading", f"Opening {name}", (
            f"{width:,} x {height:,} pixels: a reduced overview shows as soon as it is "
            "read; full detail follows where you zoom."), busy=True)

    def hide_notice(self, kind: str | None = None) -> None:
        """Hide the card (only if it shows `kind`, when given)."""
        if kind is None or kind == self.kind:
            self.kind = ""
            self.hide()

    def button(self, name: str) -> QPushButton | None:
        return self.findChild(QPushButton, f"notice_{name}")

    def _centre(self) -> None:
        parent = self.parentWidget()
        width = min(self.maximumWidth(), max(parent.width() - 40, 200))
        self.resize(width, max(self.layout().totalHeightForWidth(width),
                               self.layout().totalMinimumSize().height()))
        self.move(max((parent.width() - self.width()) // 2, 0),
                  max((parent.height() - self.height()) // 2, 0))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and not self.isHidden():
            self._centre()
        return False
