"""Image classification: one class tag per image.

The task's facts (`CLASSIFICATION`); its meter is `.metrics` beside this file. Shared
code: data `studio.ml.datasets`, criterion `studio.ml.losses`, prediction
`studio.ml.predict.Predictor.classify`. Its task object is
`studio.ml.tasks.registry.ClassificationTask`.
"""

from __future__ import annotations

from studio.ml.tasks.info import TaskInfo

CLASSIFICATION = TaskInfo(
    "classification", kinds=("tag",),
    metrics=("accuracy", "macro_f1", "macro_precision", "macro_recall", "micro_f1",
             "weighted_f1"),
    image_label=True, missing_labels="no image has a class tag", unit="images",
    label_noun="class tags")
