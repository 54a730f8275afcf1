"""Configs at the edges: the one reader of config files (JSON or YAML, bounded), the deep
merge, the resume rule (what a resumed run may change) and the model-options rule.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from studio.core.errors import ConfigError
from studio.ml.config.defaults import default_model_options
from studio.ml.config.schema import get_path

MAX_BYTES = 1_000_000  # a complete config is about 5 KB
MAX_DEPTH = 32  # a complete config nests 3 levels deep
MAX_NODES = 100_000  # values after YAML aliases are expanded

# what `--resume` (and the window's Resume) may change; everything else is the checkpoint's
RESUME_OVERRIDES = ("epochs", "device", "num_workers", "cpu_threads", "early_stopping",
                    "val_every")


def merge(base: dict, override: dict) -> dict:
    """Deep merge: nested dicts combine, every other value of `override` wins."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_yaml(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def load_config_text(text: str | bytes, name: str = "") -> dict:
    """The config dict held by `text` (JSON, or YAML when `name` ends in .yaml/.yml; a
    name with neither suffix is read as JSON, else YAML). Bounded: at most MAX_BYTES,
    MAX_DEPTH levels and MAX_NODES values once YAML aliases are expanded (a 2 KB alias bomb
    is refused in milliseconds); text that is not UTF-8 is a ConfigError, as is anything
    but one object."""
    what = name or "the config"
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{what} is {len(text):,} bytes; a config is at most "
                          f"{MAX_BYTES:,}. Is it the right file?")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what} is not UTF-8 text (byte 0x{text[exc.start]:02x} at "
                              f"position {exc.start}); save it as UTF-8.") from None
    yaml_first = _is_yaml(name)
    try:
        if yaml_first:
            data = _load_yaml(text, what)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                if name.lower().endswith(".json"):
                    raise ConfigError(f"{what} is not valid JSON: {exc}.") from None
                data = _load_yaml(text, what)
    except RecursionError:
        raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels.") from None
    _check_shape(data, what)
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold one object (a dict of options), not "
                          f"{type(data).__name__}.")
    return data


def _load_yaml(text: str, what: str) -> Any:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, what)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{what} is not valid YAML: {first}.") from None
    finally:
        loader.dispose()


def _count_nodes(root, what: str) -> None:
    """Nodes after alias expansion and depth of a composed YAML document, counted without
    expanding (each shared node is counted once per use through a memo)."""
    import yaml

    memo: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def walk(node) -> tuple[int, int]:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise ConfigError(f"{what} refers to itself (a YAML alias inside its own anchor).")
        active.add(key)
        count, depth = 1, 0
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            c, d = walk(child)
            count, depth = count + c, max(depth, d)
            if count > MAX_NODES:
                raise ConfigError(f"{what} expands to more than {MAX_NODES:,} values (YAML "
                                  "aliases repeated inside each other?); a config is far "
                                  "smaller.")
        active.discard(key)
        memo[key] = (count, depth + 1)
        if depth + 1 > MAX_DEPTH:
            raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels.")
        return memo[key]

    walk(root)


def _check_shape(data: Any, what: str) -> None:
    """Depth and size of a loaded value (JSON has no aliases, but can nest deeply)."""
    stack = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(f"{what} nests deeper than {MAX_DEPTH} levels.")
        if count > MAX_NODES:
            raise ConfigError(f"{what} holds more than {MAX_NODES:,} values; a config is "
                              "far smaller.")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _leaves(cfg: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, path + ".")
        else:
            out.append((path, value))
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resume_overrides(stored: dict, new: dict) -> tuple[dict, list[str]]:
    """The config a resumed run trains with: `stored` (the checkpoint's) with what a resume
    may change taken from `new` (epochs, device, num_workers, cpu_threads, early_stopping,
    val_every), and one note for each other value of `new` that differs and is kept, e.g.
    "model stays resnet18 (the checkpoint's)"."""
    new = new or {}
    task = stored.get("task")
    if new.get("task", task) != task:  # another task's settings fit none of the run's
        return dict(stored), [f"task stays {task} (the checkpoint's): the settings given "
                              f"are for {new['task']}, so none of them apply"]
    overrides = {k: v for k, v in new.items() if k in RESUME_OVERRIDES}
    complete = _complete(stored)
    notes = []
    for path, value in _leaves({k: v for k, v in new.items() if k not in RESUME_OVERRIDES}):
        kept = get_path(complete, path, KeyError)
        if kept is KeyError:
            notes.append(f"{path} is ignored (the checkpoint's config has no such option)")
        elif kept != value:
            notes.append(f"{path} stays {_show(kept)} (the checkpoint's)")
    return merge(stored, overrides), notes


def _complete(stored: dict) -> dict:
    """`stored` with every default filled in (and the model's own option defaults), so a
    value left out of an older config compares as what it means."""
    from studio.ml.config.validate import validate_config
    from studio.ml.models.registry import get_spec

    try:
        run = validate_config(stored)
    except ConfigError:  # compare with what is there
        return stored
    out = run.to_dict()
    out["model_options"] = {**get_spec(run.model.name).default_options, **run.model.options}
    return out


def apply_model_options(cfg: dict, model_name: str) -> dict:
    """`cfg` with model `model_name` and the options it then has: the task's tuned options
    for its default model, otherwise the model's own defaults ("model_options" replace the
    defaults; they never carry over from another model)."""
    from studio.ml.models.registry import get_spec

    task = cfg.get("task", "classification")
    out = copy.deepcopy(cfg)
    out["model"] = model_name
    spec = get_spec(model_name)
    out["model_options"] = {**copy.deepcopy(spec.default_options),
                            **default_model_options(task, model_name)}
    return out
