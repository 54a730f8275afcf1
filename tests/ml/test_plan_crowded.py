"""Crowded instance data: object counts, sizes and touching in the fingerprint, and the
planner letting the model return as many objects as an image holds."""

from __future__ import annotations

import numpy as np
from testutil import write_png

from studio.core.geometry import MaskGeom
from studio.ml.config import validate_config
from studio.ml.object_stats import object_stats, touching_flags
from studio.ml.plan import recommend
from studio.ml.tasks import task_class_ids


def add_crowd(project, folder, split: str, n: int, touching: bool, seed: int = 0) -> int:
    """One 256x256 image with n 6x6 squares, packed side by side when `touching`."""
    rng = np.random.default_rng(seed)
    path = write_png(folder / f"{split}_{n}_{seed}.png",
                     rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    image_id, _ = project.add_image(path, split=split)
    cls = project.get_or_add_class("nucleus")
    step = 6 if touching else 8
    cols = 256 // step
    items = []
    for i in range(n):
        y, x = step * (i // cols), step * (i % cols)
        bitmap = np.ones((6, 6), bool)
        items.append(dict(image_id=image_id, class_id=cls, kind="mask",
                          geometry=MaskGeom(x, y, bitmap), source="manual"))
    project.add_annotations(items)
    return image_id


def test_touching_flags():
    label = np.zeros((10, 10), np.int32)
    label[1:3, 1:3] = 1
    label[1:3, 3:5] = 2  # side by side with 1
    label[6:8, 6:8] = 3  # alone
    label[8:10, 8:10] = 4  # diagonal neighbour of 3
    assert touching_flags(label).tolist() == [True, True, True, True]
    label[8:10, 8:10] = 0
    assert touching_flags(label).tolist() == [True, True, False]


def test_object_stats_counts_sizes_and_touching(project, tmp_path):
    add_crowd(project, tmp_path, "train", 240, touching=True)
    add_crowd(project, tmp_path, "train", 30, touching=False, seed=1)
    add_crowd(project, tmp_path, "test", 400, touching=False, seed=2)  # not looked at
    stats = object_stats(project, "instance", task_class_ids(project, "instance"), ["train"])
    assert stats["images"] == 2 and stats["per_image_max"] == 240
    assert stats["per_image_median"] == 135
    assert abs(stats["median_diameter"] - 2 * np.sqrt(36 / np.pi)) < 0.01
    assert abs(stats["touching_fraction"] - 240 / 270) < 0.01


def test_plan_lets_the_model_return_every_object(project, tmp_path):
    add_crowd(project, tmp_path, "train", 300, touching=False)
    add_crowd(project, tmp_path, "val", 20, touching=False, seed=1)
    plan = recommend(project, "detection", device="cpu")
    cfg = plan.config.to_dict() if hasattr(plan.config, "to_dict") else plan.config
    assert cfg["model_options"]["detections_per_image"] == 450  # 300 x 1.5
    assert cfg["detection"]["max_detections"] == 450
    assert "300 objects" in plan.reasons["model_options.detections_per_image"]
    assert plan.fingerprint["object_stats"]["per_image_max"] == 300


def test_small_crowded_objects_get_the_instance_unet(project, tmp_path):
    add_crowd(project, tmp_path, "train", 120, touching=True)
    add_crowd(project, tmp_path, "train", 80, touching=False, seed=1)
    add_crowd(project, tmp_path, "val", 40, touching=True, seed=2)
    plan = recommend(project, "instance", device="cpu")
    cfg = plan.config.to_dict() if hasattr(plan.config, "to_dict") else plan.config
    assert cfg["model"] == "unet_instances" and cfg["resize_policy"] == "crop"
    assert "anchor_sizes" not in cfg["model_options"]  # Mask R-CNN's options left behind
    # 120 objects in one image: the U-Net's 500 suffice, prediction's 100 do not
    assert cfg["model_options"]["detections_per_image"] == 500
    assert cfg["detection"]["max_detections"] == 200
    assert "120 objects" in plan.reasons["detection.max_detections"]
    reason = plan.reasons["model"]
    assert reason.startswith("unet_instances: objects are 7 px across") and "touch" in reason
    assert cfg["tta"] is False  # flips wait for the mirror question's answer
    assert cfg["channels_last"] is True and "channels_last" in plan.reasons
    assert cfg["crops_by_area"] is True and "squares of 256 px" in plan.reasons["crops_by_area"]
    assert cfg["val_every"] >= 2 and "validations" in plan.reasons["val_every"]
    mirrored = recommend(project, "instance", mirror="yes", device="cpu")
    assert mirrored.config["tta"] is True and "flips" in mirrored.reasons["tta"]
    assert validate_config(mirrored.config).training.tta


def test_the_unet_step_budget_counts_cpu_threads():
    from studio.ml.plan_instance import UNET_STEPS, unet_steps

    def steps(kind, threads, bf16=False, amp=True):
        return unet_steps({"device": {"type": kind, "threads": threads, "bf16": bf16}}, amp)

    assert steps("cpu", 1) == (UNET_STEPS, f"about {UNET_STEPS} steps")
    two, why = steps("cpu", 2)
    assert two == 2100 and "2 CPU threads" in why  # 1.77x measured on two threads
    assert steps("cpu", 64)[0] == steps("cpu", 8)[0] > 3 * UNET_STEPS  # counted up to 8
    assert steps("cuda", 1)[0] == UNET_STEPS
    # bfloat16 autocast (2.07x measured) counts only with mixed precision on
    fast, why = steps("cpu", 2, bf16=True)
    assert fast == 4200 and "2 CPU threads in bfloat16" in why
    assert steps("cpu", 2, bf16=True, amp=False)[0] == 2100


def test_large_sparse_objects_keep_mask_rcnn(project, tmp_path):
    from studio.ml.plan_instance import prefers_unet

    for i, split in enumerate(["train", "train", "val"]):
        path = write_png(tmp_path / f"big{i}.png", np.zeros((200, 200, 3), np.uint8))
        image_id, _ = project.add_image(path, split=split)
        cls = project.get_or_add_class("cell")
        project.add_annotations([dict(image_id=image_id, class_id=cls, kind="mask",
                                      geometry=MaskGeom(10 + 90 * k, 20, np.ones((80, 80), bool)),
                                      source="manual") for k in range(2)])
    plan = recommend(project, "instance", device="cpu")
    cfg = plan.config.to_dict() if hasattr(plan.config, "to_dict") else plan.config
    assert cfg["model"].startswith("maskrcnn")
    assert "90 px across" in plan.reasons["model"]
    assert not prefers_unet(plan.fingerprint["object_stats"])


def test_plan_keeps_the_default_for_sparse_images(project, tmp_path):
    add_crowd(project, tmp_path, "train", 12, touching=False)
    plan = recommend(project, "detection", device="cpu")
    assert "model_options.detections_per_image" not in plan.reasons
