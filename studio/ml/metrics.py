"""Metrics for training and evaluation: one import point for both tasks.

Classification lives in :mod:`studio.ml.tasks.classification.metrics`, segmentation (overlap, boundary,
Hausdorff; definitions in its docstring) in :mod:`studio.ml.tasks.semantic.metrics`.
"""

from studio.ml.tasks.classification.metrics import (
    ClassificationMeter,
    classification_metrics,
    confusion_matrix,
    metrics_from_confusion,
)
from studio.ml.tasks.semantic.metrics import (
    BoundaryAccumulator,
    SegmentationMeter,
    pixel_metrics_from_confusion,
    segmentation_metrics,
)

__all__ = [
    "BoundaryAccumulator",
    "ClassificationMeter",
    "SegmentationMeter",
    "classification_metrics",
    "confusion_matrix",
    "metrics_from_confusion",
    "pixel_metrics_from_confusion",
    "segmentation_metrics",
]
