"""The run config as a form, generated from the engine's field specs.

A `ConfigForm` holds one `Field` per dotted config path ("optimizer.lr",
"model_options.anchor_sizes"), its editor chosen by the spec's kind
(`studio.gui.train.editors`). `set_specs` makes the fields of the engine's
`config_fields(task, config)`; panels place the rows (`add_placer`), and fields no panel
takes go to a catch-all, so every field of the task's config is in the window.

`load(cfg)` fills the editors, `apply(cfg)` writes them back: a path the loaded config
lacks (a model's options left to the model's own defaults) is written back absent unless
its value was changed, so loading a config and reading it back gives the same config. Errors are put beside the
field the engine's ConfigError names by its `path`; recommended values carry their reason
until a person changes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.core.errors import ConfigError
from studio.gui.train.editors import (
    BoolEdit,
    ChoiceEdit,
    ListEdit,
    NestedListEdit,
    NumberEdit,
    choice_label,
    editor_for,
    list_text,
    number_text,
    spec_tip,
)
from studio.gui.train.tips import label_for, tip
from studio.ml.config import get_path  # the engine's reader of dotted paths

ERROR_STYLE = "color: #c0392b;"
REASON_STYLE = "color: #2c6e49; font-style: italic;"
CHANGED_STYLE = "color: #8a5a00; font-style: italic;"

__all__ = ["BoolEdit", "ChoiceEdit", "ConfigForm", "Field", "FieldGroup", "ListEdit", "NestedListEdit",
           "NumberEdit", "error_path", "get_path", "set_path", "value_text"]

_MISSING = object()
OPTIONS = "model_options"  # the section of the chosen model's own options


@functools.lru_cache(maxsize=64)
def task_fields(task: str, model: str | None = None) -> tuple:
    """The engine's field specs of `task` (with `model`'s options), asked once per pair:
    they depend on nothing else, and a task or model switch should not wait on them."""
    from studio.gui.train.backend import config_fields

    return tuple(config_fields(task, {"task": task, "model": model} if model else None))


def set_path(cfg: dict, path: str, value: Any = _MISSING) -> None:
    """Set `path` in `cfg`, making its parent sections; with no value, only the parents."""
    keys = path.split(".")
    node = cfg
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is not _MISSING:
        node[keys[-1]] = value


def error_path(error: Any) -> str | None:
    """The config path a ConfigError is about (None for other errors and plain text)."""
    return getattr(error, "path", None) if isinstance(error, ConfigError) else None


def value_text(value: Any) -> str:
    """A value as a person reads it beside a field."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            return "; ".join(list_text(v) for v in value)
        return list_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_text(value)
    return choice_label(value) if value is None or isinstance(value, str) else str(value)


@dataclass
class Reason:
    """Why a value was recommended, and the values it was given for."""
    text: str
    values: dict[str, Any]


class Field:
    """An editor with its path and spec, its label, and the lines under it that show its
    error and the reason of a recommended value."""

    def __init__(self, path: str, editor: QWidget, tip_text: str, spec=None,
                 generated: bool = False) -> None:
        self.path, self.editor, self.spec, self.generated = path, editor, spec, generated
        self.present = True  # whether the loaded config has this path
        self.shown: Any = None  # the value shown for a path the config lacked
        self.reasons: list[Reason] = []
        self.label = QLabel(getattr(spec, "label", "") or label_for(path))
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
        self.set_tip(tip_text)

    def set_tip(self, text: str) -> None:
        for widget in (self.editor, self.row, self.label):
            widget.setToolTip(text)

    def discard(self) -> None:
        for widget in (self.label, self.row):
            widget.hide()
            widget.setParent(None)
            widget.deleteLater()


Placer = Callable[[list[Field]], Iterable[str]]


def _same_editor(a, b) -> bool:
    """Whether specs `a` and `b` take the same editor (their defaults and help may differ)."""
    return (a is not None and a.kind == b.kind and tuple(a.choices) == tuple(b.choices)
            and bool(a.optional) == bool(b.optional))


def matches(path: str, members: Iterable[str]) -> bool:
    """Whether `path` is one of `members` ("epochs") or under one ending in "." ("loss.")."""
    return any(path == m or (m.endswith(".") and path.startswith(m)) for m in members)


class FieldGroup(QGroupBox):
    """A titled box of field rows; `members` are the paths (or "section." prefixes) it
    shows, in the order the fields come."""

    def __init__(self, title: str, members: Iterable[str] = (), hide_empty: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.members = tuple(members)
        self.hide_empty = hide_empty
        self.rows = QFormLayout(self)
        self.paths: list[str] = []
        self._shown: list[tuple[str, QWidget]] | None = None  # None: nothing placed yet

    def take(self, fields: list[Field], everything: bool = False) -> list[str]:
        """Show the fields it is for (all of `fields` with `everything`); their paths."""
        mine = [f for f in fields if everything or matches(f.path, self.members)]
        if not everything:  # in the order of the members
            order = {f.path: next(i for i, m in enumerate(self.members)
                                  if matches(f.path, (m,))) for f in mine}
            mine.sort(key=lambda f: order[f.path])
        if [(f.path, f.row) for f in mine] == self._shown:
            return self.paths  # the same rows: nothing to move
        self._shown = [(f.path, f.row) for f in mine]
        while self.rows.rowCount():
            self.rows.takeRow(0)  # the widgets live on: placed again below or discarded
        for field in mine:
            self.rows.addRow(field.label, field.row)
        self.paths = [f.path for f in mine]
        if self.hide_empty:
            self.setVisible(bool(mine))
        return self.paths


class ConfigForm(QObject):
    """The fields of every panel, by config path."""

    changed = Signal(str)  # path of the field a person changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, Field] = {}
        self._placers: list[Placer] = []
        self._catch_all: Placer | None = None
        self._loading = False

    # --- fields -------------------------------------------------------------------------
    def add(self, path: str, editor: QWidget, tip_text: str | None = None) -> Field:
        """A field a panel makes and keeps (e.g. the model list, whose choices it fills)."""
        field = Field(path, editor, tip(path) if tip_text is None else tip_text)
        self._register(field)
        return field

    def _register(self, field: Field) -> None:
        self.fields[field.path] = field
        path = field.path
        field.editor.connect_changed(lambda *_: self._on_edit(path))

    def set_specs(self, specs, within: Callable[[str], bool] = lambda _p: True) -> None:
        """Make the fields of `specs` (the engine's FieldSpecs); generated fields `within`
        the given paths that the specs no longer name are dropped. A panel's own field
        of the same path keeps its editor and takes the spec's tooltip."""
        specs = [s for s in specs if within(s.path)]
        wanted = {s.path for s in specs}
        for path, field in list(self.fields.items()):
            if field.generated and within(path) and path not in wanted:
                field.discard()
                del self.fields[path]
        ordered: dict[str, Field] = {p: f for p, f in self.fields.items() if not within(p)}
        for spec in specs:
            field = self.fields.get(spec.path)
            if field is not None and (not field.generated or _same_editor(field.spec, spec)):
                if field.generated and field.spec != spec:  # e.g. another task's default
                    self._loading = True
                    try:
                        field.editor.set_value(spec.default)
                    finally:
                        self._loading = False
                field.spec = spec
                field.set_tip(spec_tip(spec, tip(spec.path)))
            else:
                if field is not None:
                    field.discard()
                editor = editor_for(spec)
                editor.set_value(spec.default)
                field = Field(spec.path, editor, spec_tip(spec, tip(spec.path)), spec,
                              generated=True)
                self._register(field)
            ordered[spec.path] = field
        for path, field in self.fields.items():  # a panel's own fields the specs lack
            ordered.setdefault(path, field)
        self.fields = ordered
        self.place()

    def add_placer(self, placer: Placer, catch_all: bool = False) -> None:
        """`placer(fields)` puts the rows it wants in its panel and returns their paths;
        the catch-all placer gets the fields no other placer took."""
        if catch_all:
            self._catch_all = placer
        else:
            self._placers.append(placer)

    def place(self) -> None:
        left = list(self.fields.values())
        for placer in self._placers:
            taken = set(placer(left))
            left = [f for f in left if f.path not in taken]
        if self._catch_all is not None:
            self._catch_all(left)

    def _on_edit(self, path: str) -> None:
        if self._loading:
            return
        field = self.fields.get(path)
        if field is None:
            return
        field.present = True
        field.error.hide()
        self._refresh_reasons(path)
        self.changed.emit(path)

    # --- values ---------------------------------------------------------------------------
    def load(self, cfg: dict) -> None:
        """Show `cfg`: every field takes its value; a field whose path `cfg` lacks keeps
        its editor's (default) value and is written back absent."""
        self._fill(cfg, partial=False)

    def update(self, values: dict) -> None:
        """Show the values `values` holds (e.g. an augmentation preset); others stay."""
        self._fill(values, partial=True)

    def _fill(self, cfg: dict, partial: bool) -> None:
        self._loading = True
        try:
            for path, field in list(self.fields.items()):
                value = get_path(cfg, path, _MISSING)
                if value is not _MISSING:
                    field.editor.set_value(value)
                    field.present = True
                elif not partial:
                    field.present = False
                    field.shown = field.editor.value()
        finally:
            self._loading = False

    def apply(self, cfg: dict) -> dict:
        """Write every field's value into `cfg` (in place) and return it; a field whose
        path the loaded config lacked only makes sure its section exists. The model's
        options are the fields' alone: options of a model chosen before are dropped."""
        if "model" in self.fields:  # the chosen model's options, none of another's
            given = cfg.get(OPTIONS) if isinstance(cfg.get(OPTIONS), dict) else {}
            cfg[OPTIONS] = {k: v for k, v in given.items() if f"{OPTIONS}.{k}" in self.fields}
        for path, field in self.fields.items():
            value = field.editor.value()
            if field.present or value != field.shown:  # set, or changed since shown
                set_path(cfg, path, value)
            else:
                set_path(cfg, path)
                parent, _, key = path.rpartition(".")
                node = get_path(cfg, parent) if parent else cfg
                node.pop(key, None)
        return cfg

    def values(self, prefix: str) -> dict[str, Any]:
        """The editors' values under `prefix` ("model_options."), keyed by the rest."""
        return {p[len(prefix):]: f.editor.value() for p, f in self.fields.items()
                if p.startswith(prefix)}

    # --- errors -------------------------------------------------------------------------
    def clear_errors(self) -> None:
        for field in self.fields.values():
            field.error.hide()

    def field_for_path(self, path: str | None) -> str | None:
        """The field showing errors about `path`: that field, else the field holding it
        ("model_options.anchor_sizes[2]"), else the first field of a section ("loss")."""
        if not path:
            return None
        if path in self.fields:
            return path
        holders = [p for p in self.fields if path.startswith((p + ".", p + "["))]
        if holders:
            return max(holders, key=len)
        return next((p for p in self.fields if p.startswith(path + ".")), None)

    def show_error(self, error: Any) -> str | None:
        """Show an engine error beside the field its path names; returns that field's path
        (None when the error names no field of the form)."""
        self.clear_errors()
        path = self.field_for_path(error_path(error))
        if path is not None:
            field = self.fields[path]
            field.error.setText(str(error))
            field.error.show()
        return path

    # --- reasons of recommended values -----------------------------------------------------
    def show_reasons(self, reasons: dict[str, str]) -> dict[str, str]:
        """Put each reason under its field (a section's reason under its first field);
        returns the reasons no field shows. A reason holds while its values do: once a
        person changes one it says what was recommended instead."""
        self.clear_reasons()
        left = {}
        for path, text in reasons.items():
            targets = [path] if path in self.fields else [
                p for p in self.fields if p.startswith(path + ".")]
            if not targets:
                left[path] = text
                continue
            field = self.fields[targets[0]]
            field.reasons.append(Reason(text, {p: self.fields[p].editor.value()
                                               for p in targets}))
            self._show_reason(field)
        return left

    def clear_reasons(self) -> None:
        for field in self.fields.values():
            field.reasons = []
            field.reason.hide()
            field.reason.setText("")

    def reason_changed(self, path: str) -> bool:
        """Whether the values recommended with `path`'s reasons were changed."""
        field = self.fields[path]
        return any(self._changed(r) for r in field.reasons)

    def _changed(self, reason: Reason) -> bool:
        return any(p not in self.fields or self.fields[p].editor.value() != v
                   for p, v in reason.values.items())

    def _show_reason(self, field: Field) -> None:
        lines, changed = [], False
        for reason in field.reasons:
            if not self._changed(reason):
                lines.append(reason.text)
                continue
            changed = True
            if len(reason.values) == 1:
                was = value_text(next(iter(reason.values.values())))
            else:  # a section's reason: the values changed in it
                was = ", ".join(f"{self._label(p)} {value_text(v)}"
                                for p, v in reason.values.items()
                                if p not in self.fields or self.fields[p].editor.value() != v)
            lines.append(f"Changed from the recommended {was}.")
        field.reason.setText(" ".join(lines))
        field.reason.setStyleSheet(CHANGED_STYLE if changed else REASON_STYLE)
        field.reason.setVisible(bool(lines))

    def _label(self, path: str) -> str:
        field = self.fields.get(path)
        return field.label.text().lower() if field is not None else path.rsplit(".", 1)[-1]

    def _refresh_reasons(self, path: str) -> None:
        for field in self.fields.values():
            if any(path in r.values for r in field.reasons):
                self._show_reason(field)
