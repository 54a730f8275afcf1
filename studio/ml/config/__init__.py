"""The typed run configuration: schema, defaults, one loader, one validator.

A run's config travels as JSON at the edges (files, the CLI, the project store, the Train
form) and as a `RunConfig` inside the engine:

* `default_config(task, variant)`: the complete JSON defaults of a task;
* `validate_config(cfg, project)`: every field checked, a `RunConfig` (or a ConfigError
  whose `.path` names the field, e.g. ``"optimizer.lr"``);
* `config_fields(task, config)`: a `FieldSpec` per field (type, default, bounds, unit,
  help), the model's options included: what the form is generated from;
* `load_config_text(text, name)`: the one reader of JSON and YAML config files;
* `resume_overrides(stored, new)` and `apply_model_options(cfg, model)`: the rules of a
  resume and of switching models, so no caller restates them.
"""

from __future__ import annotations

from typing import Any

from studio.ml.config.defaults import (
    VARIANTS,
    default_augment,
    default_config,
    default_model_options,
    field_default,
    recommended_variant,
    task_overrides,
)
from studio.ml.config.fields import FieldSpec, check_value
from studio.ml.config.io import (
    RESUME_OVERRIDES,
    apply_model_options,
    load_config_text,
    merge,
    resume_overrides,
)
from studio.ml.config.options import augment_specs, option_spec
from studio.ml.config.schema import (
    LOSS_NAMES,
    METRICS,
    OPTIMIZERS,
    SCHEDULERS,
    DataConfig,
    DetectionConfig,
    EarlyStoppingConfig,
    HardwareConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainingConfig,
    get_path,
    schema_fields,
    task_spec,
)
from studio.ml.config.validate import (
    DETECTION_UNSUPPORTED_AUGMENT,
    check_project,
    validate_config,
)
from studio.ml.tasks import TASKS

__all__ = [
    "DETECTION_UNSUPPORTED_AUGMENT", "LOSS_NAMES", "METRICS", "OPTIMIZERS", "RESUME_OVERRIDES", "SCHEDULERS", "VARIANTS",
    "DataConfig", "DetectionConfig", "EarlyStoppingConfig", "FieldSpec", "HardwareConfig",
    "LossConfig", "ModelConfig", "OptimizerConfig", "RunConfig", "ScheduleConfig",
    "TrainingConfig", "apply_model_options", "get_path", "check_project", "check_value",
    "config_fields", "default_config", "load_config_text", "merge", "recommended_variant",
    "resume_overrides", "validate_config",
]


def config_fields(task: str, config: dict | None = None) -> list[FieldSpec]:
    """Every field of `task`'s config, in schema order, each with the task's default.

    The model's options (``model_options.<name>``) are those of the model `config` names
    (else the task's default model), with the defaults that model gets in a config of this
    task; the augmentation fields follow (``augment.<op>.enabled`` and its parameters).
    """
    overrides = task_overrides(task)
    out: list[FieldSpec] = [FieldSpec(
        "task", "enum", task, "What the model learns: a class per image (classification), a "
        "class per pixel (semantic), boxes (detection) or masks per object (instance).",
        choices=TASKS, label="Task")]
    model = (config or {}).get("model") or field_default(task, "model", overrides=overrides)
    for attr, f in schema_fields(task):
        spec = f.metadata["spec"]
        if spec.path == "model_options":
            out += model_option_fields(task, model)
            continue
        default = field_default(task, spec.path, overrides=overrides)
        out.append(task_spec(f, task, default, attr))
    out += augment_specs(default_augment(task))
    return out


def model_option_fields(task: str, model: str) -> list[FieldSpec]:
    """A FieldSpec per option of `model`, defaulting to what a `task` config gives it."""
    from studio.ml.models.registry import get_spec

    spec = get_spec(model)
    defaults: dict[str, Any] = {**spec.default_options, **default_model_options(task, model)}
    return [option_spec(model, key, value) for key, value in defaults.items()]
