"""The Train workspace's Data tab: what training leaves out or refuses is said, and images
changed on disk after import are re-read from the window."""

from __future__ import annotations

import cv2
import numpy as np
import test_train_workspace as tw
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

tiny_project, dialogs, win = tw.tiny_project, tw.dialogs, tw.win  # the same fixtures


def _warning_text(train, code: str) -> str:
    return next(w.message for w in train.data_panel.shown_warnings() if w.code == code)


def test_a_models_annotations_waiting_on_hand_labelled_images_are_counted(qtbot, win):
    train, project = win.train, win.project
    ids = project.image_ids(split="train")[:2] + project.image_ids(split="val")[:1]
    for image_id in ids:  # a person's tag stays; a model's tag waits for review beside it
        project.add_annotation(image_id, project.classes()[0].id, "tag", source="model:1")
        project.set_status(image_id, "review")
    train.refresh_data()
    train.workers.wait()
    codes = train.data_panel.warning_codes()
    assert "model_annotations_waiting" in codes
    assert "pending_review" not in codes  # each image still has a person's label
    text = _warning_text(train, "model_annotations_waiting")
    assert "2 in train and 1 in val" in text and "left out" in text
    shown = [w.text() for w in train.data_panel.findChildren(type(train.data_panel.sizes))]
    assert any("2 in train and 1 in val" in t for t in shown)


def test_images_changed_on_disk_are_refused_at_start_and_re_read_from_the_data_tab(
        qtbot, win):
    train, project = win.train, win.project
    changed = project.image(project.image_ids(split="train")[2])
    cv2.imwrite(str(changed.abs_path), np.full((20, 12, 3), 90, np.uint8))  # another size
    train.setup_tabs.setCurrentIndex(train.setup_tabs.count() - 1)  # away from Data
    qtbot.mouseClick(train.controls.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: changed.name in train.controls.problem.text(), timeout=30000)
    train.workers.wait()
    assert not train.runner.running
    problem = train.controls.problem.text()
    assert "changed on disk" in problem and "Re-read changed images" in problem
    assert train.current_setup() is train.data_panel  # where the button is
    assert "changed_on_disk" in train.data_panel.warning_codes()
    assert "now 12 x 20, recorded 16 x 16" in _warning_text(train, "changed_on_disk")
    button = train.data_panel.reread_button
    assert button is not None
    qtbot.waitUntil(lambda: button.isVisibleTo(train), timeout=5000)  # shown by Qt's queue
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "changed_on_disk" not in train.data_panel.warning_codes(),
                    timeout=30000)
    train.workers.wait()
    record = project.image(changed.id)
    assert (record.width, record.height) == (12, 20)
    assert "Re-read 1 changed image(s)" in train.data_panel.reread_note.text()
    checked = []
    train.validate(then=checked.append)  # the check before a run passes now
    qtbot.waitUntil(lambda: bool(checked), timeout=30000)
    train.workers.wait()


def test_the_label_workspace_image_menu_re_reads_changed_images(qtbot, win):
    project = win.project
    changed = project.image(project.image_ids(split="val")[0])
    cv2.imwrite(str(changed.abs_path), np.full((10, 30, 3), 90, np.uint8))
    win.workspaces.switch_to("label")
    action = win.actions.reread_changed
    image_menu = next(m for m in win.menuBar().findChildren(QMenu) if action in m.actions())
    assert image_menu.title().replace("&", "") == "Image"
    action.trigger()
    qtbot.waitUntil(lambda: project.image(changed.id).width == 30, timeout=30000)
    win.workers.wait()
    assert project.image(changed.id).height == 10
    assert "Re-read 1 changed image(s)" in win.statusBar().currentMessage()
