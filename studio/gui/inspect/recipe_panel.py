"""The post-processing panel: one group per recipe step (checkable = enabled), one labelled
slider, spin box or choice per parameter, generated from the engine's recipe schema
(`STEP_DEFAULTS` and the recipe's own values). Edits are debounced into one
`recipeChanged(recipe)` signal."""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider

from studio.core.errors import ConfigError
from studio.ml.postprocess import STEP_DEFAULTS, default_recipe, validate_recipe
from studio.ml.postprocess.recipe import KERNEL_SHAPES, MORPH_OPERATIONS

DEBOUNCE_MS = 60

# Slider ranges (lo, hi, step) of numeric parameters; others get a spin box.
RANGES: dict[tuple[str, str], tuple[float, float, float]] = {
    ("crf", "iterations"): (1, 20, 1),
    ("crf", "smooth_sigma"): (0.5, 20.0, 0.5),
    ("crf", "smooth_weight"): (0.0, 10.0, 0.1),
    ("crf", "bilateral_sigma"): (1.0, 200.0, 1.0),
    ("crf", "color_sigma"): (1.0, 100.0, 1.0),
    ("crf", "bilateral_weight"): (0.0, 20.0, 0.1),
    ("threshold", "min_confidence"): (0.0, 1.0, 0.01),
    ("threshold", "thresholds"): (0.0, 1.0, 0.01),
    ("hysteresis", "high"): (0.0, 1.0, 0.01),
    ("hysteresis", "low"): (0.0, 1.0, 0.01),
    ("superpixels", "region_size"): (2, 128, 1),
    ("superpixels", "compactness"): (0.5, 100.0, 0.5),
    ("superpixels", "iterations"): (1, 30, 1),
    ("morphology", "kernel_size"): (1, 51, 1),
    ("morphology", "iterations"): (1, 10, 1),
    ("components", "min_size"): (0, 5000, 1),
    ("components", "keep_largest"): (0, 50, 1),
    ("fill_holes", "max_area"): (1, 10000, 1),
}
CHOICES: dict[tuple[str, str], tuple] = {
    ("threshold", "mode"): ("argmax", "per_class"),
    ("superpixels", "mode"): ("vote", "mean"),
    ("morphology", "operation"): MORPH_OPERATIONS,
    ("morphology", "shape"): KERNEL_SHAPES,
    ("components", "connectivity"): (8, 4),
}
TITLES = {"crf": "Dense CRF", "threshold": "Threshold", "hysteresis": "Hysteresis",
          "superpixels": "Superpixels (SLIC)", "morphology": "Morphology",
          "components": "Connected components", "fill_holes": "Fill holes"}


def cast_value(value, lo, hi, integer: bool):
    v = min(max(value, lo), hi)
    return int(v) if integer else float(v)


def _signature(recipe: dict) -> list:
    """Which editor each parameter needs: recipes with the same signature share a panel."""
    return [(st["op"], st.get("operation"),
             tuple(isinstance(st[k], (list, type(None))) for k in STEP_DEFAULTS[st["op"]]))
            for st in recipe["steps"]]


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


class RecipePanel(QWidget):
    """Edits a recipe; `recipe()` is always a valid recipe."""

    recipeChanged = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._recipe = default_recipe()
        self._editors: list[dict[str, Any]] = []  # per step: key -> (getter, setter)
        self._groups: list[QGroupBox] = []
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)
        self._loading = False
        self._inner = QWidget()
        self._form = QVBoxLayout(self._inner)
        self._form.setContentsMargins(2, 2, 2, 2)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.set_recipe(self._recipe)

    # --- public ---------------------------------------------------------------------------
    def recipe(self) -> dict:
        return copy.deepcopy(self._recipe)

    def set_recipe(self, recipe: dict) -> None:
        """Show `recipe` (validated first); rebuilds the panel and emits recipeChanged."""
        new = validate_recipe(recipe)
        same = _signature(new) == _signature(self._recipe)
        self._recipe = new
        if same and self._editors:
            self._show_values()
        else:
            self._rebuild()
        self._emit()

    def _show_values(self) -> None:
        """Put the recipe's values into the existing editors (same steps, new values)."""
        self._loading = True
        try:
            for i, step in enumerate(self._recipe["steps"]):
                self._groups[i].setChecked(step["enabled"])
                for key, (_get, set_value, _w) in self._editors[i].items():
                    value = step[key]
                    if key == "max_area" and value is None:
                        value = 0
                    set_value(value)
        finally:
            self._loading = False

    def step_group(self, index: int) -> QGroupBox:
        return self._groups[index]

    def editor(self, index: int, key: str) -> QWidget:
        return self._editors[index][key][2]

    def flush(self) -> None:
        """Emit a pending change now (tests, before an action that needs the recipe)."""
        if self._timer.isActive():
            self._timer.stop()
            self._emit()

    # --- building ---------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._loading = True
        while self._form.count():
            item = self._form.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        self._editors, self._groups = [], []
        for i, step in enumerate(self._recipe["steps"]):
            op = step["op"]
            title = TITLES.get(op, op)
            if op == "morphology":
                title += f" ({step['operation']})"
            box = QGroupBox(title)
            box.setCheckable(True)
            box.setChecked(step["enabled"])
            box.toggled.connect(lambda on, i=i: self._set(i, "enabled", on))
            form = QFormLayout(box)
            form.setContentsMargins(6, 2, 6, 2)
            editors = {}
            for key in STEP_DEFAULTS[op]:
                getter_setter = self._editor(i, op, key, step[key])
                editors[key] = getter_setter
                form.addRow(_label(key), getter_setter[2])
            self._editors.append(editors)
            self._groups.append(box)
            self._form.addWidget(box)
        self._form.addStretch(1)
        self._loading = False

    def _editor(self, i: int, op: str, key: str, value):
        """(getter, setter, widget) for one parameter."""
        if (op, key) in CHOICES:
            combo = QComboBox()
            options = CHOICES[(op, key)]
            for opt in options:
                combo.addItem(str(opt), opt)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.currentIndexChanged.connect(lambda _=0, c=combo: self._set(i, key, c.currentData()))
            return combo.currentData, lambda v, c=combo: c.setCurrentIndex(c.findData(v)), combo
        rng = RANGES.get((op, key))
        if rng is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi, step = rng
            integer = float(step).is_integer() and float(lo).is_integer()
            slider = (QLabeledSlider if integer else QLabeledDoubleSlider)(Qt.Orientation.Horizontal)
            slider.setRange(int(lo) if integer else lo, int(hi) if integer else hi)
            if not integer:
                slider.setSingleStep(step)
                slider.setDecimals(2)
            slider.setValue(cast_value(value, lo, hi, integer))
            cast = int if integer else float
            slider.valueChanged.connect(lambda v, s=slider: self._set(i, key, cast(v), s))
            return lambda s=slider: cast(s.value()), slider.setValue, slider
        if key == "max_area" or isinstance(value, int) and not isinstance(value, bool):
            spin = QSpinBox()
            spin.setRange(0, 10_000_000)
            spin.setSpecialValueText("no limit" if key == "max_area" else "")
            spin.setValue(0 if value is None else int(value))
            spin.valueChanged.connect(
                lambda v: self._set(i, key, (None if v == 0 else v) if key == "max_area" else v))
            return spin.value, spin.setValue, spin
        # lists and null (classes, per-class thresholds): JSON text, "" = null
        edit = QLineEdit("" if value is None else json.dumps(value))
        edit.setPlaceholderText("all classes" if key == "classes" else "")
        edit.editingFinished.connect(lambda e=edit: self._set_text(i, key, e))
        return edit.text, lambda v, e=edit: e.setText("" if v is None else json.dumps(v)), edit

    # --- edits ------------------------------------------------------------------------------
    def _set_text(self, i: int, key: str, edit: QLineEdit) -> None:
        text = edit.text().strip()
        try:
            value = None if not text else json.loads(text)
        except ValueError:
            edit.setStyleSheet("background: #ffd0d0")
            edit.setToolTip(f"{_label(key)}: not valid JSON (e.g. [1, 2] or 0.5).")
            return
        self._set(i, key, value, edit)

    def _set(self, i: int, key: str, value, widget: QWidget | None = None) -> None:
        if self._loading:
            return
        candidate = copy.deepcopy(self._recipe)
        candidate["steps"][i][key] = value
        try:
            self._recipe = validate_recipe(candidate)
        except ConfigError as exc:
            if widget is not None:
                widget.setStyleSheet("background: #ffd0d0")
                widget.setToolTip(str(exc))
            self.setToolTip(str(exc))
            return
        if widget is not None:
            widget.setStyleSheet("")
            widget.setToolTip("")
        self._timer.start()

    def _emit(self) -> None:
        self.recipeChanged.emit(self.recipe())
