"""Promptable segmentation (click or box to mask) through osam on onnxruntime.

registry: the models offered (files, hashes, licences); weights: their files on disk
(install from file, download on request, hash checks); engine: the `PromptModel`
interface and its osam implementation; cache: embeddings in memory and on disk; batch:
boxes to masks over many images as one reversible job. No Qt here.
"""

from studio.ml.segment.engine import (
    EMBED_LONG_SIDE,
    Embedding,
    OsamPromptModel,
    PromptModel,
    available_devices,
    image_for_embedding,
    load_model,
)
from studio.ml.segment.registry import (
    DEFAULT_MODEL,
    ModelFile,
    ModelSpec,
    get_model_spec,
    list_models,
    register_model,
    unregister_model,
)

__all__ = [
    "DEFAULT_MODEL", "EMBED_LONG_SIDE", "Embedding", "ModelFile", "ModelSpec",
    "OsamPromptModel", "PromptModel", "available_devices", "get_model_spec",
    "image_for_embedding", "list_models", "load_model", "register_model", "unregister_model",
]
