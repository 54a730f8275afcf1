"""The Train workspace on a 1366 x 768 laptop: the History's actions fit beside the setup
panels without a sideways scroll, the rarer ones in a menu."""

from __future__ import annotations

import test_train_workspace as tw
from PySide6.QtWidgets import QApplication, QInputDialog

tiny_project, dialogs, win = tw.tiny_project, tw.dialogs, tw.win  # the same fixtures


def test_history_actions_fit_a_laptop_window(qtbot, win, tmp_path, monkeypatch):
    train = win.train
    win.resize(1366, 768)
    train.result_tabs.setCurrentIndex(train.result_tabs.indexOf(
        train.history.parentWidget().parentWidget()))
    QApplication.processEvents()
    page = train.result_tabs.currentWidget()  # the History's scroll page
    assert page.widget() is train.history
    assert page.horizontalScrollBar().maximum() == 0, (
        train.history.minimumSizeHint().width(), page.viewport().width())
    bar_right = max(train.history.buttons[k].geometry().right()
                    for k in ("use", "resume", "diff"))
    assert max(bar_right, train.history.more.geometry().right()) <= page.viewport().width()
    win.grab().save(str(tmp_path / "train_history_1366.png"))
    # the rarer actions are in the More menu, enabled with one selected run
    menu = [a.text() for a in train.history.more_menu.actions()]
    assert menu == ["Export model...", "Rename...", "Open folder", "Delete..."]
    assert not train.history.more.isEnabled()
    run_id = win.project.create_run("classification", train.config())
    train.history.refresh(win.project)
    train.history.select_run(run_id)
    assert train.history.more.isEnabled()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("first try", True))
    train.history.buttons["rename"].trigger()
    assert win.project.run(run_id).name == "first try"
