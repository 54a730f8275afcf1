"""Models: the registry (``build_model``) and transfer-learning helpers."""

from studio.ml.models.registry import (
    MODELS,
    ModelSpec,
    build_model,
    check_model,
    count_parameters,
    get_spec,
    list_models,
)
from studio.ml.models.transfer import (
    LoadReport,
    freeze,
    load_checkpoint_weights,
    optimizer_param_groups,
    parameter_groups,
    set_frozen_bn_eval,
    stages,
    unfreeze_all,
    weights_file,
)

__all__ = [
    "MODELS",
    "LoadReport",
    "ModelSpec",
    "build_model",
    "check_model",
    "count_parameters",
    "freeze",
    "get_spec",
    "list_models",
    "load_checkpoint_weights",
    "optimizer_param_groups",
    "parameter_groups",
    "set_frozen_bn_eval",
    "stages",
    "unfreeze_all",
    "weights_file",
]
