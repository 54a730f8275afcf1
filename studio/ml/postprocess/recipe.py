"""Post-processing recipes: an ordered list of cleaning steps with their parameters.

A recipe is plain JSON::

    {"version": 1, "task": "semantic", "background": 0,
     "steps": [{"op": "crf", "enabled": false, ...}, {"op": "threshold", ...}, ...]}

``background`` is the index of the background class (pixels a step removes from a class
become background), or null when there is none (removed pixels become unlabelled, 255).
Each step has ``op``, ``enabled`` and the parameters of its op (see ``STEP_DEFAULTS``);
missing parameters take their defaults, unknown ones are an error. Steps run in order.
Probability steps (``crf``) must come before ``threshold``; label steps come after it
(a recipe without a threshold step starts from the plain argmax). The same recipe gives
the same masks in the GUI, the CLI and batch jobs: they all call :func:`apply_recipe` or
:class:`RecipeRunner`.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

from studio.core.errors import ConfigError
from studio.core.fileio import atomic_write_bytes
from studio.ml.tasks import TASK

RECIPE_VERSION = 1
# The default recipe has 8 steps; each step may cost up to seconds per image at its
# parameter limits (a 255 px kernel, 100 iterations), so the length is bounded too: 100
# such morphology steps took minutes on three 64 x 64 images.
MAX_STEPS = 24
MORPH_OPERATIONS = ("erode", "dilate", "open", "close")
KERNEL_SHAPES = ("ellipse", "rect", "cross")

# Every op with its parameters and defaults; `enabled` is False where the step would
# change the masks, so the default recipe is plain argmax.
STEP_DEFAULTS: dict[str, dict[str, Any]] = {
    "crf": {"iterations": 5, "smooth_sigma": 3.0, "smooth_weight": 1.0,
            "bilateral_sigma": 40.0, "color_sigma": 15.0, "bilateral_weight": 5.0},
    "threshold": {"mode": "argmax", "min_confidence": 0.0, "thresholds": 0.5},
    "hysteresis": {"high": 0.8, "low": 0.4, "classes": None},
    "superpixels": {"region_size": 16, "compactness": 10.0, "iterations": 10, "mode": "vote"},
    "morphology": {"operation": "open", "kernel_size": 3, "shape": "ellipse", "iterations": 1,
                   "classes": None},
    "components": {"min_size": 0, "keep_largest": 0, "connectivity": 8, "classes": None},
    "fill_holes": {"max_area": 64, "classes": None},
}
PROBABILITY_OPS = ("crf",)  # rewrite probabilities: before the threshold
NEEDS_IMAGE = ("crf", "superpixels")


def _semantic(task: Any) -> bool:
    """Whether `task` (a name read from a recipe or a command line) labels pixels: the
    one task recipes exist for."""
    info = TASK.get(task) if isinstance(task, str) else None
    return info is not None and info.label_map


def default_recipe(task: str = "semantic") -> dict[str, Any]:
    """A complete recipe with every step; only the (no-op) argmax threshold is enabled."""
    if not _semantic(task):
        raise ConfigError(f"Post-processing recipes are for semantic segmentation; task "
                          f"{task!r} has none (use --task semantic).")
    order = [("crf", {}), ("threshold", {}), ("hysteresis", {}), ("superpixels", {}),
             ("morphology", {"operation": "open"}), ("morphology", {"operation": "close"}),
             ("components", {}), ("fill_holes", {})]
    steps = []
    for op, override in order:
        step = {"op": op, "enabled": op == "threshold", **copy.deepcopy(STEP_DEFAULTS[op])}
        step.update(override)
        steps.append(step)
    return {"version": RECIPE_VERSION, "task": "semantic", "background": 0, "steps": steps}


# --- validation ----------------------------------------------------------------------------
def _num(step: dict, key: str, where: str, *, lo: float | None = None, hi: float | None = None,
         integer: bool = False, lo_open: bool = False) -> None:
    v = step[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and integer:
        ok = float(v).is_integer()
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        rng = []
        if lo is not None:
            rng.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            rng.append(f"<= {hi:g}")
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: '{key}' must be {kind}{' ' + ' and '.join(rng) if rng else ''}"
                          f", got {v!r}.")
    if integer:
        step[key] = int(v)
    else:
        step[key] = float(v)


def _classes(step: dict, where: str) -> None:
    v = step.get("classes")
    if v is None:
        return
    if not isinstance(v, list) or not all(isinstance(c, int) and not isinstance(c, bool)
                                          and 0 <= c < 255 for c in v):
        raise ConfigError(f"{where}: 'classes' must be null (all classes but the background) "
                          f"or a list of class indices 0..254, got {v!r}.")


def _choice(step: dict, key: str, allowed, where: str) -> None:
    if step[key] not in allowed:
        raise ConfigError(f"{where}: '{key}' must be one of {', '.join(map(str, allowed))}, "
                          f"got {step[key]!r}.")


def _p(kind: str, lo=None, hi=None, *, ui_max=None, lo_open: bool = False, choices=None,
       nullable: bool = False) -> dict[str, Any]:
    return {"kind": kind, "min": lo, "max": hi, "min_open": lo_open, "choices": choices,
            "nullable": nullable, "ui_max": ui_max if ui_max is not None else hi}


# What each parameter may be: kind ("int", "float", "choice", "classes", "thresholds"),
# bounds (min_open: the minimum itself is excluded), choices, whether null is allowed, and
# `ui_max`, a sensible upper end for a slider where the value itself is unbounded.
STEP_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "crf": {"iterations": _p("int", 1, 100, ui_max=20),
            "smooth_sigma": _p("float", 0, None, lo_open=True, ui_max=20),
            "smooth_weight": _p("float", 0, None, ui_max=20),
            "bilateral_sigma": _p("float", 0, None, lo_open=True, ui_max=200),
            "color_sigma": _p("float", 0, None, lo_open=True, ui_max=100),
            "bilateral_weight": _p("float", 0, None, ui_max=20)},
    "threshold": {"mode": _p("choice", choices=("argmax", "per_class")),
                  "min_confidence": _p("float", 0, 1),
                  "thresholds": _p("thresholds", 0, 1)},
    "hysteresis": {"high": _p("float", 0, 1), "low": _p("float", 0, 1),
                   "classes": _p("classes", nullable=True)},
    "superpixels": {"region_size": _p("int", 2, 1000, ui_max=100),
                    "compactness": _p("float", 0, None, lo_open=True, ui_max=100),
                    "iterations": _p("int", 1, 100, ui_max=20),
                    "mode": _p("choice", choices=("vote", "mean"))},
    "morphology": {"operation": _p("choice", choices=MORPH_OPERATIONS),
                   "kernel_size": _p("int", 1, 255, ui_max=31),
                   "shape": _p("choice", choices=KERNEL_SHAPES),
                   "iterations": _p("int", 1, 100, ui_max=10),
                   "classes": _p("classes", nullable=True)},
    "components": {"min_size": _p("int", 0, None, ui_max=10000),
                   "keep_largest": _p("int", 0, None, ui_max=100),
                   "connectivity": _p("choice", choices=(4, 8)),
                   "classes": _p("classes", nullable=True)},
    "fill_holes": {"max_area": _p("int", 1, None, ui_max=10000, nullable=True),
                   "classes": _p("classes", nullable=True)},
}


def _check_step(step: dict, where: str) -> None:
    for key, spec in STEP_PARAMETERS[step["op"]].items():
        kind = spec["kind"]
        if step[key] is None and spec["nullable"]:
            continue
        if kind in ("int", "float"):
            _num(step, key, where, lo=spec["min"], hi=spec["max"], integer=kind == "int",
                 lo_open=spec["min_open"])
        elif kind == "choice":
            _choice(step, key, spec["choices"], where)
        elif kind == "classes":
            _classes(step, where)
        else:  # thresholds: one number or one per class
            t = step[key]
            values = t if isinstance(t, list) else [t]
            if not values or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                     and 0 <= x <= 1 for x in values):
                raise ConfigError(f"{where}: 'thresholds' must be one number in 0..1 or a "
                                  f"list of them (one per class), got {t!r}.")
            step[key] = [float(x) for x in t] if isinstance(t, list) else float(t)
    if step["op"] == "hysteresis" and step["low"] > step["high"]:
        raise ConfigError(f"{where}: 'low' ({step['low']:g}) must not exceed 'high' "
                          f"({step['high']:g}).")


def validate_recipe(recipe: Any) -> dict[str, Any]:
    """A checked, complete copy of `recipe` (defaults filled in); ConfigError if it is wrong."""
    if not isinstance(recipe, dict):
        raise ConfigError("A post-processing recipe must be a JSON object with 'steps'; print "
                          "one with: studio-cli postprocess --print-default-recipe --task semantic.")
    unknown = set(recipe) - {"version", "task", "background", "steps"}
    if unknown:
        raise ConfigError(f"The recipe has unknown keys: {', '.join(sorted(unknown))}.")
    version = recipe.get("version", RECIPE_VERSION)
    if version != RECIPE_VERSION:
        raise ConfigError(f"Recipe version {version!r} is not supported (this version reads "
                          f"{RECIPE_VERSION}).")
    task = recipe.get("task", "semantic")
    if not _semantic(task):
        raise ConfigError(f"The recipe is for task {task!r}; recipes exist for 'semantic' only.")
    background = recipe.get("background", 0)
    if background is not None and not (isinstance(background, int)
                                       and not isinstance(background, bool)
                                       and 0 <= background < 255):
        raise ConfigError(f"'background' must be a class index 0..254 or null, got {background!r}.")
    steps = recipe.get("steps")
    if not isinstance(steps, list):
        raise ConfigError("The recipe needs 'steps': a list of steps such as "
                          "{\"op\": \"threshold\", \"enabled\": true}.")
    if len(steps) > MAX_STEPS:
        raise ConfigError(f"The recipe has {len(steps)} steps; at most {MAX_STEPS} are allowed "
                          "(the default recipe has 8). Merge repeated steps: one morphology step "
                          "with more iterations does the work of several.")
    out_steps = []
    seen_threshold = False
    for i, raw in enumerate(steps):
        where = f"recipe step {i + 1}"
        if not isinstance(raw, dict) or raw.get("op") not in STEP_DEFAULTS:
            op = raw.get("op") if isinstance(raw, dict) else raw
            raise ConfigError(f"{where}: unknown op {op!r}; use one of "
                              f"{', '.join(STEP_DEFAULTS)}.")
        op = raw["op"]
        where = f"recipe step {i + 1} ({op})"
        extra = set(raw) - set(STEP_DEFAULTS[op]) - {"op", "enabled"}
        if extra:
            raise ConfigError(f"{where}: unknown parameters {', '.join(sorted(extra))}; it takes "
                              f"{', '.join(STEP_DEFAULTS[op])}.")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: 'enabled' must be true or false, got {enabled!r}.")
        step = {"op": op, "enabled": enabled, **copy.deepcopy(STEP_DEFAULTS[op])}
        step.update({k: copy.deepcopy(v) for k, v in raw.items() if k not in ("op", "enabled")})
        _check_step(step, where)
        if enabled and op == "threshold":
            if seen_threshold:
                raise ConfigError(f"{where}: a recipe may enable one threshold step only.")
            seen_threshold = True
        if enabled and op in PROBABILITY_OPS and seen_threshold:
            raise ConfigError(f"{where}: '{op}' works on probabilities, so it must come before "
                              "the threshold step.")
        out_steps.append(step)
    return {"version": RECIPE_VERSION, "task": "semantic", "background": background,
            "steps": out_steps}


# --- JSON ----------------------------------------------------------------------------------
def recipe_to_json(recipe: dict) -> str:
    return json.dumps(validate_recipe(recipe), indent=2)


def recipe_from_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"The recipe is not valid JSON: {exc}.") from exc
    return validate_recipe(data)


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the recipe file {p}: {exc.strerror}.") from exc
    try:
        return recipe_from_json(text)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc


def save_recipe(recipe: dict, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, (recipe_to_json(recipe) + "\n").encode("utf-8"))


# --- stored with the run -----------------------------------------------------------------
RUN_RECIPE_NAME = "postprocess.json"


def run_recipe_path(project, run_id: int) -> Path:
    """Where a run keeps the recipe tuned on it: ``postprocess.json`` in its run folder."""
    project.run(run_id)  # NotFoundError for an unknown run
    return project.run_dir(run_id) / RUN_RECIPE_NAME


def save_run_recipe(project, run_id: int, recipe: dict) -> Path:
    path = run_recipe_path(project, run_id)
    save_recipe(recipe, path)
    return path


def load_run_recipe(project, run_id: int) -> dict[str, Any] | None:
    """The recipe stored with the run, or None when none was saved."""
    path = run_recipe_path(project, run_id)
    return load_recipe(path) if path.is_file() else None
