"""A recipe applied to many images' predictions: mask files named without collisions and
stored masks marked for review (the run's model replaced by one whose answer is known)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.ml import predict
from studio.ml.postprocess import default_recipe
from studio.ml.postprocess.batch import postprocess_images


class _HalfPredictor:
    """Predicts class 1 on the left half of every image, class 0 on the right."""

    meta = {"task": "semantic", "class_ids": [], "channels": 3}

    def predict_array(self, image, path, image_id):
        h, w = image.shape[:2]
        fg = np.zeros((h, w), np.float32)
        fg[:, : w // 2] = 1
        return predict.PredictionResult(path, image_id, "semantic", ["bg", "fg"],
                                        np.stack([1 - fg, fg]))


@pytest.fixture
def half_model(project, monkeypatch):
    model = _HalfPredictor()
    model.meta = {**model.meta, "class_ids": [project.add_class("bg"), project.add_class("fg")]}
    monkeypatch.setattr(predict.Predictor, "from_run",
                        classmethod(lambda cls, *a, **k: model))
    return model


def test_masks_of_images_whose_names_differ_only_in_case_get_their_own_files(
        project, make_image, tmp_path, half_model):
    a, _ = project.add_image(make_image("cell.png", 8, 10, seed=1, folder=tmp_path / "a"))
    b, _ = project.add_image(make_image("CELL.png", 8, 10, seed=2, folder=tmp_path / "b"))
    c, _ = project.add_image(make_image("cell.png", 8, 10, seed=3, folder=tmp_path / "c"))
    out = tmp_path / "masks"
    summary = postprocess_images(project, 1, [a, b, c], default_recipe(), out=out)
    names = sorted(p.name for p in out.iterdir())
    # one file per image even where the file system does not tell CELL from cell
    assert len({n.lower() for n in names}) == 3 == len(summary.written) == summary.images
    # the first keeps its name, the later ones take their image id
    assert names == sorted(["cell.png", f"CELL_{b}.png", f"cell_{c}.png"])
    for path in summary.written:
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert mask.shape == (8, 10) and (mask[:, :5] == 1).all() and (mask[:, 5:] == 0).all()


def test_stored_masks_replace_the_runs_own_and_mark_the_image_for_review(
        project, make_image, tmp_path, half_model):
    bg, fg = half_model.meta["class_ids"]
    a, _ = project.add_image(make_image("a.png", 8, 10, seed=1))
    b, _ = project.add_image(make_image("b.png", 8, 10, seed=2))
    project.set_status([a, b], "done")
    manual = project.add_annotation(b, fg, "polygon", [(1, 1), (6, 1), (6, 5)])
    for _ in range(2):  # a second batch replaces the first one's masks
        summary = postprocess_images(project, 4, [a, b], default_recipe(), store=True)
        assert summary.stored == [a] and summary.skipped_labelled == [b]
    anns = project.annotations(a)
    assert sorted(x.class_id for x in anns) == [bg, fg]
    assert {(x.kind, x.source) for x in anns} == {("mask", "model:4")}
    assert project.image(a).status == "review" and project.pending_model_images() == {a}
    assert [x.id for x in project.annotations(b)] == [manual]
    assert project.image(b).status == "done"
