"""The images the augmentation preview offers: those labelled for the task, by name."""

from __future__ import annotations

import numpy as np
from testutil import add_toy_segmentation, write_png

from studio.ml.augment_preview import preview, preview_choices


def test_choices_are_the_labelled_images_by_name(project, tmp_path):
    plain = write_png(tmp_path / "img" / "a_plain.png", np.full((24, 24), 90, np.uint8))
    unlabelled = project.add_image(plain)[0]  # the first id and the first name
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 3)
    tagged = project.add_image(write_png(tmp_path / "img" / "t.png",
                                         np.zeros((8, 8), np.uint8)))[0]
    project.add_annotation(tagged, project.get_or_add_class("foreground"), "tag")
    choices, labelled = preview_choices(project, "semantic")
    assert labelled
    names = [name for _i, name in choices]
    assert names == sorted(names, key=str.lower) and len(names) == 3
    assert unlabelled not in [i for i, _n in choices] and tagged not in [i for i, _n in choices]
    assert names == ["s0.png", "s1.png", "s2.png"]
    # the first choice shows its masks
    (_img, target), = preview(None, project, choices[0][0], 1, 0, task="semantic")
    assert np.unique(target).size == 2
    # classification: the tagged image only
    assert [i for i, _n in preview_choices(project, "classification")[0]] == [tagged]


def test_without_labels_every_image_is_offered(project, tmp_path):
    for value, name in enumerate(("b.png", "a.png")):
        project.add_image(write_png(tmp_path / name, np.full((8, 8), value, np.uint8)))
    choices, labelled = preview_choices(project, "semantic")
    assert not labelled and [n for _i, n in choices] == ["a.png", "b.png"]
    # two files called alike, in other folders: named by their paths
    project.add_image(write_png(tmp_path / "other" / "a.png", np.full((8, 8), 7, np.uint8)))
    names = [n for _i, n in preview_choices(project, "semantic")[0]]
    assert len(names) == 3 and "b.png" in names
    assert sorted(n for n in names if n != "b.png") == sorted(
        [str(tmp_path / "a.png"), str(tmp_path / "other" / "a.png")])
