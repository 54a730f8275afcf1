"""The recommended config (studio.ml.plan) and the fingerprint it is derived from."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from testutil import add_toy_segmentation, write_png

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom
from studio.ml.config import validate_config
from studio.ml.fingerprint import label_offset
from studio.ml.plan import MIRROR_QUESTION, fingerprint, plan_from_fingerprint, recommend

KEY_REASONS = ("model", "model_options", "image_size", "batch_size", "epochs", "optimizer.lr",
               "loss.name", "early_stopping.metric", "augment.hflip")


def add_tagged(project, folder: Path, counts: dict[str, int], size=(8, 8), channels: int = 1,
               val_every: int = 5, seed: int = 0) -> None:
    """Tagged images, `counts[name]` of each class; every `val_every`-th goes to "val"."""
    rng = np.random.default_rng(seed)
    n = 0
    for name, count in counts.items():
        cid = project.get_or_add_class(name)
        for _ in range(count):
            shape = size if channels == 1 else (*size, 3)
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            iid, _ = project.add_image(write_png(folder / f"{name}{n}.png", arr),
                                       split="val" if n % val_every == 0 else "train")
            project.add_annotation(iid, cid, "tag", None)
            n += 1


def add_shifted_segmentation(project, folder: Path, n: int, shift_rows: int = 0,
                             size: int = 48) -> None:
    """Blocky images whose foreground mask is drawn `shift_rows` rows above the blocks."""
    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(1)
    for i in range(n):
        blocks = np.kron(rng.random((size // 6, size // 6)) > 0.5, np.ones((6, 6), bool))
        image = np.where(blocks, 200, 40).astype(np.uint8)
        mask = np.roll(blocks, -shift_rows, axis=0)
        iid, _ = project.add_image(write_png(folder / f"m{i}.png", image), split="train")
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))


def check_plan(plan, project) -> dict:
    cfg = validate_config(copy.deepcopy(plan.config), project).to_dict()
    assert cfg == plan.config  # complete: validation adds nothing
    missing = [k for k in KEY_REASONS if not plan.reasons.get(k)]
    assert not missing, f"no reason for {missing}"
    return cfg


# --- classification ----------------------------------------------------------------------
def test_tiny_grey_classification(project, tmp_path):
    add_tagged(project, tmp_path / "img", {"a": 30, "b": 30})
    plan = recommend(project, mirror="no", device="cpu")
    cfg = check_plan(plan, project)
    assert cfg["task"] == "classification" and cfg["model"] == "simple_cnn"
    # 8 px images are enlarged until three pooling stages fit
    assert cfg["image_size"] == 16 and cfg["model_options"]["depth"] == 3
    assert "8 x 8" in plan.reasons["image_size"]
    assert cfg["batch_size"] <= 48 // 4
    assert cfg["loss"]["class_weights"] is None
    # 12 validation images: selection on the validation loss, not on accuracy
    assert cfg["early_stopping"]["metric"] == "val_loss"
    assert plan.fingerprint["channels"] == 1
    assert plan.fingerprint["classes"]["counts"] == [24.0, 24.0]  # train split only


def test_larger_colour_classification_without_cached_weights(project, tmp_path, monkeypatch):
    from studio.ml import plan as plan_module

    monkeypatch.setattr(plan_module, "_weights_cached", lambda model: False)
    add_tagged(project, tmp_path / "img", {"a": 15, "b": 15}, size=(72, 96), channels=3)
    plan = recommend(project, mirror="no", device="cpu")
    cfg = check_plan(plan, project)
    assert cfg["model"] == "simple_cnn" and cfg["pretrained"] is None
    assert cfg["image_size"] == 72
    assert "not in the local cache" in plan.reasons["model"]


def test_colour_photos_fine_tune_when_weights_are_cached(project, tmp_path, monkeypatch):
    from studio.ml import plan as plan_module

    monkeypatch.setattr(plan_module, "_weights_cached", lambda model: True)
    add_tagged(project, tmp_path / "img", {"a": 15, "b": 15}, size=(72, 96), channels=3)
    cfg = check_plan(recommend(project, mirror="yes", device="cpu"), project)
    assert cfg["model"] == "resnet18" and cfg["pretrained"] == "imagenet"
    assert cfg["freeze"]["mode"] == "backbone" and cfg["finetune"]["unfreeze_epoch"] == 2
    assert cfg["image_size"] % 32 == 0


def test_imbalanced_classes_get_class_weights(project, tmp_path):
    add_tagged(project, tmp_path / "img", {"common": 40, "rare": 8})
    plan = recommend(project, mirror="no", device="cpu")
    cfg = check_plan(plan, project)
    common, rare = cfg["loss"]["class_weights"]
    assert rare > common
    assert np.mean([common, rare]) == pytest.approx(1.0, abs=1e-3)
    assert "rare" in plan.reasons["loss.class_weights"]


def test_small_datasets_get_a_smaller_model_and_batch(project, tmp_path):
    add_tagged(project, tmp_path / "img", {"a": 25, "b": 25})
    small = recommend(project, mirror="no", device="cpu")
    check_plan(small, project)
    fp = copy.deepcopy(small.fingerprint)
    fp["images"]["labelled_by_split"]["train"] = 5000
    large = plan_from_fingerprint(fp, "no")
    assert small.config["model_options"]["width"] < large.config["model_options"]["width"]
    assert small.config["batch_size"] < large.config["batch_size"] == 64
    assert "40 training images" in small.reasons["model_options"]


def test_mirror_answer_changes_the_augmentation(project, tmp_path):
    add_tagged(project, tmp_path / "img", {"a": 20, "b": 20})
    fp = fingerprint(project, device="cpu")
    spec = {answer: plan_from_fingerprint(fp, answer).config["augment"]
            for answer in ("yes", "no", None)}
    flips = {a: [op for op in ("hflip", "vflip", "rotation") if s[op]["enabled"]]
             for a, s in spec.items()}
    assert flips == {"yes": ["hflip", "vflip", "rotation"], "no": [], None: []}
    unanswered = plan_from_fingerprint(fp, None)
    (question,) = unanswered.questions
    assert question.text == MIRROR_QUESTION and question.answer is None
    assert "digits" in question.examples["no"] and "cells" in question.examples["yes"]
    assert "answered" in unanswered.reasons["augment.hflip"]
    assert plan_from_fingerprint(fp, True).questions[0].answer == "yes"
    with pytest.raises(ConfigError, match="yes' or 'no"):
        plan_from_fingerprint(fp, "maybe")


# --- semantic segmentation ---------------------------------------------------------------
def test_toy_semantic_plan(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 6 + ["val"] * 2)
    plan = recommend(project, mirror="yes", device="cpu")
    cfg = check_plan(plan, project)
    assert cfg["model"] == "unet" and cfg["resize_policy"] == "crop"
    # 24 px images: one 32 px crop (padded), a U-Net shallow enough to keep 8 px maps
    assert cfg["image_size"] == 32 and cfg["samples_per_image"] == 1
    assert cfg["model_options"] == {"depth": 2, "width": 16, "space_to_depth": 1}
    assert cfg["early_stopping"]["metric"] == "mean_iou"
    assert cfg["loss"]["name"] == "cross_entropy"  # about half the pixels each
    assert cfg["tta"] is True and cfg["augment"]["vflip"]["enabled"]
    fp = plan.fingerprint
    assert fp["label_offset"]["images"] == 6 and abs(fp["label_offset"]["rows"]) < 0.1
    assert fp["objects"]["median_diameter"]["foreground"] > 0


def test_large_images_get_crops_and_several_per_image(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 3, cells=10, cell_px=52)
    plan = recommend(project, mirror="no", device="cpu")
    cfg = check_plan(plan, project)
    assert cfg["image_size"] == 256 and cfg["samples_per_image"] == 4
    assert cfg["model_options"]["space_to_depth"] == 2 and cfg["model_options"]["depth"] == 4
    assert "crop 256: images are 520 x 520" in plan.reasons["image_size"]
    assert "no validation split" in plan.reasons["early_stopping.metric"]


def test_rare_class_gets_dice(project, tmp_path):
    bg, spot = project.add_class("background"), project.add_class("spot")
    for i in range(4):
        mask = np.zeros((40, 40), bool)
        mask[10 + i:14 + i, 20:24] = True
        iid, _ = project.add_image(write_png(tmp_path / f"s{i}.png",
                                             np.where(mask, 220, 30).astype(np.uint8)))
        project.set_split(iid, "train")
        project.add_annotation(iid, spot, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))
    plan = recommend(project, mirror="no", device="cpu")
    cfg = check_plan(plan, project)
    assert cfg["loss"]["name"] == "ce_dice"
    assert "spot" in plan.reasons["loss.name"]


def test_label_offset_blocks_the_flip_that_would_reverse_it(project, tmp_path):
    add_shifted_segmentation(project, tmp_path / "img", 5, shift_rows=1)
    plan = recommend(project, mirror="yes", device="cpu")
    cfg = check_plan(plan, project)
    offset = plan.fingerprint["label_offset"]
    assert offset["rows"] > 0.5 and offset["agreement_rows"] == 1.0
    assert abs(offset["cols"]) < 0.1
    spec = cfg["augment"]
    assert spec["hflip"]["enabled"] and not spec["vflip"]["enabled"]
    assert not spec["rotation"]["enabled"]
    assert "above" in plan.reasons["augment.vflip"]
    assert cfg["tta"] is True  # over the left-right flip only


def test_label_offset_probe_on_aligned_and_shifted_labels():
    rng = np.random.default_rng(3)
    blocks = np.kron(rng.random((10, 10)) > 0.5, np.ones((5, 5), bool))
    image = np.where(blocks, 180, 50).astype(np.uint8)
    rows, cols, strength = label_offset(image, blocks.astype(np.uint8), 1)
    assert abs(rows) < 0.05 and abs(cols) < 0.05 and strength > 0.9
    rows, cols, _ = label_offset(image, np.roll(blocks, 1, axis=1).astype(np.uint8), 1)
    assert cols < -0.5 and abs(rows) < 0.05  # labels right of the blocks
    ignored = np.full(blocks.shape, 255, np.uint8)
    assert label_offset(image, ignored, 1) is None


def test_gpu_memory_sets_crop_and_batch(project, tmp_path):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 3, cells=10, cell_px=52)
    fp = fingerprint(project, device="cpu")
    big, small = copy.deepcopy(fp), copy.deepcopy(fp)
    for f, free in ((big, 70.0), (small, 1.0)):
        f["device"].update(type="cuda", name="cuda:0 (test)", memory_gb=free, free_gb=free)
    plan_big, plan_small = plan_from_fingerprint(big, "yes"), plan_from_fingerprint(small, "yes")
    assert plan_big.config["model_options"]["space_to_depth"] == 1
    assert plan_big.config["image_size"] == 512
    assert plan_big.config["batch_size"] > plan_small.config["batch_size"] >= 2
    assert "GB free" in plan_big.reasons["batch_size"]


# --- errors ------------------------------------------------------------------------------
def test_unplannable_projects_raise_clear_errors(project, tmp_path):
    with pytest.raises(ConfigError, match="no labels yet"):
        recommend(project)
    add_tagged(project, tmp_path / "img", {"a": 5, "b": 5})
    add_toy_segmentation(project, tmp_path / "seg", ["train"] * 2)
    with pytest.raises(ConfigError, match="classification and semantic"):
        recommend(project, device="cpu")
    assert recommend(project, task="semantic", device="cpu").config["task"] == "semantic"
    plan = recommend(project, task="detection", device="cpu")  # regions give boxes too
    assert plan.config["task"] == "detection" and "resnet18" in plan.config["model"]
    fp = fingerprint(project, "classification", device="cpu")
    with pytest.raises(ConfigError, match="Unknown task"):
        plan_from_fingerprint({**fp, "task": "keypoints"})


def test_no_labelled_train_images(project, tmp_path):
    cid = project.add_class("a")
    iid, _ = project.add_image(write_png(tmp_path / "x.png", np.zeros((8, 8), np.uint8)),
                               split="test")
    project.add_annotation(iid, cid, "tag", None)
    with pytest.raises(ConfigError, match="'train' split has no labelled images"):
        recommend(project, device="cpu")


def test_fingerprint_reads_a_bounded_sample_of_label_maps(project, tmp_path, monkeypatch):
    from studio.ml import fingerprint as fingerprint_module

    monkeypatch.setattr(fingerprint_module, "MAX_LABEL_IMAGES", 3)
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 6 + ["test"] * 2)
    fp = fingerprint(project, device="cpu")
    assert fp["objects"]["images_read"] == 3 and fp["label_offset"]["images"] == 3
    assert fp["images"]["labelled_by_split"] == {"train": 6, "val": 0, "test": 2, "none": 0}
    assert fp["splits"]["val"] is None
    assert sum(fp["classes"]["counts"]) == 3 * 24 * 24  # three whole label maps, train only
    assert fp["device"]["type"] == "cpu" and fp["device"]["free_gb"] is None
