"""The engine names the Train workspace uses, in one place (imported in a worker first,
so torch loads off the GUI thread)."""

from __future__ import annotations

from studio.gui.settings import train_defaults
from studio.ml import augment_preview
from studio.ml.augment_presets import PRESETS, preset_spec
from studio.ml.config import (
    METRICS,
    apply_model_options,
    config_fields,
    load_config_text,
    merge,
    resume_overrides,
    validate_config,
)
from studio.ml.config import default_config as engine_defaults
from studio.ml.data_summary import summarize
from studio.ml.device_list import list_devices
from studio.ml.devices import amp_dtype_name
from studio.ml.evaluation import evaluate_run, stored_report
from studio.ml.fingerprint import labelled_tasks
from studio.ml.fit import fit
from studio.ml.models.registry import check_model, get_spec, list_models
from studio.ml.models.transfer import weights_file
from studio.ml.plan import recommend
from studio.ml.tasks import TASKS


def default_config(task: str, variant: str = "cpu") -> dict:
    """The engine's defaults with the settings' device and CPU threads (Edit > Settings)."""
    return {**engine_defaults(task, variant), **train_defaults()}


__all__ = [
    "METRICS", "PRESETS", "TASKS", "amp_dtype_name", "apply_model_options", "augment_preview",
    "check_model",
    "config_fields", "default_config", "evaluate_run", "fit", "get_spec", "labelled_tasks",
    "list_devices", "list_models", "load_config_text", "merge", "preset_spec", "recommend",
    "resume_overrides", "stored_report", "summarize", "validate_config", "weights_file",
]
