"""A project from each import format, through the window as a person makes one: the start
page's "New project from a dataset", the new-project dialog, the import dialog (format, source,
images), OK; then Label lists the images and Train opens on the task the labels allow.

The data are the small licensed samples in tests/data, and folders the test writes.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_journeys import (  # the same hands as the other journeys
    boxes,  # noqa: F401  (a fixture the win fixture uses)
    click_ok,
    new_project_dialog,
    switch,
    type_into,
    visit_all,
    when_shown,
    win,  # noqa: F401  (fixture)
)
from testutil import write_png

from studio.gui import dialogs

DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data"


def class_folders(tmp_path):
    root = tmp_path / "by_class"
    rng = np.random.default_rng(1)
    for name in ("cat", "dog"):
        for i in range(2):
            write_png(root / name / f"{name}_{i}.png",
                      rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return root, None


def instance_label_images(tmp_path):
    """Photos/ beside Annot/<name>_mask.png, one integer per object: not the usual names."""
    root = tmp_path / "nuclei"
    for i in range(2):
        img = np.full((24, 24, 3), 30, np.uint8)
        labels = np.zeros((24, 24), np.uint16)
        labels[2:9, 2:9] = 1
        labels[12:20, 10 + i:18 + i] = 2
        img[labels > 0] = 220
        write_png(root / "Photos" / f"n{i}.png", img)
        write_png(root / "Annot" / f"n{i}_mask.png", labels)
    return root / "Annot", root / "Photos"


# format, source (and images folder), the task Train opens on
CASES = {
    "coco": (lambda tmp: (DATA / "coco" / "mini" / "annotations.json", None), None),
    "voc": (lambda tmp: (DATA / "voc" / "mini", None), None),
    "yolo": (lambda tmp: (DATA / "yolo" / "mini", None), "detection"),
    "labelme": (lambda tmp: (DATA / "labelme", None), None),
    "masks": (lambda tmp: (DATA / "masks", None), "semantic"),
    "folders": (class_folders, "classification"),
    "instances": (instance_label_images, None),
}


@pytest.mark.parametrize("fmt", list(CASES))
def test_a_project_from_each_format_through_the_window(fmt, win, qtbot, tmp_path, boxes):  # noqa: F811
    make, task = CASES[fmt]
    source, images = make(tmp_path)

    def fill_import(dialog: dialogs.ImportDialog) -> None:
        dialog.format.setFocus()
        dialog.format.setCurrentIndex(dialog.format.findData(fmt))
        type_into(dialog.source, str(source))
        if images is not None:
            type_into(dialog.images, str(images))
        click_ok(dialog)

    when_shown(dialogs.NewProjectDialog, new_project_dialog(
        tmp_path / "project", fmt, then=lambda: when_shown(dialogs.ImportDialog, fill_import)))
    QTest.mouseClick(win.welcome.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(t == "Import finished" for t, _ in boxes)
                    or any("rror" in t for t, _ in boxes), timeout=30000)
    assert any(t == "Import finished" for t, _ in boxes), boxes
    project = win.project
    assert project is not None and project.name == fmt
    n = project.count_images()
    assert n >= 2, (fmt, n)
    panel = win.images_panel
    assert panel.model.rowCount() == n and panel.count_label.text() == f"{n} image(s)"
    assert win.classes_panel.tree.topLevelItemCount() == len(project.classes()) >= 1
    assert win.canvas is not None  # the first image shown, not "no images yet"

    switch(win, "train")
    train = win.train
    qtbot.waitUntil(lambda: train.backend is not None, timeout=60000)
    allowed = train.backend.labelled_tasks(project)
    assert allowed and train.task in allowed, (fmt, train.task, allowed)
    if task is not None:
        assert task in allowed
    minimum = win.minimumSizeHint()
    visit_all(win, qtbot, minimum)
