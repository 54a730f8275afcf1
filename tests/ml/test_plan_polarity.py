"""Objects darker or brighter than their ground: measured on the fingerprint's images,
and inverted crops in training when a dataset holds both kinds."""

from __future__ import annotations

import numpy as np
from testutil import write_png

from studio.core.geometry import MaskGeom
from studio.ml.object_stats import darker_objects
from studio.ml.plan import recommend


def add_painted(project, folder, split: str, dark: bool, seed: int) -> None:
    """A 128x128 image of 150 touching 6x6 squares, darker or brighter than the ground."""
    rng = np.random.default_rng(seed)
    ground, objects = (200, 60) if dark else (20, 180)
    pixels = np.full((128, 128, 3), ground, np.uint8)
    cls = project.get_or_add_class("nucleus")
    boxes = [(6 * (i // 20), 6 * (i % 20)) for i in range(150)]
    for y, x in boxes:
        pixels[y:y + 6, x:x + 6] = objects
    pixels = np.clip(pixels + rng.integers(-10, 10, pixels.shape), 0, 255).astype(np.uint8)
    image_id, _ = project.add_image(write_png(folder / f"{split}{seed}.png", pixels),
                                    split=split)
    project.add_annotations([dict(image_id=image_id, class_id=cls, kind="mask",
                                  geometry=MaskGeom(x, y, np.ones((6, 6), bool)),
                                  source="manual") for y, x in boxes])


def test_darker_objects(tmp_path):
    label = np.zeros((32, 32), np.int32)
    label[8:16, 8:16] = 1
    image = np.full((32, 32), 220, np.uint8)
    image[8:16, 8:16] = 40
    path = write_png(tmp_path / "a.png", image)
    assert darker_objects(path, label) is True
    assert darker_objects(write_png(tmp_path / "b.png", 255 - image), label) is False
    assert darker_objects(path, np.zeros_like(label)) is None  # no objects
    assert darker_objects(path, np.ones_like(label)) is None  # no ground
    assert darker_objects(path, label[:16]) is None  # another size than the image
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert darker_objects(broken, label) is None


def test_both_kinds_turn_inverted_crops_on(project, tmp_path):
    for seed, dark in enumerate([True, False, False]):
        add_painted(project, tmp_path, "train", dark, seed)
    add_painted(project, tmp_path, "val", False, 9)
    plan = recommend(project, "instance", device="cpu")
    assert plan.config["model"] == "unet_instances"
    assert plan.fingerprint["object_stats"]["dark_object_images"] == 0.25
    assert plan.config["augment"]["invert"] == {"enabled": True, "p": 0.5}
    assert "in 25% of the images the objects are darker" in plan.reasons["augment.invert"]


def test_one_kind_leaves_them_off(project, tmp_path):
    for seed in range(3):
        add_painted(project, tmp_path, "train", False, seed)
    plan = recommend(project, "instance", device="cpu")
    assert plan.fingerprint["object_stats"]["dark_object_images"] == 0.0
    assert plan.config["augment"]["invert"]["enabled"] is False
    assert "augment.invert" not in plan.reasons
