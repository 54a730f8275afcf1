"""A person's journey through Train on a tiny semantic project, by mouse: Start, Stop after
the first epoch, Resume from the history, let it finish. The live curves keep the earlier
points, the durations are the sum of both sessions, the history says what the run is
doing and offers no Resume while it trains."""

from __future__ import annotations

import pytest
import test_train_workspace as tw
from PySide6.QtCore import Qt
from testutil import add_toy_segmentation

from studio.core.project import Project
from studio.gui.train.history import COLUMNS

dialogs = tw.dialogs  # message boxes answered at once (the fixture)

SEG = {"epochs": 6, "batch_size": 4, "image_size": 16, "cpu_threads": 1,
       "model_options.depth": 2, "model_options.width": 8,
       "model_options.space_to_depth": 1, "scheduler.warmup_epochs": 0,
       "early_stopping.enabled": False}


@pytest.fixture
def seg_window(qtbot, tmp_path, dialogs):
    root = tmp_path / "seg"
    with Project.create(root, name="cells") as p:
        add_toy_segmentation(p, tmp_path / "img", ["train"] * 8 + ["val"] * 2)
    window = tw.open_on_train(qtbot, tmp_path, root)
    yield window
    window.train.stop_and_wait()
    window.close()


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def row_of(table, run_id: int) -> int:
    for r in range(table.rowCount()):
        if table.item(r, 0).text() == str(run_id):
            return r
    raise AssertionError(f"run {run_id} is not in the history")


def cell(train, run_id: int, column: str) -> str:
    table = train.history.table
    return table.item(row_of(table, run_id), COLUMNS.index(column)).text()


def test_start_stop_resume_finish(qtbot, seg_window):
    win = seg_window
    train = win.train
    assert train.task == "semantic"
    tw.set_fields(train, SEG)
    ends: list[dict] = []
    steps_seen: list[int] = []

    def seen(events) -> None:
        steps_seen.extend(b["steps_per_epoch"] for b in events.batches)
        if events.end:
            ends.append(events.end)

    train.runner.eventsArrived.connect(seen)

    # Start, and Stop once the first epoch is in
    click(qtbot, train.controls.start)
    qtbot.waitUntil(lambda: train.runner.running, timeout=30000)
    plots = train.live.plots
    qtbot.waitUntil(lambda: plots.point_count("train_loss") >= 1, timeout=60000)
    click(qtbot, train.controls.stop)
    tw.wait_run(qtbot, train)
    run = win.project.runs()[-1]
    assert run.status == "stopped" and run.checkpoints.get("last")
    done, steps = len(run.history), steps_seen[-1]
    assert 1 <= done < SEG["epochs"] and steps
    first_duration = run.duration_s
    assert first_duration and ends[-1]["duration_s"] == pytest.approx(first_duration)
    assert cell(train, run.id, "status") == "stopped"

    # Resume from the history: select the run's row, click its Resume
    win.train.result_tabs.setCurrentWidget(train.history)
    table = train.history.table
    rect = table.visualItemRect(table.item(row_of(table, run.id), 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert train.history.selected_ids() == [run.id]
    click(qtbot, train.history.buttons["resume"])
    qtbot.waitUntil(lambda: train.runner.running, timeout=30000)
    # the earlier epochs' batch and learning-rate points are still drawn
    assert plots.point_count("batch") == plots.point_count("lr") == done * steps
    assert plots.point_count("train_loss") == done
    qtbot.waitUntil(lambda: plots.point_count("batch") > done * steps, timeout=60000)
    # while it trains, the history says so and offers no Resume (of any run)
    assert cell(train, run.id, "status") == "running"
    assert not train.history.buttons["resume"].isEnabled()
    assert not train.controls.resume.isEnabled()
    tw.wait_run(qtbot, train, timeout=240000)

    run = win.project.run(run.id)
    assert run.status == "finished"
    assert [h["epoch"] for h in run.history] == list(range(1, SEG["epochs"] + 1))
    assert plots.point_count("batch") == plots.point_count("lr") == SEG["epochs"] * steps
    assert plots.point_count("train_loss") == SEG["epochs"]
    # the durations are the sum of both sessions, everywhere
    second = ends[-1]
    assert second["status"] == "finished"
    assert run.duration_s == pytest.approx(first_duration + second["duration_s"])
    assert cell(train, run.id, "duration") == f"{run.duration_s:.0f} s"
    assert cell(train, run.id, "status") == "finished"
    assert f"time {run.duration_s:.0f} s" in train.summary.header.text()
    assert train.history.buttons["resume"].isEnabled()  # the run is selected, none trains
