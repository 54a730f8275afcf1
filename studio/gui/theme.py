"""Light and dark theme, following the system's colour scheme unless a person picks one.

Both themes use Qt's Fusion style (the same look on every platform) with a light or a dark
palette. In "system" mode the scheme comes from `QStyleHints.colorScheme()` and changes
with it. The choice is kept in the settings under `view/theme`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu, QWidget

THEMES = {"system": "Follow the &system", "light": "&Light", "dark": "&Dark"}
SETTING = "view/theme"

Role, Group = QPalette.ColorRole, QPalette.ColorGroup


def dark_palette() -> QPalette:
    p = QPalette()
    colours = {
        Role.Window: "#26282c", Role.WindowText: "#e6e6e6", Role.Base: "#303236",
        Role.AlternateBase: "#2a2c30", Role.ToolTipBase: "#3a3d42", Role.ToolTipText: "#f0f0f0",
        Role.PlaceholderText: "#8a8d93", Role.Text: "#e6e6e6", Role.Button: "#35383d",
        Role.ButtonText: "#e6e6e6", Role.BrightText: "#ff6b6b", Role.Light: "#45484e",
        Role.Midlight: "#3c3f44", Role.Mid: "#2f3136", Role.Dark: "#1b1c1f",
        Role.Shadow: "#000000", Role.Highlight: "#3a7bd5", Role.HighlightedText: "#ffffff",
        Role.Link: "#6ea8fe", Role.LinkVisited: "#b58cf0",
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        p.setColor(Group.Disabled, role, QColor("#777a80"))
    p.setColor(Group.Disabled, Role.Highlight, QColor("#4a4d52"))
    return p


def light_palette() -> QPalette:
    app = QApplication.instance()
    return app.style().standardPalette() if app is not None else QPalette()


def scheme_for(mode: str) -> str:
    """'light' or 'dark': what `mode` ('system', 'light', 'dark') means right now."""
    if mode in ("light", "dark"):
        return mode
    app = QGuiApplication.instance()
    scheme = app.styleHints().colorScheme() if app is not None else Qt.ColorScheme.Unknown
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def apply_theme(mode: str) -> str:
    """Give the application the theme `mode`; returns the scheme applied."""
    app = QApplication.instance()
    if mode not in THEMES:
        mode = "system"
    scheme = scheme_for(mode)
    if app is not None:
        if app.style().name().lower() != "fusion":
            app.setStyle("Fusion")
        app.setPalette(dark_palette() if scheme == "dark" else light_palette())
    return scheme


class ThemeMenu(QObject):
    """View > Theme: the three choices, the saved one applied; `changed(scheme)` follows.
    A child of the window, so its link to the system's scheme goes with the window."""

    def __init__(self, parent: QWidget, menu: QMenu, settings,
                 changed: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.settings, self.changed = settings, changed
        self.mode = str(settings.value(SETTING, "system") or "system")
        self.group = QActionGroup(parent)
        self.actions: dict[str, QAction] = {}
        sub = menu.addMenu("&Theme")
        for mode, text in THEMES.items():
            act = QAction(text, parent, checkable=True)
            act.setChecked(mode == self.mode)
            act.triggered.connect(lambda _=False, m=mode: self.choose(m))
            self.group.addAction(act)
            sub.addAction(act)
            self.actions[mode] = act
        app = QGuiApplication.instance()
        if app is not None:
            app.styleHints().colorSchemeChanged.connect(self._on_system_changed)
        self.scheme = apply_theme(self.mode)

    def choose(self, mode: str) -> str:
        self.mode = mode if mode in THEMES else "system"
        self.actions[self.mode].setChecked(True)
        self.settings.set_value(SETTING, self.mode)
        self.scheme = apply_theme(self.mode)
        self.changed(self.scheme)
        return self.scheme

    def _on_system_changed(self, *_args) -> None:
        if self.mode == "system":
            self.scheme = apply_theme("system")
            self.changed(self.scheme)
