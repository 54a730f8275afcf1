"""The one validator: a JSON config (partial or complete) in, a `RunConfig` out, or a
ConfigError whose `path` names the field (``"optimizer.lr"``, ``"model_options.fc"``).

Every field is checked by type and bounds (`check_value`); unknown keys are refused at
their path, at the top and inside every section; then the checks that involve several
fields (the model and its task, freezing without weights, test-time augmentation without
flips, what detection models cannot do). It runs before any run record exists.
"""

from __future__ import annotations

from typing import Any

from studio.core.errors import ConfigError
from studio.ml.config.defaults import (
    check_task,
    default_augment,
    default_model_options,
    field_default,
    task_overrides,
)
from studio.ml.config.fields import check_value, fail, is_number
from studio.ml.config.options import (
    augment_specs,
    check_section,
    coerce_augment,
    coerce_option,
    option_spec,
)
from studio.ml.config.schema import (
    SECTIONS,
    RunConfig,
    get_path,
    schema_fields,
    task_spec,
)
from studio.ml.tasks import DETECTION, task_class_ids, task_of

_MISSING = object()
# augmentations that would not move boxes and masks with the image
DETECTION_UNSUPPORTED_AUGMENT = ("elastic", "crop", "gaussian_noise", "cutout", "mixup",
                                 "cutmix", "sharpen")


def _known_paths(task: str) -> set[str]:
    return {f.metadata["spec"].path for _a, f in schema_fields(task)}


def _check_keys(cfg: dict, task: str) -> None:
    """Unknown keys, at the top level and inside each section, refused by path."""
    paths = _known_paths(task)
    top = {p.split(".")[0] for p in paths} | {"task", "augment"}
    sections = {p.split(".")[0] for p in paths if "." in p}
    for key in cfg:
        if key not in top:
            where = ("only detection and instance configs have one"
                     if key == DETECTION.section else "print a complete config with "
                     "`studio-cli train --print-default-config`")
            raise ConfigError(f"Unknown config option '{key}' for {task} ({where}).",
                              path=str(key))
    for section in [k for k in cfg if k in sections]:  # the first problem in file order
        check_section(cfg[section], section)
        for key in cfg[section]:
            if f"{section}.{key}" not in paths:
                raise ConfigError(_unknown_nested(section, key, task, paths),
                                  path=f"{section}.{key}")


def _unknown_nested(section: str, key: Any, task: str, paths: set[str]) -> str:
    valid = ", ".join(p.split(".", 1)[1] for p in sorted(paths) if p.startswith(section + "."))
    if section == "loss" and task_of(task).is_detection:
        return (f"'loss.{key}' does not apply to {task}: its models train on their own "
                f"losses, so 'loss' has only 'name' (\"model\"). Remove '{key}'.")
    return f"Unknown option '{section}.{key}'; '{section}' has: {valid}."


def validate_config(cfg: dict | RunConfig | None, project=None) -> RunConfig:
    """Check every value of `cfg` (missing ones take the task's defaults): the typed
    config, or a ConfigError naming the first problem and its field's path.

    With a project, also checks that the task has labels and the train split has images.
    """
    if isinstance(cfg, RunConfig):
        cfg = cfg.to_dict()
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ConfigError(f"A config is an object of options (a dict), got "
                          f"{type(cfg).__name__}.")
    task = check_task(cfg.get("task", "classification"))
    _check_keys(cfg, task)
    run = RunConfig(task=task)
    if task_of(task).is_detection:
        run.detection = SECTIONS["detection"]()
    overrides = task_overrides(task)
    for attr, f in schema_fields(task):
        spec = f.metadata["spec"]
        if spec.path == "model_options":
            continue
        value = get_path(cfg, spec.path, _MISSING)
        if value is _MISSING:
            value = field_default(task, spec.path, overrides=overrides)
        setattr(getattr(run, attr), f.name, check_value(task_spec(f, task, None), value))
    _model(run, cfg)
    run.augment = _augment(cfg.get("augment", _MISSING), task)
    _cross_checks(run)
    if project is not None:
        check_project(run, project)
    return run


def _model(run: RunConfig, cfg: dict) -> None:
    """The model, its task and options ("model_options" replace the task defaults' options,
    which belong to the default model; options left out take the model's own defaults)."""
    from studio.ml.models.registry import get_spec

    name = run.model.name
    try:
        spec = get_spec(name)
    except ConfigError as exc:
        raise ConfigError(str(exc), path="model") from None
    if spec.task != run.task:
        raise ConfigError(f"Model {name!r} is a {spec.task} model, but the task is "
                          f"{run.task!r}; choose one of the {run.task} models.", path="model")
    if "model_options" in cfg:
        given = check_section(cfg["model_options"], "model_options")
    else:
        given = default_model_options(run.task, name)
    options: dict[str, Any] = {}
    for key, value in given.items():
        if key not in spec.default_options:
            raise ConfigError(f"Model {name!r} has no option '{key}'; its options are: "
                              f"{', '.join(spec.default_options) or 'none'}.",
                              path=f"model_options.{key}")
        options[key] = check_value(option_spec(name, key, None), coerce_option(key, value))
    run.model.options = options
    if spec.check_options is not None:
        spec.check_options({**spec.default_options, **options})
    if run.data.image_size < spec.min_size:
        raise ConfigError(f"Model {name!r} needs images of at least {spec.min_size} px; "
                          f"'image_size' is {run.data.image_size}.", path="image_size")


def _augment(given: Any, task: str) -> dict:
    """The complete augmentation spec: every op and parameter checked at its path."""
    spec = default_augment(task)
    if given is _MISSING:
        return spec
    check_section(given, "augment")
    by_path = {s.path: s for s in augment_specs(spec)}
    for op, params in given.items():
        if op not in spec:
            raise ConfigError(f"Unknown augmentation 'augment.{op}'; the ops are: "
                              f"{', '.join(spec)}.", path=f"augment.{op}")
        check_section(params, f"augment.{op}")
        for key, value in params.items():
            path = f"augment.{op}.{key}"
            if path not in by_path:
                raise ConfigError(f"Augmentation '{op}' has no parameter '{key}'; it has: "
                                  f"{', '.join(spec[op])}.", path=path)
            spec[op][key] = check_value(by_path[path], coerce_augment(path, value))
    return spec


def _cross_checks(run: RunConfig) -> None:
    from studio.ml.models.registry import check_pretrained, get_spec

    model = run.model
    try:
        check_pretrained(get_spec(model.name), model.pretrained)
    except ConfigError as exc:
        raise ConfigError(str(exc), path="pretrained") from None
    if model.freeze_mode != "none" and model.pretrained is None:
        raise ConfigError("Freezing layers only makes sense with pretrained weights; set "
                          "'pretrained' or use freeze mode 'none'.", path="freeze.mode")
    run.data.normalize = _normalize(run.data.normalize)
    _device(run.hardware.device)
    weights = run.loss.class_weights
    if weights is not None and sum(weights) <= 0:
        raise fail("loss.class_weights", "must not be all zero: give each class a weight "
                                         "above 0, or null for equal weights.")
    aug = run.augment
    if task_of(run.task).is_detection:
        for op in DETECTION_UNSUPPORTED_AUGMENT:
            if aug[op]["enabled"]:
                raise ConfigError(f"Augmentation '{op}' is not available for {run.task} (it "
                                  "would not move boxes and masks with the image); set "
                                  f"'augment.{op}.enabled' to false.",
                                  path=f"augment.{op}.enabled")
        if run.training.tta and not get_spec(model.name).averages_flips:
            raise ConfigError(f"'tta' is not available for {model.name}: it cannot average "
                              "its prediction over flipped images (the instance U-Net "
                              "can); set it to false.", path="tta")
    if run.training.tta and not (aug["hflip"]["enabled"] or aug["vflip"]["enabled"]):
        raise ConfigError("'tta' averages predictions over the flips the model was trained "
                          "with, but augmentations 'hflip' and 'vflip' are both off; enable "
                          "one of them or set 'tta' to false.", path="tta")


def _normalize(norm: Any) -> Any:
    if isinstance(norm, str):
        if norm not in ("auto", "imagenet", "dataset"):
            raise fail("normalize", f"must be auto, imagenet, dataset or {{\"mean\": [...], "
                                    f"\"std\": [...]}}, got {norm!r}.")
        return norm
    if not isinstance(norm, dict) or not {"mean", "std"} <= set(norm) or set(norm) - {
            "mean", "std", "source"}:
        raise fail("normalize", "as an object needs 'mean' and 'std' lists (and nothing "
                                f"else but 'source'), got {norm!r}.")
    mean, std = norm["mean"], norm["std"]
    ok = (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std)
          and len(mean) in (1, 3) and all(is_number(v) for v in mean + std)
          and all(s > 0 for s in std))
    if not ok:
        raise fail("normalize", "needs 'mean' and 'std' lists of 1 or 3 numbers each, every "
                                f"std above 0; got {norm!r}.")
    out = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    if "source" in norm:
        out["source"] = str(norm["source"])
    return out


def _device(device: str) -> None:
    if device in ("auto", "cpu", "cuda", "mps"):
        return
    if device.startswith("cuda:") and device[5:].isdigit():
        return
    raise ConfigError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.",
                      path="device")


def check_project(run: RunConfig, project) -> None:
    """The project has labels for the task and images in the train split."""
    task = run.task
    class_ids = task_class_ids(project, task)
    if not class_ids:
        info = task_of(task)
        raise ConfigError(f"This project has no labels for {task}: {info.missing_labels}. "
                          f"Label some {info.unit} first.",
                          path="task")
    train = run.data.train_split
    if project.count_images(split=train) == 0:
        raise ConfigError(f"The '{train}' split has no images. Split the project first "
                          "(e.g. `studio-cli split PROJECT`), or choose another train split.",
                          path="splits.train")
