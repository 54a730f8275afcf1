"""Detection (boxes) and instance segmentation (masks): data, metrics and prediction.

The models live in :mod:`studio.ml.models.detection` and are registered with the other
models; this package turns a project's objects into torchvision detection targets
(:mod:`.data`), scores predictions with COCO mAP (:mod:`.metrics`) and turns model outputs
into results, COCO result files and model-sourced annotations (:mod:`.predict`).
"""
