"""Project -> datasets: labels, ignore pixels, exclusions, statistics, cache, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.config import validate_config
from studio.ml.datasets import (
    ByteLRU,
    ProjectDataset,
    build_run_data,
    dataset_mean_std,
    make_loader,
    read_split,
)
from studio.ml.inference import FullImageTransform
from studio.ml.tasks import task_class_ids


def _image(tmp_path, name, arr):
    return write_png(tmp_path / "img" / name, arr)


def test_classification_source_labels_follow_class_order(project, tmp_path):
    a, b, unused = project.add_class("a"), project.add_class("b"), project.add_class("c")
    ids = []
    for i in range(5):
        iid, _ = project.add_image(_image(tmp_path, f"{i}.png", np.full((6, 6), i * 30, np.uint8)),
                                   split="train")
        ids.append(iid)
    project.add_annotation(ids[0], a, "tag", None)
    project.add_annotation(ids[1], b, "tag", None)
    project.add_annotation(ids[2], a, "tag", None)
    project.add_annotation(ids[2], b, "tag", None)  # the later tag wins
    # ids[3] has no tag, ids[4] only a box: both left out
    project.add_annotation(ids[4], a, "box", (0, 0, 2, 2))
    assert task_class_ids(project, "classification") == [a, b]
    source = read_split(project, "classification", "train", [b, a])
    assert [(s.image_id, s.label) for s in source.samples] == [(ids[0], 1), (ids[1], 0),
                                                               (ids[2], 0)]
    assert unused not in task_class_ids(project, "classification")


def test_semantic_label_maps_ignore_unlabelled_pixels(project, tmp_path):
    fg, bg = project.add_class("fg"), project.add_class("bg")
    img = np.zeros((10, 12), np.uint8)
    i1, _ = project.add_image(_image(tmp_path, "a.png", img), split="train")
    i2, _ = project.add_image(_image(tmp_path, "b.png", img + 1), split="train")
    i3, _ = project.add_image(_image(tmp_path, "c.png", img + 2), split="train")
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:7] = True
    project.add_annotation(i1, fg, "mask", MaskGeom.from_full(mask))
    project.add_annotation(i1, bg, "polygon", np.array([[0, 6], [12, 6], [12, 10], [0, 10]]))
    project.add_annotation(i3, fg, "tag", None)  # a tag is no region: i3 is left out
    source = read_split(project, "semantic", "train", [bg, fg])
    assert [s.image_id for s in source.samples] == [i1]
    ds = ProjectDataset(source, FullImageTransform([0.0], [1.0]), channels=1)
    x, y = ds[0]
    assert x.shape == (1, 10, 12) and y.dtype == torch.int64
    assert (y[2:5, 3:7] == 1).all()
    assert (y[6:, :] == 0).all()
    assert (y[0, :] == 255).all()  # neither region: ignored, not background
    assert i2 not in [s.image_id for s in source.samples]


def test_a_models_unreviewed_annotations_are_no_ground_truth(project, tmp_path):
    fg, bg = project.add_class("fg"), project.add_class("bg")
    ids = [project.add_image(_image(tmp_path, f"{i}.png", np.full((6, 6), i, np.uint8)),
                             split="train")[0] for i in range(4)]
    full = MaskGeom.from_full(np.ones((6, 6), bool))
    project.add_annotation(ids[0], fg, "mask", full)  # a person's
    project.add_annotation(ids[1], fg, "mask", full, source="model:3")  # accepted, reviewed
    project.add_annotation(ids[2], bg, "mask", full, source="model:3")  # pre-label, pending
    project.add_annotation(ids[3], bg, "mask", full)  # a person's, image marked for review
    project.set_status(ids[2:], "review")
    assert project.pending_model_images("train") == {ids[2]}
    assert project.pending_model_images("val") == set()
    source = read_split(project, "semantic", "train", [bg, fg])
    assert [s.image_id for s in source.samples] == [ids[0], ids[1], ids[3]]
    project.add_annotation(ids[2], fg, "tag", None, source="model:3")
    assert read_split(project, "classification", "train", [fg]).samples == []
    project.set_status(ids[2], "done")  # a person checked it: now it counts
    assert ids[2] in [s.image_id for s in read_split(project, "semantic", "train",
                                                      [bg, fg]).samples]


def test_byte_lru_stays_within_its_budget():
    cache = ByteLRU(3000)
    for i in range(10):
        cache.put(i, (np.zeros(1000, np.uint8), None))
    assert cache.bytes <= 3000 and len(cache) == 3
    assert cache.get(0) is None and cache.get(9) is not None
    cache.put("big", (np.zeros(5000, np.uint8),))  # larger than the budget: not kept
    assert cache.get("big") is None


def test_cache_serves_repeated_reads(project, tmp_path):
    cid = project.add_class("x")
    other = project.add_class("y")
    iid, _ = project.add_image(_image(tmp_path, "a.png", np.zeros((8, 8, 3), np.uint8)),
                               split="train")
    project.add_annotation(iid, cid, "tag", None)
    source = read_split(project, "classification", "train", [cid, other])
    cache = ByteLRU(10**6)
    ds = ProjectDataset(source, lambda im, t: (im, t), channels=3, cache=cache)
    first, _ = ds.raw(0)
    (tmp_path / "img" / "a.png").unlink()  # a cached image no longer needs its file
    second, label = ds.raw(0)
    assert second is first and label == 0 and len(cache) == 1


def test_mean_std_match_numpy(tmp_path, project):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (7, 9, 3), dtype=np.uint8) for _ in range(3)]
    cid = project.add_class("a")
    for i, arr in enumerate(arrays):
        iid, _ = project.add_image(_image(tmp_path, f"{i}.png", arr), split="train")
        project.add_annotation(iid, cid, "tag", None)
    source = read_split(project, "classification", "train", [cid])
    mean, std = dataset_mean_std(source.samples, 3)
    stack = np.concatenate([a.reshape(-1, 3) for a in arrays]).astype(np.float64) / 255
    np.testing.assert_allclose(mean, stack.mean(0), atol=1e-5)
    np.testing.assert_allclose(std, stack.std(0), atol=1e-5)


def _tiny_classification(project, tmp_path, n=8, grey=True):
    a, b = project.add_class("dark"), project.add_class("bright")
    for i in range(n):
        value = 200 if i % 2 else 40
        arr = np.full((12, 12) if grey else (12, 12, 3), value, np.uint8)
        arr[0, i % 12] = 7  # distinct content
        iid, _ = project.add_image(_image(tmp_path, f"t{i}.png", arr),
                                   split="train" if i < n - 2 else "val")
        project.add_annotation(iid, b if i % 2 else a, "tag", None)


def test_run_data_resolves_channels_and_normalisation(project, tmp_path):
    _tiny_classification(project, tmp_path)
    cfg = validate_config({"task": "classification", "image_size": 16}, project)
    data = build_run_data(project, cfg)
    assert data.channels == 1  # grey images, no pretrained weights
    assert data.normalize["source"] == "dataset" and len(data.normalize["mean"]) == 1
    assert data.class_names == ["dark", "bright"]
    x, y = data.train[0]
    assert x.shape == (1, 16, 16) and y.dtype == torch.int64
    assert len(data.val) == 2
    cfg = validate_config({"task": "classification", "channels": 3,
                           "normalize": "imagenet"}, project)
    data = build_run_data(project, cfg)
    assert data.channels == 3 and data.normalize["source"] == "imagenet"
    assert data.train[0][0].shape[0] == 3


def test_run_data_needs_two_classes_and_train_images(project, tmp_path):
    cid = project.add_class("only")
    iid, _ = project.add_image(_image(tmp_path, "a.png", np.zeros((8, 8), np.uint8)),
                               split="train")
    project.add_annotation(iid, cid, "tag", None)
    cfg = validate_config({"task": "classification"}, project)
    with pytest.raises(ConfigError, match="two"):
        build_run_data(project, cfg)


def test_loader_with_workers(project, tmp_path):
    _tiny_classification(project, tmp_path, n=10)
    cfg = validate_config({"task": "classification", "image_size": 8}, project)
    data = build_run_data(project, cfg)
    loader = make_loader(data.train, 4, train=True, num_workers=1, seed=0)
    assert loader.persistent_workers and loader.drop_last
    batches = list(loader)
    assert len(batches) == 2 and batches[0][0].shape == (4, 1, 8, 8)
    val = make_loader(data.val, 4, train=False)
    assert not val.drop_last and len(list(val)) == 1
