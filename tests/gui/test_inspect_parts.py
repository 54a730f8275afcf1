"""Inspect workspace parts on their own: overlay colours, the recipe panel generated
from the schema, and the confusion matrix of a tiny classification run."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from testutil import FAST_TRAINING, write_png


def shot(widget, name: str) -> None:
    """Offscreen grabs for a person to look at, when INSPECT_SHOTS names a folder."""
    import os

    folder = os.environ.get("INSPECT_SHOTS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def test_overlays_colour_differences_and_shrink_for_huge_images():
    from studio.ml.inspect import overlays as ov

    target = np.array([[0, 1, 1, 2, 255]], np.uint8)
    pred = np.array([[1, 1, 0, 1, 1]], np.uint8)
    rgba = ov.difference_overlay(pred, target, hidden=[0])
    assert [tuple(px[:3]) for px in rgba[0, :4]] == [ov.FP_COLOR, ov.TP_COLOR, ov.FN_COLOR,
                                                     ov.WRONG_COLOR]
    assert rgba[0, 4, 3] == 0  # no label there: nothing to say
    labels = ov.label_overlay(np.array([[0, 1, 255]], np.uint8), [(1, 2, 3), (9, 8, 7)],
                              hidden=[0])
    assert labels[0, 0, 3] == 0 and tuple(labels[0, 1]) == (9, 8, 7, 255) and labels[0, 2, 3] == 0
    big = np.zeros((3000, 9000, 4), np.uint8)
    small = ov.shrink(big, 4096)
    assert small.shape == (1365, 4096, 4)
    assert ov.shrink(rgba) is rgba


def test_recipe_panel_is_built_from_the_schema_and_refuses_bad_values(qtbot):
    from studio.gui.inspect.recipe_panel import RecipePanel
    from studio.ml.postprocess import STEP_DEFAULTS, default_recipe

    panel = RecipePanel()
    qtbot.addWidget(panel)
    recipe = default_recipe()
    for i, step in enumerate(recipe["steps"]):
        assert panel.step_group(i).isChecked() == step["enabled"]
        for key in STEP_DEFAULTS[step["op"]]:
            assert panel.editor(i, key) is not None
    hyst = next(i for i, s in enumerate(recipe["steps"]) if s["op"] == "hysteresis")
    emitted = []
    panel.recipeChanged.connect(emitted.append)
    panel.editor(hyst, "low").setValue(0.95)  # above 'high' (0.8): refused
    panel.flush()
    assert emitted == [] and panel.recipe()["steps"][hyst]["low"] == 0.4
    assert "must not exceed" in panel.editor(hyst, "low").toolTip()
    first_editor = panel.editor(hyst, "high")
    changed = default_recipe()
    changed["steps"][hyst].update(enabled=True, high=0.9)
    panel.set_recipe(changed)  # same steps: the same editors show the new values
    assert panel.editor(hyst, "high") is first_editor
    assert abs(first_editor.value() - 0.9) < 1e-9 and panel.step_group(hyst).isChecked()
    assert emitted[-1]["steps"][hyst]["high"] == 0.9


@pytest.fixture
def cls_project(project, tmp_path):
    import torch

    from studio.ml.fit import fit

    dark, bright = project.add_class("dark"), project.add_class("bright")
    rng = np.random.default_rng(0)
    for i in range(16):
        arr = np.clip(rng.normal(190 if i % 2 else 60, 25, (12, 12, 3)), 0, 255).astype(np.uint8)
        iid, _ = project.add_image(write_png(tmp_path / "img" / f"c{i}.png", arr),
                                   split="train" if i < 12 else "val")
        project.add_annotation(iid, bright if i % 2 else dark, "tag", None)
    arr = np.full((12, 12, 3), 120, np.uint8)
    project.untagged = project.add_image(write_png(tmp_path / "img" / "u.png", arr),
                                         split="val")[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    config = {"task": "classification", "image_size": 16, "batch_size": 4, "epochs": 2,
              "device": "cpu", "model_options": {"width": 8, "fc": [16]}, **FAST_TRAINING}
    project.run_id = fit(project, config).run_id
    torch.set_num_threads(threads)
    return project


def test_classification_confusion_matrix_lists_cell_images(qtbot, cls_project):
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    w.set_document(LabelDocument(cls_project))
    with qtbot.waitSignal(w.sessionOpened, timeout=60000):
        w.open_run(cls_project.run_id, "val")
    m = w.confusion.matrix
    assert m.rowCount() == 2
    total = sum(int(m.item(i, j).text()) for i in range(2) for j in range(2))
    assert total == 4
    i, j = next((i, j) for i in range(2) for j in range(2) if int(m.item(i, j).text()))
    w.confusion.select_cell(i, j)
    listed = w.confusion.listed_ids()
    assert len(listed) == int(m.item(i, j).text())
    top = w.confusion.images.topLevelItem(0).text(2)
    assert "dark" in top and "bright" in top
    with qtbot.waitSignal(w.imageShown, timeout=10000):
        tree = w.confusion.images
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                         pos=tree.visualItemRect(tree.topLevelItem(0)).center())
    assert w.image_id == listed[0] and "predicted" in w.run_bar.status.text()
    with qtbot.waitSignal(w.imageShown, timeout=10000):
        w.show_image(cls_project.untagged)  # no label: predicted when first shown
    assert "u.png: labelled –; predicted" in w.run_bar.status.text()
    first_row = w.browser.topLevelItem(0)
    assert first_row.text(2) in ("dark", "bright")  # the predicted class beside p(label)
    shot(w, "inspect_confusion.png")
    w.shutdown()


def test_dice_chart_counts_whole_images_for_one_image_and_none(qtbot):
    from studio.gui.inspect.readout_panel import DiceChart, image_ticks

    chart = DiceChart()
    qtbot.addWidget(chart)
    chart.resize(400, 150)
    chart.show()
    axis = chart.getAxis("bottom")
    chart.set_values([7], [0.5], [0.6])
    low, high = chart.getPlotItem().viewRange()[0]
    assert -1 < low < 0 < high < 1  # the one point in the middle, not -400..400 x 0.001
    assert axis._tickLevels == [[(0.0, "1")]]  # pyqtgraph's fixed ticks: image 1
    chart.set_values([], [], [])
    assert axis._tickLevels == [[]]  # no image, no tick
    low, high = chart.getPlotItem().viewRange()[0]
    assert -1 < low < 0 < high < 1
    shot(chart, "dice_one_image.png")
    labels = [label for _x, label in image_ticks(40)]
    assert labels[0] == "1" and labels[-1] == "40" and len(labels) <= 9
    assert all(label.isdigit() for label in labels)


def test_opacity_label_sits_by_its_slider_on_a_wide_screen(qtbot):
    from PySide6.QtWidgets import QLabel

    from studio.gui.inspect.toolbar import ViewBar

    bar = ViewBar()
    qtbot.addWidget(bar)
    bar.resize(1500, 100)
    bar.show()
    qtbot.waitExposed(bar)
    label = next(w for w in bar.findChildren(QLabel) if w.text() == "Opacity")
    # where the word ends (its label's box may be wider than the word)
    text_end = label.geometry().left() + label.fontMetrics().horizontalAdvance("Opacity")
    gap = bar.opacity.geometry().left() - text_end
    assert 0 <= gap <= 16, gap
    shot(bar, "view_bar_1500.png")


def test_a_long_status_line_does_not_widen_the_run_bar(qtbot):
    """A status naming a long file (and its counts) is cut at the window's edge, not a
    reason for the Inspect workspace to outgrow a 1366 px screen."""
    from studio.gui.inspect.toolbar import RunBar

    bar = RunBar()
    qtbot.addWidget(bar)
    short = bar.minimumSizeHint().width()
    bar.status.setText("d616d323a9eeb9da1b66f8d5df671d63c092c9919cb2c0b223e29c63257c944d.png"
                       ": 60 detection(s) kept, 32 matched, 28 false positive(s), 49 missed"
                       * 3)
    assert bar.minimumSizeHint().width() == short < 1366
