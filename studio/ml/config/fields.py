"""One field of a run configuration: `FieldSpec` (what a form builds its editor from) and
`check_value`, the one type-and-bounds check every field goes through.

A leaf module (no torch): the schema, the validator and the GUI's generated form read the
same specs. Kinds: "bool", "int", "float", "str", "enum", "int_list", "float_list",
"int_list_list" (e.g. anchor sizes per feature level) and "json" (a value with its own
check, such as ``normalize``). For lists, `minimum`/`maximum` bound every element and
`min_len`/`max_len` the list itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import ConfigError

KINDS = ("bool", "int", "float", "str", "enum", "int_list", "float_list", "int_list_list",
         "json")


@dataclass(frozen=True)
class FieldSpec:
    """A config field: where it sits in the JSON, its type, default, bounds and help."""

    path: str  # dotted path in the JSON config dict, e.g. "optimizer.lr"
    kind: str  # one of KINDS
    default: Any
    help: str  # one or two sentences: the form's tooltip
    unit: str = ""
    choices: tuple = ()  # for "enum" (may include None)
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None (JSON null) allowed
    min_len: int | None = None
    max_len: int | None = None
    # beyond the contract: strict bounds, a short label, the section it belongs to
    min_exclusive: bool = False  # the value must be greater than `minimum`
    max_exclusive: bool = False  # the value must be less than `maximum`
    label: str = ""  # a short name for the form's row
    section: str = ""  # model, data, loss, optimizer, schedule, training, hardware,
    # early_stopping, detection or augment: the RunConfig part it belongs to
    # a further check of the (type-checked) value: returns it (normalised) or raises
    # ConfigError; not part of what a form needs to know
    check: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r} for {self.path}")

    def bounds_text(self) -> str:
        """The allowed range in words, e.g. "in [0, 1)" or "at least 1" ("" if unbounded)."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return (f"in {'(' if self.min_exclusive else '['}{_num(lo)}, {_num(hi)}"
                    f"{')' if self.max_exclusive else ']'}")
        if lo is not None:
            return f"greater than {_num(lo)}" if self.min_exclusive else f"at least {_num(lo)}"
        if hi is not None:
            return f"less than {_num(hi)}" if self.max_exclusive else f"at most {_num(hi)}"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(spec: FieldSpec | str, what: str) -> ConfigError:
    """A ConfigError for field `spec` (or a path): "'path' must be ..." with the path set."""
    path = spec if isinstance(spec, str) else spec.path
    return ConfigError(f"'{path}' {what}", path=path)


def _scalar(spec: FieldSpec, value: Any, kind: str) -> Any:
    """Type and bounds of one number ("int" or "float")."""
    if kind == "int":
        if not is_int(value):
            raise fail(spec, f"must be a whole number{_in(spec)}, got {_show(value)}.")
    elif not is_number(value):
        raise fail(spec, f"must be a number{_in(spec)}, got {_show(value)}.")
    else:
        value = float(value)
    lo, hi = spec.minimum, spec.maximum
    if ((lo is not None and (value < lo or (spec.min_exclusive and value == lo)))
            or (hi is not None and (value > hi or (spec.max_exclusive and value == hi)))):
        raise fail(spec, f"must be {spec.bounds_text()}, got {_show(value)}.")
    return value


def _in(spec: FieldSpec) -> str:
    text = spec.bounds_text()
    return f" {text}" if text else ""


def _length(spec: FieldSpec, value: Any) -> list:
    if not isinstance(value, (list, tuple)):
        raise fail(spec, f"must be a list{_len_text(spec)}, got {_show(value)}.")
    n = len(value)
    if (spec.min_len is not None and n < spec.min_len) or (
            spec.max_len is not None and n > spec.max_len):
        raise fail(spec, f"must be a list{_len_text(spec)}, got {n} value(s).")
    return list(value)


def _len_text(spec: FieldSpec) -> str:
    lo, hi = spec.min_len, spec.max_len
    if lo is not None and lo == hi:
        return f" of {lo} value(s)"
    if lo is not None and hi is not None:
        return f" of {lo} to {hi} values"
    if lo:
        return f" of at least {lo} value(s)"
    if hi is not None:
        return f" of at most {hi} values"
    return ""


def _enum_has(choices: tuple, value: Any) -> bool:
    # True == 1 in Python: compare types too, so true is not the channel count 1
    return any(type(c) is type(value) and c == value for c in choices)


def check_value(spec: FieldSpec, value: Any) -> Any:
    """`value` checked against `spec`: the value (ints given for floats become floats,
    tuples lists) or a ConfigError naming `spec.path` and what to give instead."""
    if value is None:
        if spec.optional or (spec.kind == "enum" and None in spec.choices):
            return None
        raise fail(spec, f"needs a value ({_expect(spec)}); null is not allowed.")
    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail(spec, f"must be true or false, got {_show(value)}.")
    elif kind in ("int", "float"):
        value = _scalar(spec, value, kind)
    elif kind == "str":
        if not isinstance(value, str):
            raise fail(spec, f"must be text, got {_show(value)}.")
    elif kind == "enum":
        if not _enum_has(spec.choices, value):
            shown = ", ".join("null" if c is None else str(c) for c in spec.choices)
            raise fail(spec, f"must be one of: {shown}; got {_show(value)}.")
    elif kind in ("int_list", "float_list"):
        value = [_scalar(_element(spec), v, kind[:-5]) for v in _length(spec, value)]
    elif kind == "int_list_list":
        outer = _length(spec, value)
        inner = _element(spec)
        value = []
        for item in outer:
            if not isinstance(item, (list, tuple)) or not item:
                raise fail(spec, f"must be a list of lists of whole numbers, got "
                                 f"{_show(item)} in it.")
            value.append([_scalar(inner, v, "int") for v in item])
    if spec.check is not None:
        value = spec.check(value)
    return value


def _element(spec: FieldSpec) -> FieldSpec:
    """The spec an element of a list field is checked against (the message names the list)."""
    return FieldSpec(spec.path, "float", None, "", minimum=spec.minimum,
                     maximum=spec.maximum, min_exclusive=spec.min_exclusive,
                     max_exclusive=spec.max_exclusive)


def _expect(spec: FieldSpec) -> str:
    return {"bool": "true or false", "int": "a whole number", "float": "a number",
            "str": "text", "enum": "one of the choices", "int_list": "a list of whole numbers",
            "float_list": "a list of numbers", "int_list_list": "a list of lists",
            "json": "a value"}[spec.kind]
