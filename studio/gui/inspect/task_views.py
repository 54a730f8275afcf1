"""Which views the Inspect workspace gives a run, decided in one place by its task: how
the run is opened (its session), the browser's columns, the left tab it opens on,
whether the semantic tools (overlay bar, recipe, readouts, review queues) or the
detection panel show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.core.errors import ConfigError


def _open_pixels(project, run_id, split, budget, device, check, progress):
    from studio.ml.inspect.opening import open_session

    return open_session(project, run_id, split, budget, device, check=check, progress=progress)


def _open_objects(project, run_id, split, _budget, device, check, progress):
    from studio.ml.inspect.detections import open_detection_session

    return open_detection_session(project, run_id, split, device, check=check,
                                  progress=progress)


@dataclass(frozen=True)
class TaskViews:
    """The views of one task."""

    task: str
    open: Callable  # (project, run_id, split, budget, device, check, progress) -> session
    browser_headers: tuple[str, str, str]
    left_tab: str  # "images" or "confusion"
    semantic_tools: bool  # overlay bar, post-processing recipe, pixel readouts, Dice chart
    detection: bool  # sliders, objects list, box readouts, boxes on the canvas
    queues: bool  # review queues and pre-labels (jobs.InspectJobs)


TASK_VIEWS = {
    "classification": TaskViews("classification", _open_pixels,
                                ("Image", "p(label)", "Predicted"), "confusion", False, False,
                                True),
    "semantic": TaskViews("semantic", _open_pixels, ("Image", "Dice", "Dice post"), "images",
                          True, False, True),
    "detection": TaskViews("detection", _open_objects, ("Image", "F1", "Errors"), "images",
                           False, True, False),
    "instance": TaskViews("instance", _open_objects, ("Image", "F1", "Errors"), "images",
                          False, True, False),
}


def views_for(task: str) -> TaskViews:
    views = TASK_VIEWS.get(task)
    if views is None:
        raise ConfigError(f"Runs of task {task!r} cannot be inspected; inspect a "
                          f"{', '.join(TASK_VIEWS)} run.")
    return views
