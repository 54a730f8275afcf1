"""Object detection: boxes (from box, polygon and mask objects); instance segmentation
shares this code with masks on.

This package holds the task's facts (`DETECTION`, importable without torch) and its code
in modules imported by name: `.data` turns a project's objects into torchvision detection
targets, `.metrics` scores predictions with COCO mAP, `.matching` pairs predictions with
ground truth, `.predict` turns model outputs into results and model-sourced annotations,
`.export` writes TorchScript/ONNX. The detectors are in `studio.ml.models.detection`; the
task object is `studio.ml.tasks.registry.DetectionTask`.
"""

from __future__ import annotations

from studio.core.rasterize import REGION_KINDS
from studio.ml.tasks.info import TaskInfo

DETECTION = TaskInfo(
    "detection", kinds=("box", *REGION_KINDS),
    metrics=("box_map50", "box_map", "box_map75", "box_ar100"),
    is_detection=True, section="detection",
    missing_labels="no image has a box, polygon or mask object", unit="objects",
    label_noun="box, polygon or mask objects")
