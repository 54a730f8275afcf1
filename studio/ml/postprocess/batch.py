"""Recipes applied to a run's predictions of many images, and post-processed masks stored
in the project as model-sourced annotations (source ``model:<run>``, image marked for
review). The CLI's ``postprocess`` and ``predict --postprocess`` and the GUI's batch job
and "accept into labels" all come through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import ConfigError, DataError
from studio.core.fileio import atomic_write_bytes
from studio.core.formats.base import unique_name
from studio.core.geometry import MaskGeom
from studio.core.rasterize import REGION_KINDS
from studio.ml.loop import stop_requested
from studio.ml.postprocess.labels import UNLABELLED
from studio.ml.postprocess.pipeline import apply_recipe
from studio.ml.postprocess.recipe import NEEDS_IMAGE, validate_recipe
from studio.ml.tasks import task_of


def model_source(run_id: int) -> str:
    return f"model:{run_id}"


def needs_image(recipe: dict) -> bool:
    return any(s["enabled"] and s["op"] in NEEDS_IMAGE for s in validate_recipe(recipe)["steps"])


def postprocess_result(recipe: dict, result, image: np.ndarray | None = None) -> np.ndarray:
    """The post-processed label map of a semantic `PredictionResult` (the image is read
    from ``result.image`` when the recipe needs it and none is given)."""
    if not task_of(result.task).label_map:
        raise ConfigError("Post-processing recipes apply to semantic segmentation; this run "
                          f"does {result.task}.")
    if image is None and needs_image(recipe):
        from studio.ml.datasets import decode

        image = decode(result.image, 3)
    return apply_recipe(recipe, result.probabilities, image=image)


def store_label_map(project, image_id: int, labels: np.ndarray, class_ids: Sequence[int],
                    source: str) -> None:
    """Replace the image's annotations from `source` by one mask per class in `labels`
    (value = position in `class_ids`, 255 = unlabelled, left out), in one transaction,
    marking the image for review when it stores any."""
    labels = np.asarray(labels)
    img = project.image(image_id)
    if labels.shape != (img.height, img.width):
        raise ConfigError(f"The mask ({labels.shape[1]}x{labels.shape[0]}) does not match "
                          f"image {image_id} ({img.width}x{img.height}).")
    present = [int(v) for v in np.unique(labels) if v != UNLABELLED]
    bad = [v for v in present if v >= len(class_ids)]
    if bad:
        raise ConfigError(f"The mask holds class index {bad[0]}, but only {len(class_ids)} "
                          "classes were given.")
    project.replace_model_annotations(image_id, source, [
        dict(class_id=int(class_ids[v]), kind="mask", geometry=MaskGeom.from_full(labels == v))
        for v in present])


@dataclass
class BatchSummary:
    images: int = 0
    written: list[str] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    skipped_labelled: list[int] = field(default_factory=list)  # had manual regions: left alone
    cancelled: bool = False


def postprocess_images(project, run_id: int, image_ids: Sequence[int], recipe: dict,
                       out: str | Path | None = None, store: bool = False,
                       device: str = "auto", which: str = "best",
                       progress: Callable[[int, int], None] | None = None,
                       stop=None) -> BatchSummary:
    """Predict `image_ids` with the run, apply `recipe`, and write each label map as a PNG
    into `out` and/or store it as ``model:<run>`` annotations (images that have regions
    from any other source are not overwritten; they are listed as skipped). `stop` (an
    Event or a callable) cancels between images; `progress(done, total)` after each."""
    from studio.ml.datasets import decode
    from studio.ml.predict import Predictor

    recipe = validate_recipe(recipe)
    if out is None and not store:
        raise ConfigError("Say where the masks go: an output folder, storing them in the "
                          "project, or both.")
    predictor = Predictor.from_run(project, run_id, which, device)
    if not task_of(predictor.meta["task"]).label_map:
        raise ConfigError(f"Run {run_id} is a {predictor.meta['task']} run; post-processing "
                          "applies to semantic segmentation.")
    class_ids = predictor.meta["class_ids"]
    source = model_source(run_id)
    summary = BatchSummary()
    used: set[str] = set()
    folder = Path(out) if out is not None else None
    for done, image_id in enumerate(image_ids, start=1):
        if stop_requested(stop):
            summary.cancelled = True
            break
        rec = project.image(int(image_id))
        if store and any(a.kind in REGION_KINDS and a.source != source
                         for a in project.annotations(rec.id)):
            summary.skipped_labelled.append(rec.id)
            if folder is None:
                continue
        image = decode(rec.abs_path, predictor.meta["channels"])
        result = predictor.predict_array(image, str(rec.abs_path), rec.id)
        labels = postprocess_result(recipe, result, image)
        if folder is not None:
            ok, buf = cv2.imencode(".png", labels)
            if not ok:
                raise DataError(f"Could not encode the mask of {rec.abs_path}.")
            target = folder / unique_name(f"{Path(rec.path).stem}.png", used, str(rec.id))
            atomic_write_bytes(target, buf.tobytes())
            summary.written.append(str(target))
        if store and rec.id not in summary.skipped_labelled:
            store_label_map(project, rec.id, labels, class_ids, source)
            summary.stored.append(rec.id)
        summary.images += 1
        if progress is not None:
            progress(done, len(image_ids))
    return summary
