"""The application's icons, drawn with QPainter: one consistent line style, no image files.

Each icon is drawn on a 24 x 24 grid (scaled to 48 px for sharp high-DPI toolbars) with
2-unit round strokes in the palette's text colour, so they follow the light or dark theme
(`icon(name)` reads the colour when called; `Actions.apply_icons` redraws after a theme
change). Accent colours mark meaning: green for done, red for delete.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)

SIZE = 48
GREEN, RED, BLUE, AMBER = "#2e9d5b", "#d0403a", "#3a7bd5", "#e0a020"


def _pts(*xy: float) -> QPolygonF:
    return QPolygonF([QPointF(xy[i], xy[i + 1]) for i in range(0, len(xy), 2)])


def _pen(color, width: float = 2) -> QPen:
    return QPen(QColor(color), width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                Qt.PenJoinStyle.RoundJoin)


def _arrow(p: QPainter, x0: float, y0: float, x1: float, y1: float, head: float = 4) -> None:
    p.drawLine(QPointF(x0, y0), QPointF(x1, y1))
    a = math.atan2(y1 - y0, x1 - x0)
    for da in (2.6, -2.6):
        p.drawLine(QPointF(x1, y1), QPointF(x1 + head * math.cos(a + da),
                                            y1 + head * math.sin(a + da)))


def _draw(name: str, p: QPainter, fg: QColor) -> None:  # noqa: C901 - one case per icon
    accent = QColor(BLUE)
    if name == "select":
        p.setBrush(fg)
        p.drawPolygon(_pts(6, 3, 6, 19, 10, 15, 13, 21, 15, 20, 12, 14, 18, 14))
    elif name == "box":
        p.drawRect(QRectF(4, 6, 16, 12))
        p.setBrush(accent)
        for x, y in ((4, 6), (20, 6), (4, 18), (20, 18)):
            p.drawEllipse(QPointF(x, y), 1.6, 1.6)
    elif name == "polygon":
        poly = _pts(4, 9, 11, 3, 20, 8, 17, 20, 6, 18)
        p.drawPolygon(poly)
        p.setBrush(accent)
        for pt in poly:
            p.drawEllipse(pt, 1.6, 1.6)
    elif name == "brush":
        p.drawLine(QPointF(19, 3), QPointF(10, 13))
        p.setBrush(accent)
        path = QPainterPath(QPointF(9, 12))
        path.cubicTo(4, 12, 6, 18, 3, 21)
        path.cubicTo(9, 21, 13, 18, 12, 15)
        path.closeSubpath()
        p.drawPath(path)
    elif name == "eraser":
        p.drawPolygon(_pts(3, 15, 13, 5, 21, 13, 13, 21, 7, 21))
        p.drawLine(QPointF(8, 10), QPointF(16, 18))
        p.drawLine(QPointF(13, 21), QPointF(21, 21))
    elif name == "fill":
        p.drawPolygon(_pts(4, 11, 11, 4, 18, 11, 11, 18))
        p.setBrush(accent)
        path = QPainterPath(QPointF(20, 14))
        path.cubicTo(22, 17, 22, 20, 20, 20)
        path.cubicTo(18, 20, 18, 17, 20, 14)
        p.drawPath(path)
    elif name == "wand":
        p.drawLine(QPointF(4, 20), QPointF(15, 9))
        p.setPen(_pen(QColor(AMBER), 2))
        for dx, dy in ((0, -4), (4, 0), (3, -3), (0, 4), (-4, 0)):
            p.drawLine(QPointF(18, 6), QPointF(18 + dx, 6 + dy))
    elif name == "grabcut":
        pen = p.pen()
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawRect(QRectF(3, 3, 18, 18))
        p.setPen(_pen(fg))
        p.setBrush(accent)
        p.drawEllipse(QRectF(7, 8, 10, 8))
    elif name == "segment":  # a blob with a click point on it
        p.setBrush(accent)
        p.drawEllipse(QRectF(3, 5, 16, 13))
        p.setBrush(QColor(AMBER))
        p.drawEllipse(QPointF(16, 16), 3.5, 3.5)
    elif name in ("prev", "next"):
        sign = 1 if name == "next" else -1
        p.setBrush(fg)
        p.drawPolygon(_pts(12 - 5 * sign, 5, 12 + 6 * sign, 12, 12 - 5 * sign, 19))
    elif name == "next_new":
        p.drawRect(QRectF(3, 5, 12, 14))
        _arrow(p, 12, 12, 21, 12)
    elif name == "done":
        p.setPen(_pen(QColor(GREEN), 3))
        p.drawPolyline(_pts(4, 13, 10, 19, 20, 5))
    elif name == "fit":
        for x, y, dx, dy in ((3, 3, 1, 1), (21, 3, -1, 1), (3, 21, 1, -1), (21, 21, -1, -1)):
            p.drawPolyline(_pts(x, y + 5 * dy, x, y, x + 5 * dx, y))
        p.drawRect(QRectF(8, 8, 8, 8))
    elif name == "objects":
        path = QPainterPath(QPointF(2, 12))
        path.quadTo(12, 2, 22, 12)
        path.quadTo(12, 22, 2, 12)
        p.drawPath(path)
        p.setBrush(fg)
        p.drawEllipse(QPointF(12, 12), 3, 3)
    elif name in ("undo", "redo"):
        sign = -1 if name == "undo" else 1
        path = QPainterPath(QPointF(12 - 7 * sign, 18))
        path.cubicTo(12 - 7 * sign, 8, 12 + 2 * sign, 6, 12 + 7 * sign, 10)
        p.drawPath(path)
        p.drawPolyline(_pts(12 + 7 * sign, 4, 12 + 7 * sign, 10, 12 + 1 * sign, 10))
    elif name in ("new", "open", "import", "export", "add_images", "sample"):
        if name == "open" or name == "sample":
            p.drawPolygon(_pts(3, 6, 9, 6, 11, 8, 21, 8, 21, 19, 3, 19))
            if name == "sample":
                p.setBrush(QColor(AMBER))
                p.drawEllipse(QPointF(15, 14), 3, 3)
        else:
            p.drawPolygon(_pts(5, 3, 14, 3, 19, 8, 19, 21, 5, 21))
            p.drawPolyline(_pts(14, 3, 14, 8, 19, 8))
            if name == "new":
                p.drawLine(QPointF(12, 11), QPointF(12, 18))
                p.drawLine(QPointF(8.5, 14.5), QPointF(15.5, 14.5))
            elif name == "import":
                p.setPen(_pen(accent, 2))
                _arrow(p, 12, 9, 12, 18)
            elif name == "export":
                p.setPen(_pen(accent, 2))
                _arrow(p, 12, 18, 12, 10)
            else:
                p.drawPolyline(_pts(7, 19, 10, 14, 13, 17, 15, 15, 17, 19))
    elif name == "delete":
        p.setPen(_pen(QColor(RED), 2))
        p.drawLine(QPointF(4, 6), QPointF(20, 6))
        p.drawPolygon(_pts(6, 6, 8, 21, 16, 21, 18, 6))
        p.drawLine(QPointF(10, 3), QPointF(14, 3))
    elif name in ("copy", "duplicate", "paste"):
        if name == "paste":
            p.drawRect(QRectF(5, 4, 14, 17))
            p.setBrush(fg)
            p.drawRect(QRectF(9, 2, 6, 4))
        else:
            p.drawRect(QRectF(4, 4, 11, 13))
            p.setBrush(accent if name == "duplicate" else Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(9, 8, 11, 13))
    elif name == "zoom_100":
        p.drawEllipse(QPointF(10, 10), 6, 6)
        p.drawLine(QPointF(14.5, 14.5), QPointF(20, 20))
    elif name == "app":
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#233247"))
        p.drawRoundedRect(QRectF(1, 1, 22, 22), 5, 5)
        p.setBrush(QColor(BLUE))
        p.drawEllipse(QPointF(10, 13), 6.5, 6.5)
        p.setBrush(QColor(AMBER))
        p.drawEllipse(QPointF(15.5, 9), 4, 4)
        p.setPen(_pen("white", 1.8))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(4.5, 4.5, 15, 15))
    else:
        raise KeyError(f"no icon named {name!r}")


NAMES = ("select", "box", "polygon", "brush", "eraser", "fill", "wand", "grabcut", "segment",
         "prev",
         "next", "next_new", "done", "fit", "objects", "undo", "redo", "new", "open",
         "import", "export", "add_images", "sample", "delete", "copy", "duplicate", "paste",
         "zoom_100", "app")


def icon_pixmap(name: str, size: int = SIZE, color: QColor | str | None = None) -> QPixmap:
    """The icon drawn at `size` pixels in `color` (the palette's text colour by default)."""
    if color is None:
        app = QGuiApplication.instance()
        color = app.palette().color(QPalette.ColorRole.WindowText) if app else QColor("black")
    fg = QColor(color)
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 24.0, size / 24.0)
    p.setPen(_pen(fg))
    p.setBrush(Qt.BrushStyle.NoBrush)
    try:
        _draw(name, p, fg)
    finally:
        p.end()
    return pixmap


def icon(name: str) -> QIcon:
    """A QIcon with a normal and a greyed (disabled) look."""
    result = QIcon(icon_pixmap(name))
    result.addPixmap(icon_pixmap(name, color=QColor(128, 128, 128, 140)), QIcon.Mode.Disabled)
    return result


def app_icon() -> QIcon:
    """The application's own icon, at the sizes window managers ask for."""
    result = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        result.addPixmap(icon_pixmap("app", size))
    return result


def class_swatch(color: str, size: int = 12) -> QIcon:
    """A small square of a class colour, for menus."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)
