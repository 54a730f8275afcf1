"""COCO mAP on crowded images: every object counted (maxDets from the data), the default
100-detection figures beside them, labelled."""

from __future__ import annotations

import pytest
import torch

from studio.ml.tasks.detection.metrics import COCO_MAX_DETS, DetectionMeter


def _grid(n: int, size: int = 6, step: int = 8, cols: int = 25) -> torch.Tensor:
    boxes = []
    for i in range(n):
        x, y = step * (i % cols), step * (i // cols)
        boxes.append([x, y, x + size, y + size])
    return torch.tensor(boxes, dtype=torch.float32)


def _meter(n: int, found: int, masks: bool = False) -> DetectionMeter:
    """One image of n objects; the model finds the first `found` of them exactly."""
    boxes = _grid(n)
    target = {"boxes": boxes, "labels": torch.ones(n, dtype=torch.int64),
              "size": torch.tensor([200, 200])}
    out = {"boxes": boxes[:found].clone(), "labels": torch.ones(found, dtype=torch.int64),
           "scores": torch.linspace(0.99, 0.5, found)}
    if masks:
        full = torch.zeros(n, 200, 200, dtype=torch.bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
            full[i, y0:y1, x0:x1] = True
        target["masks"] = full
        out["masks"] = full[:found, None].float()
    meter = DetectionMeter(1, ["nucleus"], masks=masks)
    meter.update([out], [target])
    return meter


def test_every_object_of_a_crowded_image_counts():
    report = _meter(300, 300, masks=True).report()
    for kind in ("box", "mask"):
        figures = report[kind]
        assert figures["max_dets"] == 300 and figures["most_objects"] == 300
        assert figures["map50"] == pytest.approx(1.0) and figures["ar_max"] == pytest.approx(1.0)
        # COCO's default counts 100 of the 300 found: recall and AP capped near 1/3
        assert figures["ar100"] == pytest.approx(100 / 300, abs=0.01)
        assert figures["map50_100"] < 0.4
    flat = _meter(300, 300).compute()
    assert flat["box_map50"] == pytest.approx(1.0)


def test_missed_objects_still_cost_when_counted_fully():
    figures = _meter(250, 150).report()["box"]
    assert figures["max_dets"] == 250
    assert figures["ar_max"] == pytest.approx(150 / 250, abs=0.01)
    assert figures["map50"] == pytest.approx(0.6, abs=0.02)


def test_sparse_images_keep_the_coco_default():
    figures = _meter(20, 20).report()["box"]
    assert figures["max_dets"] == COCO_MAX_DETS and figures["most_objects"] == 20
    assert figures["map50"] == figures["map50_100"] == pytest.approx(1.0)


def test_capacity_notes_say_when_an_image_holds_more_than_the_model_returns():
    from studio.ml.tasks.detection.metrics import capacity_notes

    report = _meter(250, 200).report()
    notes = capacity_notes(report, model_limit=200, predict_limit=100)
    assert len(notes) == 2
    assert "holds 250 objects" in notes[0] and "detections_per_image" in notes[0]
    assert "detection.max_detections" in notes[1]
    assert capacity_notes(report, model_limit=300, predict_limit=300) == []


def test_max_dets_comes_from_the_data_not_the_model():
    """A model returning more detections than the most crowded image holds is cut at that
    count, as every other model is: the measurement does not depend on the model."""
    n = 120
    boxes = _grid(n)
    extra = _grid(80) + 3.0  # misplaced, low-scoring
    target = {"boxes": boxes, "labels": torch.ones(n, dtype=torch.int64),
              "size": torch.tensor([200, 200])}
    out = {"boxes": torch.cat([boxes, extra]), "labels": torch.ones(n + 80, dtype=torch.int64),
           "scores": torch.cat([torch.linspace(0.99, 0.5, n), torch.full((80,), 0.1)])}
    meter = DetectionMeter(1, ["nucleus"])
    meter.update([out], [target])
    figures = meter.report()["box"]
    assert figures["max_dets"] == n and figures["most_objects"] == n
    assert figures["map50"] == pytest.approx(1.0)
