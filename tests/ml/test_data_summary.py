"""Dataset summary and its warnings; augmentation presets."""

from __future__ import annotations

import pytest

from studio.ml.augment_presets import PRESETS, preset_spec
from studio.ml.augment_spec import parameter_kinds, validate_spec
from studio.ml.data_summary import summarize


def test_counts_and_warnings(project, make_image):
    a, b = project.add_class("a"), project.add_class("b")
    ids = [project.add_image(make_image(f"{i}.png", 16, 16 if i else 128, seed=i))[0]
           for i in range(6)]
    for i in ids[:4]:
        project.add_annotation(i, a if i % 2 else b, "tag")
    project.set_split(ids, "train")
    s = summarize(project, "classification", few_examples=3)
    assert s.images["train"] == 6 and s.labelled["train"] == 4
    assert s.objects["train"] == {a: 2, b: 2}
    codes = [w.code for w in s.warnings]
    assert codes == ["no_val", "few_examples", "few_examples", "sizes", "unlabelled_train"]
    assert s.warnings[0].action == "stratified_split"
    assert "2 image(s) in train" in s.warnings[-1].message
    seg = summarize(project, "semantic")
    assert [w.code for w in seg.warnings] == ["no_labels"]


def test_segmentation_counts_pixels_and_warns_of_a_rare_class(project, make_image):
    import numpy as np

    from studio.core.geometry import MaskGeom

    big, tiny = project.add_class("big"), project.add_class("tiny")
    for i in range(3):
        image_id, _ = project.add_image(make_image(f"{i}.png", 100, 100, seed=i), split="train")
        mask = np.zeros((100, 100), bool)
        mask[:50] = True
        project.add_annotation(image_id, big, "mask", MaskGeom.from_full(mask))
        project.add_annotation(image_id, tiny, "polygon",
                               np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float))
    s = summarize(project, "semantic", few_examples=1)
    assert s.objects["train"] == {big: 3, tiny: 3}
    assert s.pixels["train"] == {big: 3 * 5000.0, tiny: 3 * 16.0}
    assert s.pixels["val"] == {}
    rare = [w for w in s.warnings if w.code == "rare_pixels"]
    assert len(rare) == 1 and "'tiny'" in rare[0].message
    assert summarize(project, "classification").pixels == {}  # tags cover no pixels
    first = project.image_ids(split="train")[0]
    # only a model's annotations (what people drew on an image under review still counts)
    project.delete_annotations([a.id for a in project.annotations(first)])
    project.add_annotation(first, big, "polygon", np.array([[0, 0], [9, 0], [9, 9]], float),
                           source="model:1")
    project.set_status(first, "review")
    s = summarize(project, "semantic", few_examples=1)
    assert s.pending["train"] == 1
    pending = [w for w in s.warnings if w.code == "pending_review"]
    assert len(pending) == 1 and pending[0].action == "mark_reviewed"
    assert "1 in train" in pending[0].message


@pytest.mark.parametrize("task", ["classification", "semantic"])
def test_presets_are_valid_specs(task):
    for name in PRESETS:
        spec = preset_spec(name, task)
        assert validate_spec(spec) == spec
    assert not any(op["enabled"] for op in preset_spec("none", task).values())
    heavy = preset_spec("heavy", task)
    assert sum(op["enabled"] for op in heavy.values()) > sum(
        op["enabled"] for op in preset_spec("light", task).values())


def test_parameter_kinds_cover_every_parameter():
    kinds = parameter_kinds()
    assert kinds["rotation"]["degrees"][0] == "range"
    assert set(kinds["gaussian_blur"]) == {"p", "kernel_size", "sigma"}
