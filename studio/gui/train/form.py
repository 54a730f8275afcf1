"""Editors bound to dotted paths of a run config, with errors shown beside the field.

A `ConfigForm` maps paths ("optimizer.lr", "augment.rotation.degrees") to small editors.
`load(cfg)` fills the editors, `apply(cfg)` writes their values into a config dict.
Editors do not check values: text that is not a number is passed on as text, so the
engine's own validation (one source of truth) says what is wrong; `show_error` then
puts the engine's message next to the field its message names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

ERROR_STYLE = "color: #c0392b;"
REASON_STYLE = "color: #2c6e49; font-style: italic;"


def get_path(cfg: dict, path: str, default: Any = None) -> Any:
    node: Any = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_path(cfg: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node = cfg
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if (value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5)) \
            else f"{value:g}" if math.isfinite(value) else str(value)
    return "" if value is None else str(value)


def parse_number(text: str, allow_none: bool = False) -> Any:
    """An int or float from text; empty -> None where allowed; anything else stays text
    (the engine's validation names it)."""
    text = text.strip()
    if not text and allow_none:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class BoolEdit(QCheckBox):
    def value(self) -> bool:
        return self.isChecked()

    def set_value(self, value: Any) -> None:
        self.setChecked(bool(value))

    def connect_changed(self, slot) -> None:
        self.toggled.connect(slot)


class IntEdit(QSpinBox):
    def __init__(self, minimum: int = 0, maximum: int = 1_000_000) -> None:
        super().__init__()
        self.setRange(minimum, maximum)

    def value(self) -> int:  # type: ignore[override]
        return int(super().value())

    def set_value(self, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.setValue(int(value))

    def connect_changed(self, slot) -> None:
        self.valueChanged.connect(slot)


class NumberEdit(QLineEdit):
    """A number as text (1e-3 stays readable); empty means None when `allow_none`."""

    def __init__(self, allow_none: bool = False, placeholder: str = "") -> None:
        super().__init__()
        self.allow_none = allow_none
        self.setPlaceholderText(placeholder or ("default" if allow_none else ""))
        self.setMaximumWidth(110)

    def value(self) -> Any:
        return parse_number(self.text(), self.allow_none)

    def set_value(self, value: Any) -> None:
        self.setText(_number_text(value))

    def connect_changed(self, slot) -> None:
        self.textEdited.connect(slot)


class ListEdit(QLineEdit):
    """Numbers separated by commas ("-15, 15"); empty means None when `allow_none`; a
    single number stays a number when `scalar_ok`."""

    def __init__(self, allow_none: bool = False, scalar_ok: bool = False) -> None:
        super().__init__()
        self.allow_none, self.scalar_ok = allow_none, scalar_ok
        self.setPlaceholderText("none" if allow_none else "min, max")
        self.setMaximumWidth(140)

    def value(self) -> Any:
        text = self.text().strip()
        if not text and self.allow_none:
            return None
        parts = [parse_number(p) for p in text.replace(";", ",").split(",") if p.strip()]
        if self.scalar_ok and len(parts) == 1:
            return parts[0]
        return parts

    def set_value(self, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            self.setText(", ".join(_number_text(v) for v in value))
        else:
            self.setText(_number_text(value))

    def connect_changed(self, slot) -> None:
        self.textEdited.connect(slot)


class ChoiceEdit(QComboBox):
    """One of fixed values, each shown with a label."""

    def __init__(self, choices: Sequence[tuple[Any, str]] = ()) -> None:
        super().__init__()
        self.set_choices(choices)

    def set_choices(self, choices: Sequence[tuple[Any, str]]) -> None:
        current = self.value() if self.count() else None
        self.blockSignals(True)
        self.clear()
        for value, label in choices:
            self.addItem(label, value)
        self.blockSignals(False)
        if current is not None:
            self.set_value(current)

    def value(self) -> Any:
        return self.currentData()

    def set_value(self, value: Any) -> None:
        for i in range(self.count()):
            if self.itemData(i) == value:
                self.setCurrentIndex(i)
                return
        if value is not None:  # a value from a loaded file the list lacks: keep it visible
            self.addItem(str(value), value)
            self.setCurrentIndex(self.count() - 1)

    def connect_changed(self, slot) -> None:
        self.currentIndexChanged.connect(slot)


class Field:
    """An editor with its path, and the row widget that shows its error."""

    def __init__(self, path: str, editor: QWidget, tip: str) -> None:
        self.path, self.editor = path, editor
        self.row = QWidget()
        column = QVBoxLayout(self.row)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(1)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(editor)
        line.addStretch(1)
        column.addLayout(line)
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        column.addWidget(self.error)
        self.reason = QLabel()  # why a recommended value was chosen
        self.reason.setStyleSheet(REASON_STYLE)
        self.reason.setWordWrap(True)
        self.reason.hide()
        column.addWidget(self.reason)
        editor.setToolTip(tip)
        self.row.setToolTip(tip)


class ConfigForm(QObject):
    """Fields of several panels, by config path."""

    changed = Signal(str)  # path of the field a person changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, Field] = {}
        self._loading = False

    def add(self, path: str, editor: QWidget, tip: str) -> Field:
        field = Field(path, editor, tip)
        self.fields[path] = field
        editor.connect_changed(lambda *_: self._on_edit(path))
        return field

    def remove_prefix(self, prefix: str) -> None:
        """Forget the fields under `prefix` (e.g. model options when the model changes)."""
        for path in [p for p in self.fields if p.startswith(prefix)]:
            del self.fields[path]

    def _on_edit(self, path: str) -> None:
        if not self._loading:
            self.fields[path].error.hide()
            self.changed.emit(path)

    def load(self, cfg: dict) -> None:
        """Show `cfg`'s values (paths it lacks keep their editors' values)."""
        self._loading = True
        try:
            for path, field in list(self.fields.items()):
                value = get_path(cfg, path, _MISSING)
                if value is not _MISSING:
                    field.editor.set_value(value)
        finally:
            self._loading = False

    def apply(self, cfg: dict) -> dict:
        """Write every field's value into `cfg` (in place) and return it."""
        for path, field in self.fields.items():
            set_path(cfg, path, field.editor.value())
        return cfg

    # --- errors -------------------------------------------------------------------------
    def clear_errors(self) -> None:
        for field in self.fields.values():
            field.error.hide()

    def field_for_message(self, message: str) -> str | None:
        """The field an engine message is about: the longest known path it quotes."""
        quoted = re.findall(r"'([^']+)'", message)
        candidates = set(quoted)
        op = re.match(r"\s*(?:Bad augmentation spec: )?augmentation '(\w+)': '(\w+)'", message)
        if op:
            candidates.add(f"augment.{op.group(1)}.{op.group(2)}")
        if re.search(r"\bModel '[^']+' needs images", message):
            candidates.add("image_size")
        if message.startswith(("Unknown optimizer", "unknown optimizer")):
            candidates.add("optimizer.name")
        for c in sorted(candidates, key=len, reverse=True):
            if c in self.fields:
                return c
        for c in sorted(candidates, key=len, reverse=True):
            for path in self.fields:
                if path.endswith("." + c) or path.startswith(c + "."):
                    return path
        return None

    def show_error(self, message: str) -> str | None:
        """Show an engine error next to its field; returns that field's path (or None)."""
        self.clear_errors()
        path = self.field_for_message(message)
        if path is not None:
            field = self.fields[path]
            field.error.setText(message)
            field.error.show()
        return path


    def show_reasons(self, reasons: dict[str, str]) -> dict[str, str]:
        """Put each reason under its field (a parent path's reason goes to its first
        field); returns the reasons no field shows."""
        self.clear_reasons()
        left = {}
        for path, reason in reasons.items():
            target = path if path in self.fields else next(
                (p for p in self.fields if p.startswith(path + ".")), None)
            if target is None:
                left[path] = reason
                continue
            label = self.fields[target].reason
            label.setText(reason if label.isHidden() else f"{label.text()} {reason}")
            label.show()
        return left

    def clear_reasons(self) -> None:
        for field in self.fields.values():
            field.reason.hide()
            field.reason.setText("")


_MISSING = object()
