"""Editors for the fields of a run config, one per kind of the engine's field specs.

Every editor has `value()`, `set_value(value)` and `connect_changed(slot)`. What an editor
shows reads back as the same value (floats in their shortest exact form, lists of numbers
as "1, 2", lists per level as "16; 32, 48"). Editors do not judge values: text that is not
a number stays text, so the engine's validation (one source of truth) says what is wrong
and names the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit

_NOT_SET = object()
LEVELS = ";"  # between the levels of a nested list: "16; 32; 64"
ITEMS = ","  # between the numbers of a list: "-15, 15"


def number_text(value: Any) -> str:
    """A number as short text that reads back exactly ("0.001", "1e-08", "30")."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def parse_number(text: str, kind: str = "", allow_none: bool = False) -> Any:
    """A number from text: an int for kind "int", a float for "float", either for "".
    Empty text is None where allowed; anything else stays text (the engine names it)."""
    text = text.strip()
    if not text and allow_none:
        return None
    if kind != "float":
        try:
            return int(text)
        except ValueError:
            pass
    try:
        number = float(text)
    except ValueError:
        return text
    if kind == "int" and math.isfinite(number) and number.is_integer():
        return int(number)  # "1e3" is a whole number
    return number


def parse_list(text: str, kind: str = "") -> list:
    return [parse_number(p, kind) for p in text.split(ITEMS) if p.strip()]


def list_text(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return f"{ITEMS} ".join(number_text(v) if not isinstance(v, (list, tuple)) else
                                json.dumps(v) for v in values)
    return number_text(values) if not isinstance(values, str) else values


class BoolEdit(QCheckBox):
    """True or false. A loaded value that is neither (the text "false") shows half checked
    and reads back as it is, for the engine to name, until a person clicks."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._other: Any = _NOT_SET
        self.stateChanged.connect(self._on_state)

    def value(self) -> Any:
        return self.isChecked() if self._other is _NOT_SET else self._other

    def set_value(self, value: Any) -> None:
        if isinstance(value, bool):
            self._other = _NOT_SET
            self.setTristate(False)
            self.setChecked(value)
        else:
            self._other = value
            self.setTristate(True)
            self.setCheckState(Qt.CheckState.PartiallyChecked)

    def _on_state(self, state: int) -> None:
        if self._other is not _NOT_SET and state != Qt.CheckState.PartiallyChecked.value:
            self._other = _NOT_SET  # a person chose: a bool again
            self.setTristate(False)

    def nextCheckState(self) -> None:  # a click goes to checked or not, never half
        self.setTristate(False)
        super().nextCheckState()

    def connect_changed(self, slot) -> None:
        self.stateChanged.connect(slot)


class _LineEdit(QLineEdit):
    def connect_changed(self, slot) -> None:
        self.textEdited.connect(slot)


class NumberEdit(_LineEdit):
    """A number as text (1e-3 stays readable); empty means None when `allow_none`."""

    def __init__(self, kind: str = "", allow_none: bool = False, placeholder: str = "") -> None:
        super().__init__()
        self.kind, self.allow_none = kind, allow_none
        self.setPlaceholderText(placeholder or ("none" if allow_none else ""))
        self.setMaximumWidth(130)

    def value(self) -> Any:
        return parse_number(self.text(), self.kind, self.allow_none)

    def set_value(self, value: Any) -> None:
        self.setText(number_text(value) if not isinstance(value, str) else value)


class ListEdit(_LineEdit):
    """Numbers separated by commas ("-15, 15"); empty means None when `allow_none`, else
    an empty list."""

    def __init__(self, kind: str = "", allow_none: bool = False) -> None:
        super().__init__()
        self.kind, self.allow_none = kind, allow_none
        self.setPlaceholderText("none" if allow_none else "e.g. 1, 2")
        self.setMaximumWidth(180)

    def value(self) -> Any:
        text = self.text().strip()
        if not text and self.allow_none:
            return None
        if text.startswith("["):  # typed as JSON
            return _json_or_text(text)
        return parse_list(text, self.kind)

    def set_value(self, value: Any) -> None:
        self.setText("" if value is None else list_text(value))


class NestedListEdit(_LineEdit):
    """A list of lists of numbers, one list per level: [[16], [32, 48]] shows as
    "16; 32, 48". JSON ("[[16], [32]]" or "[16], [32]") is read too."""

    def __init__(self, kind: str = "int", allow_none: bool = False) -> None:
        super().__init__()
        self.kind, self.allow_none = kind, allow_none
        self.setPlaceholderText("e.g. 16; 32; 64 (levels split by ';')")
        self.setMinimumWidth(180)

    def value(self) -> Any:
        text = self.text().strip()
        if not text:
            return None if self.allow_none else []
        if "[" in text:
            return _json_or_text(text if text.startswith("[[") else f"[{text}]")
        return [parse_list(level, self.kind) for level in text.split(LEVELS)]

    def set_value(self, value: Any) -> None:
        if value is None:
            self.setText("")
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (list, tuple))
                                                      for v in value):
            self.setText(f"{LEVELS} ".join(list_text(level) for level in value))
        else:  # not the shape this field takes: shown as it is, for the engine to name
            self.setText(json.dumps(value) if not isinstance(value, str) else value)


class TextEdit(_LineEdit):
    """Free text; empty means None when `allow_none`."""

    def __init__(self, allow_none: bool = False) -> None:
        super().__init__()
        self.allow_none = allow_none
        if allow_none:
            self.setPlaceholderText("none")

    def value(self) -> Any:
        text = self.text()
        return None if not text and self.allow_none else text

    def set_value(self, value: Any) -> None:
        self.setText("" if value is None else str(value))


class JsonEdit(_LineEdit):
    """Any value as JSON; a bare word is a string ("auto"), empty is None when
    `allow_none`. Text that is not JSON stays text for the engine to name."""

    def __init__(self, allow_none: bool = False) -> None:
        super().__init__()
        self.allow_none = allow_none
        self.setPlaceholderText("none" if allow_none else "JSON")
        self.setMinimumWidth(180)

    def value(self) -> Any:
        text = self.text().strip()
        if not text and self.allow_none:
            return None
        return _json_or_text(text)

    def set_value(self, value: Any) -> None:
        if value is None and self.allow_none:
            self.setText("")
        elif isinstance(value, str) and _json_or_text(value) == value:
            self.setText(value)  # a word reads back as itself
        else:
            self.setText(json.dumps(value))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ChoiceEdit(QComboBox):
    """One of fixed values, each shown with a label (None is a choice like any other)."""

    def __init__(self, choices: Sequence[tuple[Any, str]] = ()) -> None:
        super().__init__()
        self.set_choices(choices)

    def set_choices(self, choices: Sequence[tuple[Any, str]]) -> None:
        """New choices; the current value stays chosen if it is one of them."""
        current = self.value()
        self.blockSignals(True)
        self.clear()
        for value, label in choices:
            self.addItem(label, value)
        index = self._index(current)
        if index >= 0:
            self.setCurrentIndex(index)
        self.blockSignals(False)

    def _index(self, value: Any) -> int:
        for i in range(self.count()):
            data = self.itemData(i)
            if data == value and type(data) is type(value):  # 1 is not True, 3 is not 3.0
                return i
        return -1

    def value(self) -> Any:
        return self.currentData() if self.count() else None

    def set_value(self, value: Any) -> None:
        index = self._index(value)
        if index < 0:  # a value from a loaded file the list lacks: kept (and visible) for
            self.addItem(choice_label(value), value)  # the engine to name
            index = self.count() - 1
        self.setCurrentIndex(index)

    def connect_changed(self, slot) -> None:
        self.currentIndexChanged.connect(slot)


def choice_label(value: Any) -> str:
    return "none" if value is None else str(value).replace("_", " ")


def editor_for(spec) -> Any:
    """The editor of an engine field spec (`studio.ml.config.FieldSpec`), by its kind."""
    kind, optional = spec.kind, bool(spec.optional)
    if kind == "bool":
        return BoolEdit()
    if kind in ("int", "float"):
        return NumberEdit(kind, allow_none=optional)
    if kind in ("int_list", "float_list"):
        return ListEdit(kind.split("_")[0], allow_none=optional)
    if kind == "int_list_list":
        return NestedListEdit("int", allow_none=optional)
    if kind == "enum":
        choices = tuple(spec.choices)
        if optional and None not in choices:
            choices = (None, *choices)
        return ChoiceEdit([(c, choice_label(c)) for c in choices])
    if kind == "str":
        return TextEdit(allow_none=optional)
    return JsonEdit(allow_none=optional)


def spec_tip(spec, fallback: str = "") -> str:
    """The tooltip of a field: its help, unit, bounds and what empty means."""
    parts = [spec.help or fallback]
    unit = f" {spec.unit}" if spec.unit else ""
    bounds = spec.bounds_text() if hasattr(spec, "bounds_text") else _bounds(spec)
    if bounds:
        parts.append(f"Values {bounds}{unit}.")
    elif unit:
        parts.append(f"In {spec.unit}.")
    if spec.min_len is not None or spec.max_len is not None:
        if spec.min_len == spec.max_len:
            parts.append(f"Exactly {spec.min_len} values.")
        elif spec.max_len is None:
            parts.append(f"At least {spec.min_len} values.")
        else:
            parts.append(f"{spec.min_len or 0} to {spec.max_len} values.")
    if spec.kind == "int_list_list":
        parts.append("One list per level, levels split by ';' (e.g. 16; 32; 64).")
    if spec.optional and spec.kind not in ("bool", "enum"):
        parts.append("Empty: none.")
    return " ".join(p for p in parts if p)


def _bounds(spec) -> str:
    lo, hi = spec.minimum, spec.maximum
    if lo is not None and hi is not None:
        return f"in [{number_text(lo)}, {number_text(hi)}]"
    if lo is not None:
        return f"at least {number_text(lo)}"
    return f"at most {number_text(hi)}" if hi is not None else ""
