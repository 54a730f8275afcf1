"""How the Inspect workspace shares its width and height between its panels, so that a
1366 x 768 laptop shows every panel whole: the image list (as wide as its tabs, never
behind a scroll arrow), the image in the middle (it takes what is left) and the right
panel; on the right, the readout table is given the height of all its rows when the
screen has it, the post-processing recipe (which scrolls) the rest."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QSplitter, QTabWidget, QWidget

LEFT = 300  # px: the image list (or the confusion matrix), its tabs permitting; a run
# without a right panel (classification) gives the image, not the list, the room left
LEFT_LEAST = 240  # px: the least the image list gets, its tabs permitting
RIGHT = 480  # px: the recipe and readouts, or the detection panel
CENTRE_LEAST = 1000  # px: the width assumed before the window is laid out
RECIPE_LEAST = 220  # px: the recipe keeps a few sliders in sight above the readouts
HEIGHT_GUESS = 640  # px: the right panel's height assumed before it is laid out


def fit_tabs(tabs: QTabWidget) -> None:
    """Tabs that are all in sight: no scroll arrows, no cut titles; the tab widget is
    never narrower than its visible tabs (or LEFT_LEAST)."""
    tabs.setUsesScrollButtons(False)
    tabs.setElideMode(Qt.TextElideMode.ElideNone)
    tabs.tabBar().setExpanding(False)
    bar = tabs.tabBar()
    width = sum(bar.tabSizeHint(i).width() for i in range(bar.count()) if bar.isTabVisible(i))
    tabs.setMinimumWidth(max(LEFT_LEAST, width + 4))


def fit_panels(main: QSplitter, right: QSplitter, has_right: bool,
               readouts: int | None = None) -> None:
    """Share `main`'s width (image list, image, right panel) and, for a semantic run,
    `right`'s height: `readouts` px (what the readout table and chart ask for) when the
    recipe keeps RECIPE_LEAST, the recipe the rest."""
    tabs = main.widget(0)
    if isinstance(tabs, QTabWidget):
        fit_tabs(tabs)
        least = tabs.minimumWidth()
    else:
        least = LEFT_LEAST
    width = max(main.width(), CENTRE_LEAST)
    left = max(LEFT, least)
    side = RIGHT if has_right else 0
    main.setSizes([left, width - left - side, side])
    if readouts is not None:
        height = right.height() if right.height() > 100 else HEIGHT_GUESS
        recipe = max(height - readouts, RECIPE_LEAST)
        right.setSizes([recipe, height - recipe, 0])


class _FirstShow(QObject):
    """Calls `fit` once, when the widget was first shown and laid out."""

    def __init__(self, widget: QWidget, fit: Callable[[], None]) -> None:
        super().__init__(widget)
        self.fit = fit

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.Show:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, self, self.fit)  # once laid out (never after the widget)
        return False


def fit_on_first_show(widget: QWidget, fit: Callable[[], None]) -> None:
    """Share the panels again when `widget` is first on screen: sizes set before that
    (a project opened before Inspect was shown) were guesses."""
    widget.installEventFilter(_FirstShow(widget, fit))
