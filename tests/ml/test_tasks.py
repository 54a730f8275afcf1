"""The task objects: each of the four tasks answers for itself (facts in `TaskInfo`,
behaviour in the registry), and the facts agree with the engine that uses them."""

from __future__ import annotations

import pytest
import torch

from studio.core.errors import ConfigError
from studio.ml.builders import DetectionCriterion
from studio.ml.config import default_config, validate_config
from studio.ml.metrics import ClassificationMeter, SegmentationMeter
from studio.ml.tasks import TASK, TASKS, task_kinds, task_of
from studio.ml.tasks.detection.metrics import DetectionMeter
from studio.ml.tasks.registry import TASK as TASK_OBJECTS
from studio.ml.tasks.registry import task


def test_every_task_has_one_info_and_one_task_object():
    assert TASKS == ("classification", "semantic", "detection", "instance")
    assert tuple(TASK_OBJECTS) == TASKS
    for name in TASKS:
        assert task_of(name) is TASK[name] and task(name).info is TASK[name]
        assert task(name).name == name  # the info's facts read on the object
    # exactly one kind of output per task
    for info in TASK.values():
        assert info.image_label + info.label_map + info.is_detection == 1, info
        assert not info.has_masks or info.is_detection


def test_facts_of_each_task():
    cls, sem, det, ins = (TASK[t] for t in TASKS)
    assert cls.kinds == ("tag",) and task_kinds("semantic") == ("polygon", "mask")
    assert "box" in det.kinds and "box" not in ins.kinds  # boxes alone have no mask
    assert ins.has_masks and not det.has_masks
    assert det.section == ins.section == "detection" and cls.section is sem.section is None
    assert (det.unit, sem.unit) == ("objects", "images")


def test_unknown_task_is_a_config_error_with_its_path():
    with pytest.raises(ConfigError, match="Unknown task 'segmentation'") as err:
        task_of("segmentation")
    assert err.value.path == "task"
    with pytest.raises(ConfigError):
        task(None)


@pytest.mark.parametrize("name", TASKS)
def test_selection_metric_is_the_default_configs_early_stopping_metric(name):
    run = validate_config(default_config(name))
    assert run.early_stopping.metric == task_of(name).selection_metric
    assert run.is_detection == task_of(name).is_detection
    assert (run.detection is not None) == (task_of(name).section == "detection")


@pytest.mark.parametrize("name,meter", [("classification", ClassificationMeter),
                                        ("semantic", SegmentationMeter),
                                        ("detection", DetectionMeter),
                                        ("instance", DetectionMeter)])
def test_each_task_builds_its_meter_criterion_and_batch_augment(name, meter):
    run = validate_config(default_config(name))
    obj = task(name)
    m = obj.meter(3, ["a", "b", "c"])
    assert isinstance(m, meter)
    if meter is DetectionMeter:
        assert m.masks == task_of(name).has_masks
    criterion = obj.criterion(run, 3)
    if task_of(name).is_detection:
        assert isinstance(criterion, DetectionCriterion) and criterion.loss_fn is None
        assert obj.batch_augment(run, 3) is None
    else:
        logits = torch.zeros(2, 3) if name == "classification" else torch.zeros(2, 3, 4, 4)
        target = torch.tensor([0, 1]) if name == "classification" else torch.zeros(
            2, 4, 4, dtype=torch.long)
        assert torch.isfinite(criterion.loss_fn(logits, target))
    # a plain model validated on crops is called as is; whole label maps go by windows
    net = torch.nn.Identity()
    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    if not task_of(name).is_detection:
        assert obj.eval_forward(net, run, norm, False) is None
    if task_of(name).label_map:
        assert callable(obj.eval_forward(net, run, norm, True))


def test_each_task_object_predicts_through_its_own_predictor_method():
    """`Predictor.predict_array` asks the run's task: each task calls its own method."""

    class Recorder:
        def __init__(self):
            self.calls = []

        def __getattr__(self, method):
            return lambda *args: self.calls.append((method, args)) or method

    expected = {"classification": "classify_image", "semantic": "segment",
                "detection": "detect", "instance": "detect"}
    for name in TASKS:
        predictor = Recorder()
        assert task(name).predict(predictor, "img", "a.png", 7) == expected[name]
        assert predictor.calls == [(expected[name], ("img", "a.png", 7))]
