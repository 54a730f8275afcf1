"""A person's path through Inspect, with the mouse and keys, on a 1366 x 768 screen: a
tiny semantic project with a one-epoch run; open the run, move a slider, accept the
cleaned mask (they are asked, since the image holds hand-drawn labels), undo it,
pre-label every unlabelled image of the project, and open a review queue's row with one
click."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSlider
from test_inspect import answer
from testutil import FAST_TRAINING, add_toy_segmentation, write_png

from studio.core.project import Project

TINY = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 1,
        "samples_per_image": 1, "model_options": {"depth": 2, "width": 8}, "device": "cpu",
        **FAST_TRAINING}


@pytest.fixture
def journey(qtbot, tmp_path):
    import torch

    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace
    from studio.ml.fit import fit

    project = Project.create(tmp_path / "proj", name="journey")
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 3 + ["val"] * 2, cells=6,
                         cell_px=4)
    rng = np.random.default_rng(9)
    unlabelled = []
    for i, split in enumerate(("val", "none")):  # one in the split shown, one elsewhere
        arr = np.where(rng.random((24, 24)) > 0.5, 200, 40).astype(np.uint8)
        unlabelled.append(project.add_image(write_png(tmp_path / "img" / f"u{i}.png", arr),
                                            split=split)[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_id = fit(project, dict(TINY)).run_id
    finally:
        torch.set_num_threads(threads)
    doc = LabelDocument(project)
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitExposed(w)
    w.set_document(doc)
    w.journey = (project, run_id, unlabelled, doc)
    yield w
    w.shutdown()
    w.set_document(None)
    project.close()


def click(qtbot, widget, pos=None) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton,
                     pos=pos if pos is not None else widget.rect().center())


def idle(qtbot, w) -> None:
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)


def test_inspect_journey(journey, qtbot, tmp_path):
    from studio.core.rasterize import label_map

    w = journey
    project, run_id, unlabelled, _doc = w.journey
    # open the run on the validation split
    assert w.run_bar.run.currentData() == run_id
    with qtbot.waitSignal(w.sessionOpened, timeout=60000):
        click(qtbot, w.run_bar.open)
    qtbot.waitUntil(lambda: w.result is not None, timeout=30000)
    idle(qtbot, w)
    image_id = w.image_id
    old = label_map(project, image_id, w.session.class_ids)
    folder = os.environ.get("INSPECT_SHOTS") or str(tmp_path)
    w.view_bar.first.setCurrentIndex(w.view_bar.first.findData("gt"))  # the labels
    idle(qtbot, w)
    assert w.grab().save(os.path.join(folder, "journey_inspect_open_1366x768.png"))
    # move a slider (the threshold's minimum confidence) with the keyboard
    steps = w.recipe_panel.recipe()["steps"]
    idx = next(i for i, s in enumerate(steps) if s["op"] == "threshold")
    slider = w.recipe_panel.editor(idx, "min_confidence").findChild(QSlider)
    click(qtbot, slider)
    with qtbot.waitSignals([w.imageShown, w.splitUpdated], timeout=30000):
        for _ in range(3):
            qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    idle(qtbot, w)
    assert w.recipe_panel.recipe()["steps"][idx]["min_confidence"] > 0
    mask = w.current_mask()
    # accept: the image holds hand-drawn labels, so the person is asked first
    questions = []
    answer(qtbot, "Yes", questions)
    click(qtbot, w.view_bar.accept_all)
    assert questions and "drawn or imported by a person" in questions[0]
    assert {a.source for a in project.annotations(image_id)} == {f"model:{run_id}"}
    assert np.array_equal(label_map(project, image_id, w.session.class_ids), mask)
    idle(qtbot, w)
    # undo brings the hand-drawn labels back
    click(qtbot, w.view_bar.undo)
    assert np.array_equal(label_map(project, image_id, w.session.class_ids), old)
    assert {a.source for a in project.annotations(image_id)} == {"manual"}
    idle(qtbot, w)
    # pre-label every unlabelled image of the project, the other split's too
    click(qtbot, w.jobs.buttons["Pre-label all unlabelled"])
    qtbot.waitUntil(lambda: w.jobs.summary is not None, timeout=30000)
    assert sorted(w.jobs.summary.stored) == sorted(unlabelled)
    bar = w.left_tabs.tabBar()
    click(qtbot, bar, bar.tabRect(w.left_tabs.indexOf(w.jobs.prelabels)).center())
    assert w.jobs.prelabel_list.topLevelItemCount() == 2
    idle(qtbot, w)
    # a review queue: Next to label, its first row opened with one click
    queue = w.jobs.queues["next-to-label"]
    click(qtbot, bar, bar.tabRect(w.left_tabs.indexOf(queue)).center())
    click(qtbot, queue.button)
    qtbot.waitUntil(lambda: queue.tree.topLevelItemCount() == 2, timeout=30000)
    first = queue.image_ids()[0]
    item = queue.tree.topLevelItem(0)
    with qtbot.waitSignal(w.imageShown, timeout=30000):
        click(qtbot, queue.tree.viewport(), queue.tree.visualItemRect(item).center())
    assert w.image_id == first
    idle(qtbot, w)
    assert w.grab().save(os.path.join(folder, "journey_inspect_1366x768.png"))
