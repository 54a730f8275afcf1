"""Strict JSON: NaN and infinities (which the standard forbids) become null."""

from __future__ import annotations

import json
import math


def json_safe(value):
    """A copy of `value` where every non-finite float is None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def nan_for_none(value):
    """The inverse of `json_safe` for numbers read back: every None becomes NaN,
    recursively (use where None only ever stood for a missing figure)."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: nan_for_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_for_none(v) for v in value]
    return value


def dumps_strict(value, **kwargs) -> str:
    """json.dumps that other tools can always parse (metrics may hold NaN for absent classes)."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)
