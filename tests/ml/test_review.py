"""Review queues: planted label errors rank first; uncertain unlabelled images rank first."""

from __future__ import annotations

import numpy as np
import pytest
from testutil import FAST_TRAINING, write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.crossval import assign_folds
from studio.ml.fit import fit
from studio.ml.review import (
    classification_error,
    entropy_scores,
    label_error_queue,
    next_to_label_queue,
    segmentation_error,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_scores_on_known_probabilities():
    assert classification_error(np.array([0.1, 0.7, 0.2]), 0) == pytest.approx((0.9, 1, 0.2))
    target = np.zeros((4, 4), np.uint8)
    target[:, 2:] = 1
    probs = np.stack([1.0 - target, target.astype(float)]).astype(np.float32)
    assert segmentation_error(probs, target)[0] == pytest.approx(0.0)
    erased = target.copy()
    erased[:, 3] = 0  # a stripe of class 1 missing from the label
    score, proposed, low = segmentation_error(probs, erased)
    assert score > 0.1 and proposed == 1 and low == pytest.approx(4 / 16)
    sure, unsure = entropy_scores(np.array([0.98, 0.01, 0.01])), entropy_scores(np.ones(3) / 3)
    assert unsure[0] == pytest.approx(1.0) and sure[0] < 0.2 and sure[2] > unsure[2]
    patchy = np.zeros((2, 64, 64), np.float32)
    patchy[0] = 1
    patchy[:, :8, :8] = 0.5
    mean, worst, _ = entropy_scores(patchy)
    assert worst == pytest.approx(1.0) and mean < 0.05


def test_folds_are_stratified_and_cover_every_image_once():
    ids = list(range(100, 130))
    labels = [i % 3 for i in range(30)]
    groups = assign_folds(ids, labels, 5)
    assert sorted(i for g in groups for i in g) == ids and len(groups) == 5
    for g in groups:
        assert sorted(labels[ids.index(i)] for i in g) == [0, 0, 1, 1, 2, 2]


def digits_project(project, shared_datasets, tmp_path, wrong: dict[int, int]):
    """Digits 0, 1 and 7 (16 train + 4 val each); `wrong` maps a train index to a wrong tag."""
    root = shared_datasets / "sklearn_digits" / "images"
    classes = {d: project.add_class(str(d)) for d in (0, 1, 7)}
    files = {d: sorted((root / str(d)).glob("*.png"))[:20] for d in classes}
    planted = []
    for d, paths in files.items():
        for k, path in enumerate(paths):
            iid, _ = project.add_image(path, split="train" if k < 16 else "val")
            tag = d
            index = list(classes).index(d) * 16 + k
            if k < 16 and index in wrong:
                tag = wrong[index]
                planted.append(iid)
            project.add_annotation(iid, classes[tag], "tag", None)
    return planted


DIGIT_CFG = {"task": "classification", "image_size": 8, "batch_size": 4, "epochs": 20,
             "channels": 1, "optimizer": {"lr": 1e-2}, "augment": {"hflip": {"enabled": False}},
             "model_options": {"width": 8, "depth": 2, "fc": [16]}, **FAST_TRAINING}


def test_planted_digit_tag_errors_rank_first(project, shared_datasets, tmp_path):
    planted = digits_project(project, shared_datasets, tmp_path, {2: 1, 20: 7, 40: 0})
    run = fit(project, DIGIT_CFG).run_id
    queue = label_error_queue(project, run, folds=3, device="cpu")
    top = queue.entries[:3]
    assert {e.image_id for e in top} == set(planted)
    assert all(e.source.startswith("fold") and e.proposed != e.given for e in top)
    assert queue.cost.folds == 3 and queue.cost.by_folds == 48 and queue.cost.by_run == 12
    assert "cross-validation" in queue.cost.describe()
    assert len(project.runs()) == 1  # fold runs removed
    val_only = label_error_queue(project, run, split="val", device="cpu")
    assert val_only.cost.folds == 0 and len(val_only.entries) == 12


def membrane_project(project, tmp_path, n=6, size=32):
    """Bright cells between dark 2-px membranes; image 0's label misses one membrane."""
    bg, membrane = project.add_class("cell"), project.add_class("membrane")
    rng = np.random.default_rng(3)
    ids = []
    for i in range(n):
        mask = np.zeros((size, size), bool)
        for pos in rng.choice(np.arange(4, size - 4), 3, replace=False):
            mask[:, pos:pos + 2] = True
        for pos in rng.choice(np.arange(4, size - 4), 2, replace=False):
            mask[pos:pos + 2, :] = True
        img = np.where(mask, 50, 200) + rng.normal(0, 8, (size, size))
        iid, _ = project.add_image(write_png(tmp_path / "img" / f"m{i}.png",
                                             np.clip(img, 0, 255).astype(np.uint8)),
                                   split="train" if i < n - 1 else "val")
        label = mask.copy()
        if i == 0:
            cols = np.nonzero(mask.all(axis=0))[0]
            label[:, cols[:2]] = False  # a membrane stripe erased from the label
        project.add_annotation(iid, membrane, "mask", MaskGeom.from_full(label))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~label))
        ids.append(iid)
    return ids


SEG_CFG = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 12,
           "samples_per_image": 4, "optimizer": {"lr": 1e-2},
           "model_options": {"depth": 2, "width": 8}, **FAST_TRAINING}


def test_erased_membrane_stripe_ranks_first_and_unlabelled_by_uncertainty(project, tmp_path):
    ids = membrane_project(project, tmp_path)
    run = fit(project, SEG_CFG).run_id
    queue = label_error_queue(project, run, folds=2, device="cpu")
    assert queue.entries[0].image_id == ids[0]
    assert queue.entries[0].proposed == "membrane" and queue.entries[0].source.startswith("fold")
    assert queue.entries[0].score > queue.entries[1].score + 0.03
    # next to label: a plain cell image is easy, a noise image is not
    easy = np.full((32, 32), 200, np.uint8)
    easy[:, 10:12] = 50
    hard = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.uint8)
    easy_id, _ = project.add_image(write_png(tmp_path / "img" / "easy.png", easy), split="none")
    hard_id, _ = project.add_image(write_png(tmp_path / "img" / "hard.png", hard), split="none")
    nxt = next_to_label_queue(project, run, device="cpu")
    assert [e.image_id for e in nxt.entries] == [hard_id, easy_id]
    assert nxt.entries[0].score > nxt.entries[1].score and "max_cell_entropy" in nxt.entries[0].details
    assert next_to_label_queue(project, run, split="val").entries == []
    with pytest.raises(ConfigError, match="Unknown split"):
        next_to_label_queue(project, run, split="holdout")
