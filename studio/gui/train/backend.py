"""The engine names the Train workspace uses, in one place (imported in a worker first,
so torch loads off the GUI thread)."""

from __future__ import annotations

import importlib.util

from studio.ml import augment_preview
from studio.ml.augment_presets import PRESETS, preset_spec
from studio.ml.augment_spec import parameter_kinds
from studio.ml.config import METRICS, OPTIMIZERS, SCHEDULERS, default_config, validate_config
from studio.ml.data_summary import DataSummary, summarize
from studio.ml.device_list import list_devices
from studio.ml.evaluation import evaluate_run, stored_report
from studio.ml.fingerprint import labelled_tasks
from studio.ml.fit import fit
from studio.ml.losses import LOSS_NAMES
from studio.ml.models.registry import (
    ModelSpec,
    build_model,
    check_model,
    count_parameters,
    get_spec,
    list_models,
)
from studio.ml.models.transfer import weights_file
from studio.ml.tasks import FREEZE_MODES, RESIZE_POLICIES, TASKS

__all__ = [
    "FREEZE_MODES", "LOSS_NAMES", "METRICS", "OPTIMIZERS", "PRESETS", "RESIZE_POLICIES",
    "SCHEDULERS", "TASKS", "DataSummary", "ModelSpec", "augment_preview", "default_config",
    "evaluate_run", "stored_report", "fit", "labelled_tasks", "list_devices", "list_models", "parameter_kinds", "preset_spec",
    "summarize", "validate_config", "has_planner", "recommend", "build_model",
    "check_model", "count_parameters", "get_spec", "weights_file",
]


def has_planner() -> bool:
    """Whether the engine has the "recommended settings" planner (studio.ml.plan)."""
    return importlib.util.find_spec("studio.ml.plan") is not None


def recommend(project, task: str, mirror: bool | None, device: str):
    """The planner's recommendation: an object with `.config` and `.reasons`."""
    from studio.ml.plan import recommend as plan_recommend

    return plan_recommend(project, task=task, mirror=mirror, device=device)
