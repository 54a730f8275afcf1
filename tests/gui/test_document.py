"""The document layer: undoable store edits, per-image undo stacks, painting rules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.geometry import MaskGeom
from studio.core.project import Project
from studio.gui.commands import MaskPatchOp

REPO = Path(__file__).resolve().parents[2]


def classes(p):
    return {c.name: c.id for c in p.classes()}


def full_mask(p, ann_id, shape=(150, 200)):
    return p.annotation(ann_id).geometry.to_full(*shape)


def test_add_delete_undo_redo_keeps_ids(doc):
    p = doc.project
    seen = []
    doc.annotationsChanged.connect(seen.append)
    box = doc.add_annotation("box", (10, 10, 20, 30))
    assert p.annotation(box).geometry == (10, 10, 20, 30)
    assert p.annotation(box).class_id == classes(p)["cell"]  # the active class
    doc.select([box])
    doc.delete_annotations([box])
    assert p.annotations(doc.image_id) == [] and doc.selected_ids == []
    stack = doc.undo_stack()
    assert stack.count() == 2
    stack.undo()
    assert p.annotation(box).geometry == (10, 10, 20, 30)
    stack.undo()
    assert p.annotations(doc.image_id) == []
    stack.redo()
    assert p.annotation(box).id == box  # same id after redo
    assert seen == [doc.image_id] * 5


def test_each_edit_is_one_transaction_and_failures_push_nothing(doc):
    with pytest.raises(StudioError):
        doc.add_annotation("polygon", [(0, 0), (1, 1)])  # too few points
    assert doc.undo_stack().count() == 0
    doc.set_active_class(None)
    with pytest.raises(StudioError):
        doc.add_annotation("box", (0, 0, 5, 5))


def test_set_geometry_set_class_and_tags(doc):
    p, c = doc.project, classes(doc.project)
    poly = doc.add_annotation("polygon", [(0, 0), (10, 0), (10, 10)])
    doc.set_geometry(poly, [(0, 0), (20, 0), (20, 20), (0, 20)])
    assert len(p.annotation(poly).geometry) == 4
    doc.set_class([poly], c["other"])
    assert p.annotation(poly).class_id == c["other"]
    doc.undo_stack().undo()
    assert p.annotation(poly).class_id == c["cell"]
    doc.undo_stack().undo()
    assert len(p.annotation(poly).geometry) == 3
    doc.set_tag(c["other"], True)
    doc.set_tag(c["other"], True)  # already on: no second tag, no undo step
    assert doc.tags() == {c["other"]}
    n = doc.undo_stack().count()
    doc.set_tag(c["other"], False)
    assert doc.tags() == set() and doc.undo_stack().count() == n + 1
    doc.undo_stack().undo()
    assert doc.tags() == {c["other"]}


def test_undo_stacks_are_per_image(doc):
    p = doc.project
    a, b = p.test_image_ids
    box_a = doc.add_annotation("box", (1, 1, 5, 5))
    doc.set_image(b)
    box_b = doc.add_annotation("box", (2, 2, 5, 5))
    doc.set_image(a)
    doc.undo_group.undo()  # what Ctrl+Z does: undo A's edit only
    assert [x.id for x in p.annotations(a)] == []
    assert [x.id for x in p.annotations(b)] == [box_b]
    doc.undo_group.redo()
    assert [x.id for x in p.annotations(a)] == [box_a]
    assert doc.undo_stack(b).count() == 1 and doc.undo_stack(b).undoLimit() >= 100


def test_mask_patch_holds_only_the_region(doc):
    p = doc.project
    m = np.zeros((150, 200), bool)
    m[20:60, 30:90] = True
    ann = doc.add_annotation("mask", MaskGeom.from_full(m))
    before = m[40:50, 80:100].copy()
    after = np.ones_like(before)
    doc.apply_mask_patch(ann, 80, 40, before, after)
    cmd = doc.undo_stack().command(doc.undo_stack().count() - 1)
    op = cmd.ops[0]
    assert isinstance(op, MaskPatchOp) and op.before.shape == (10, 20)
    m2 = m.copy()
    m2[40:50, 80:100] = True
    assert np.array_equal(full_mask(p, ann), m2)
    doc.undo_stack().undo()
    assert np.array_equal(full_mask(p, ann), m)


def test_erasing_a_whole_mask_deletes_it_and_undo_restores(doc):
    p = doc.project
    m = np.zeros((150, 200), bool)
    m[10:20, 10:20] = True
    ann = doc.add_annotation("mask", MaskGeom.from_full(m))
    doc.apply_mask_patch(ann, 10, 10, np.ones((10, 10), bool), np.zeros((10, 10), bool))
    assert p.annotations(doc.image_id) == []
    doc.undo_stack().undo()
    assert np.array_equal(full_mask(p, ann), m)


def test_semantic_painting_takes_pixels_unless_preserved(doc):
    p, c = doc.project, classes(doc.project)
    fp = np.ones((20, 20), bool)
    red = doc.paint_mask(10, 10, fp, class_id=c["cell"])
    green = doc.paint_mask(20, 20, fp, class_id=c["other"])  # overlaps red by 10x10
    assert p.annotation(red).area == 400 - 100
    assert p.annotation(green).area == 400
    again = doc.paint_mask(0, 0, np.ones((5, 5), bool), class_id=c["cell"])
    assert again == red and len(p.annotations(doc.image_id, kind="mask")) == 2  # same mask
    doc.paint_mask(25, 25, fp, class_id=c["cell"], preserve_others=True)
    assert p.annotation(green).area == 400
    stack = doc.undo_stack()
    stack.undo()
    stack.undo()
    assert p.annotation(red).area == 300
    stack.undo()  # one step: green's creation and red's loss are undone together
    assert p.annotation(red).area == 400 and len(p.annotations(doc.image_id)) == 1
    for _ in range(3):
        stack.redo()
    assert p.annotation(green).area == 400 and p.annotation(red).area > 300
    # erase clears every class unless preserve is on
    doc.paint_mask(0, 0, np.ones((150, 200), bool), erase=True, class_id=c["cell"],
                   preserve_others=True)
    assert [a.class_id for a in p.annotations(doc.image_id)] == [c["other"]]


def test_instance_painting_edits_target_or_creates(doc):
    p, c = doc.project, classes(doc.project)
    fp = np.ones((10, 10), bool)
    first = doc.paint_mask(0, 0, fp, mode="instance")
    second = doc.paint_mask(5, 5, fp, mode="instance")  # no target: a new object
    assert first != second and p.annotation(first).area == 100
    same = doc.paint_mask(10, 0, fp, mode="instance", target_id=first)
    assert same == first and p.annotation(first).area == 200
    doc.paint_mask(0, 0, np.ones((3, 3), bool), mode="instance", erase=True, target_id=second)
    assert p.annotation(first).area == 200  # only the target is erased
    assert p.annotation(second).area == 100
    doc.paint_mask(5, 5, np.ones((3, 3), bool), mode="instance", erase=True, target_id=second)
    assert p.annotation(second).area == 91
    assert p.annotation(first).class_id == c["cell"]


def test_copy_paste_between_images_and_duplicate(doc):
    p = doc.project
    a, b = p.test_image_ids
    box = doc.add_annotation("box", (150, 100, 40, 40))
    poly = doc.add_annotation("polygon", [(0, 0), (30, 0), (30, 30)])
    doc.select([box, poly])
    assert doc.copy_selection() == 2
    doc.set_image(b)  # 160 x 120: the box is cut to the image
    new = doc.paste()
    assert len(new) == 2 and doc.selected_ids == new
    geoms = {x.kind: x.geometry for x in p.annotations(b)}
    assert geoms["box"] == (150.0, 100.0, 10.0, 20.0)
    doc.undo_group.undo()
    assert p.annotations(b) == []
    doc.set_image(a)
    doc.select([poly])
    dup = doc.duplicate_selection()
    assert np.allclose(p.annotation(dup[0]).geometry[0], (10, 10))


def test_convert_polygon_to_mask_and_back(doc):
    p = doc.project
    poly = doc.add_annotation("polygon", [(10, 10), (50, 10), (50, 40), (10, 40)])
    (mask_id,) = doc.convert_annotations([poly], "mask")
    m = p.annotation(mask_id)
    assert m.kind == "mask" and m.area == 40 * 30 and m.geometry.bbox() == (10, 10, 40, 30)
    (back,) = doc.convert_annotations([mask_id], "polygon")
    assert p.annotation(back).kind == "polygon" and p.annotation(back).area == pytest.approx(1200)
    doc.undo_stack().undo()
    assert [x.kind for x in p.annotations(doc.image_id)] == ["mask"]
    doc.undo_stack().undo()
    assert [x.id for x in p.annotations(doc.image_id)] == [poly]


def test_edit_survives_a_killed_process(label_project, tmp_path):
    root = label_project.root
    image_id = label_project.test_image_ids[0]
    label_project.close()
    script = textwrap.dedent(f"""
        import os, signal
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication
        app = QCoreApplication([])
        from studio.core.project import Project
        from studio.gui.document import LabelDocument
        doc = LabelDocument(Project.open({str(root)!r}))
        doc.set_image({image_id})
        doc.add_annotation("box", (3, 4, 5, 6))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode != 0, proc.stderr  # it really died
    with Project.open(root) as p:
        assert [a.geometry for a in p.annotations(image_id)] == [(3.0, 4.0, 5.0, 6.0)]
