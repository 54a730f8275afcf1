"""Semantic segmentation: one class per pixel (a label map from polygon and mask regions).

The task's facts (`SEMANTIC`); its meter is `.metrics` beside this file. Shared code:
data `studio.ml.datasets`; criterion `studio.ml.losses`; whole-image windows: `studio.ml.inference`; prediction:
`studio.ml.predict.Predictor.segment_logits`; post-processing: `studio.ml.postprocess`.
Its task object is `studio.ml.tasks.registry.SemanticTask`.
"""

from __future__ import annotations

from studio.core.rasterize import REGION_KINDS
from studio.ml.tasks.info import TaskInfo

SEMANTIC = TaskInfo(
    "semantic", kinds=tuple(REGION_KINDS),
    metrics=("mean_iou", "mean_dice", "pixel_accuracy", "mean_precision", "mean_recall"),
    label_map=True, missing_labels="no image has a polygon or mask region", unit="images",
    label_noun="polygon or mask regions")
