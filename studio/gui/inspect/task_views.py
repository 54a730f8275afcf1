"""Which views the Inspect workspace gives a run, decided in one place by its task: how
the run is opened (its session, in steps that stream), the browser's columns, the left tab it opens on,
whether the semantic tools (overlay bar, recipe, readouts, review queues) or the
detection panel show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.core.errors import ConfigError


def _stages_pixels():
    from studio.ml.inspect import opening as o

    return (lambda project, run_id, split, budget, device: o.prepare_session(
        project, run_id, split, budget, device), o.stream_predictions, o.finish_session)


def _stages_objects():
    from studio.ml.inspect import detections as d

    return (lambda project, run_id, split, _budget, device: d.prepare_detection_session(
        project, run_id, split, device), d.stream_detections, d.finish_detection_session)


@dataclass(frozen=True)
class TaskViews:
    """The views of one task."""

    task: str
    # () -> (prepare, stream, finish): how a run's session opens, in three steps (the
    # engine's modules load only when a run is opened): prepare(project, run_id, split,
    # budget, device) -> session listed, nothing predicted; stream(session, check,
    # on_image) predicts image by image; finish(session) ranks (and readouts) -> session
    stages: Callable
    browser_headers: tuple[str, str, str]
    left_tab: str  # "images" or "confusion"
    semantic_tools: bool  # overlay bar, post-processing recipe, pixel readouts, Dice chart
    detection: bool  # sliders, objects list, box readouts, boxes on the canvas
    queues: bool  # review queues and pre-labels (jobs.InspectJobs)


TASK_VIEWS = {
    "classification": TaskViews("classification", _stages_pixels,
                                ("Image", "p(label)", "Predicted"), "confusion", False, False,
                                True),
    "semantic": TaskViews("semantic", _stages_pixels, ("Image", "Dice", "Dice post"), "images",
                          True, False, True),
    "detection": TaskViews("detection", _stages_objects, ("Image", "F1", "Errors"), "images",
                           False, True, False),
    "instance": TaskViews("instance", _stages_objects, ("Image", "F1", "Errors"), "images",
                          False, True, False),
}


def views_for(task: str) -> TaskViews:
    views = TASK_VIEWS.get(task)
    if views is None:
        raise ConfigError(f"Runs of task {task!r} cannot be inspected; inspect a "
                          f"{', '.join(TASK_VIEWS)} run.")
    return views
