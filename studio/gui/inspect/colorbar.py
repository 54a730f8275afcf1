"""The colour bar that explains the probability heatmap overlay."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.ml.inspect.overlays import heatmap_colors


class ColorBar(QWidget):
    """A vertical colour bar from 0 (bottom) to 1 (top) with its title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = "p"
        self.setFixedWidth(64)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(120)
        self._stops = heatmap_colors(16)

    def set_title(self, title: str) -> None:
        self.title = title
        self.setToolTip(f"Probability of {title}")
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        fm = painter.fontMetrics()
        top, bottom = fm.height() + 8, self.height() - fm.height() // 2 - 4
        bar = QRectF(6, top, 16, max(bottom - top, 10))
        grad = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for i, rgb in enumerate(self._stops):
            grad.setColorAt(i / (len(self._stops) - 1), QColor(*rgb))
        painter.fillRect(bar, grad)
        painter.setPen(self.palette().windowText().color())
        painter.drawRect(bar)
        for frac in (0.0, 0.5, 1.0):
            y = bar.bottom() - frac * bar.height()
            painter.drawLine(int(bar.right()), int(y), int(bar.right()) + 4, int(y))
            painter.drawText(int(bar.right()) + 6, int(y + fm.ascent() / 2 - 1), f"{frac:g}")
        painter.drawText(QRectF(0, 0, self.width(), fm.height() + 4),
                         Qt.AlignmentFlag.AlignHCenter, fm.elidedText(
                             self.title, Qt.TextElideMode.ElideRight, self.width()))
        painter.end()

