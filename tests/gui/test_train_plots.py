"""The live plots: curves redraw only when their series grew, and view ranges stay still
while the points stay inside them (so a frame repaints curves, not axes and grid)."""

from __future__ import annotations

import math

import pytest

from studio.gui.train.plots import LivePlots, Series


@pytest.fixture
def plots(qtbot):
    widget = LivePlots(timer=False)
    qtbot.addWidget(widget)
    widget.resize(800, 500)
    widget.show()
    return widget


def _batches(start: int, n: int, loss: float = 1.0, steps: int = 100) -> list[dict]:
    return [{"epoch": (i - 1) // steps + 1, "step": (i - 1) % steps + 1,
             "steps_per_epoch": steps, "loss": loss, "lr": 0.01}
            for i in range(start, start + n)]


def _x_range(widget) -> list[float]:
    return widget.getPlotItem().viewRange()[0]


def test_series_tracks_the_extent_of_finite_values():
    s = Series(capacity=2)
    s.extend([1, 2, 3], [0.5, math.nan, 2.0])
    s.extend([4], [math.inf])
    assert s.n == 4 and (s.y_lo, s.y_hi) == (0.5, 2.0)
    s.clear()
    assert s.n == 0 and s.y_lo > s.y_hi


def test_ranges_grow_in_steps_and_hold_still_in_between(plots):
    plots.add_batches(_batches(1, 30, loss=1.0))
    plots.redraw()
    first = _x_range(plots.batch_plot)
    assert first[0] <= 0 and 30 <= first[1] <= 55  # 50: the next 1-2-5 step
    y_first = plots.batch_plot.getPlotItem().viewRange()[1]
    assert y_first[0] < 1.0 < y_first[1]
    plots.add_batches(_batches(31, 10, loss=1.0))
    plots.redraw()
    assert _x_range(plots.batch_plot) == first  # inside: the view does not move
    plots.add_batches(_batches(41, 20, loss=3.0))  # past 50 and above the y range
    plots.redraw()
    grown = _x_range(plots.batch_plot)
    assert grown[1] >= 60 and grown[1] > first[1]
    assert plots.batch_plot.getPlotItem().viewRange()[1][1] > 3.0


def test_redraw_touches_only_curves_that_got_points(plots, monkeypatch):
    plots.add_batches(_batches(1, 5))
    plots.add_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "accuracy": 0.7},
                    ["accuracy"])
    plots.redraw()
    touched = []
    for key, curve in plots.curves.items():
        monkeypatch.setattr(curve, "setData", lambda *a, key=key, **k: touched.append(key))
    plots.add_batches(_batches(6, 3))
    plots.redraw()
    assert sorted(touched) == ["batch", "lr", "smooth"]
    touched.clear()
    plots.redraw()
    assert touched == []  # nothing new: nothing redrawn
    plots.add_epoch({"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "accuracy": 0.8},
                    ["accuracy"])
    plots.redraw()
    assert sorted(touched) == ["accuracy", "train_loss", "val_loss"]
    touched.clear()
    plots.redraw(force=True)
    assert sorted(touched) == sorted(plots.curves)


def test_a_resumed_run_keeps_its_batch_points_up_to_its_last_epoch(qtbot):
    from studio.gui.train.live_panel import LivePanel

    panel = LivePanel()
    qtbot.addWidget(panel)
    history = [{"epoch": 1, "train_loss": 0.9, "lr": 0.01}]
    panel.begin(10, ["accuracy"], [], run_id=None)
    panel.run_id = 7  # the workspace learns the new run's id from the store
    panel.plots.add_batches(_batches(1, 150, loss=1.0, steps=100))  # epoch 2 cut short
    smooth_at_100 = panel.plots.series["smooth"].y[99]
    panel.begin(10, ["accuracy"], history, run_id=7)  # Resume after epoch 1
    plots = panel.plots
    assert plots.point_count("batch") == plots.point_count("lr") == 100
    assert plots.point_count("train_loss") == 1
    plots.add_batches(_batches(101, 1, loss=1.0, steps=100))  # epoch 2 again
    assert plots.point_count("batch") == 101
    assert plots.series["smooth"].y[100] == pytest.approx(smooth_at_100)  # the EMA goes on
    panel.begin(10, ["accuracy"], [], run_id=None)  # a new run starts clean
    assert plots.point_count("batch") == 0


def test_a_run_resumed_in_a_new_window_shows_one_point_an_earlier_epoch(plots):
    history = [{"epoch": e, "train_loss": 1.0 / e, "lr": 0.1 / e} for e in (1, 2, 3)]
    plots.clear()
    plots.show_earlier_epochs(history)
    plots.add_batches(_batches(301, 5, steps=100))  # the first batches of epoch 4
    x, y = plots.series["batch"].view()
    assert list(x[:3]) == [100, 200, 300] and list(y[:3]) == pytest.approx([1, 0.5, 1 / 3])
    assert list(plots.series["lr"].view()[1][:3]) == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert plots.point_count("batch") == 8


def test_metric_curves_and_legend_belong_to_the_task_and_cover_no_curve(plots):
    plots.add_epoch({"epoch": 1, "mean_iou": 0.5, "mean_dice": 0.6}, ["mean_iou", "mean_dice"])
    plots.clear()
    plots.set_metrics(["accuracy", "macro_f1"])  # a classification run follows
    plots.add_epoch({"epoch": 1, "accuracy": 0.7, "macro_f1": 0.6}, ["accuracy", "macro_f1"])
    legend = plots.metric_plot.getPlotItem().legend
    names = [label.text for _sample, label in legend.items]
    assert names == ["accuracy", "macro_f1"]
    assert "mean_iou" not in plots.curves
    plots.redraw(force=True)
    qtbot_process()
    view = plots.metric_plot.getPlotItem().vb
    legend_rect = legend.mapRectToScene(legend.boundingRect())
    view_rect = view.mapRectToScene(view.boundingRect())
    assert legend_rect.height() > 0 and not legend_rect.intersects(view_rect)


def qtbot_process() -> None:
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()


def test_x_axes_end_at_the_runs_known_last_step_and_epoch(plots):
    plots.set_plan(10)  # 10 epochs of 6 steps: 60 steps in all
    plots.add_batches(_batches(1, 12, steps=6))
    plots.add_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "accuracy": 0.7},
                    ["accuracy"])
    plots.redraw()
    assert 20 <= _x_range(plots.batch_plot)[1] <= 21  # the data's 1-2-5 step
    plots.add_batches(_batches(13, 40, steps=6))
    for epoch in range(2, 10):
        plots.add_epoch({"epoch": epoch, "train_loss": 0.5, "val_loss": 0.6, "accuracy": 0.7},
                        ["accuracy"])
    plots.redraw()
    assert 60 <= _x_range(plots.batch_plot)[1] <= 62  # 52 steps: to 60, not 100
    assert 60 <= _x_range(plots.lr_plot)[1] <= 62
    assert 10 <= _x_range(plots.epoch_plot)[1] <= 10.3  # 9 epochs: to 10, not 20
    assert 10 <= _x_range(plots.metric_plot)[1] <= 10.3
    plots.add_batches(_batches(53, 8, steps=6))
    plots.redraw()
    assert 60 <= _x_range(plots.batch_plot)[1] <= 62  # still, to the last step


def test_an_ended_run_shows_its_points_to_the_last(plots):
    plots.set_plan(20)
    plots.add_batches(_batches(1, 30, steps=6))  # stopped in epoch 5 of 20
    for epoch in (1, 2, 3, 4):
        plots.add_epoch({"epoch": epoch, "train_loss": 0.5, "val_loss": 0.6}, [])
    plots.redraw()
    assert _x_range(plots.batch_plot)[1] >= 50  # the next 1-2-5 step while it trains
    plots.finish()
    assert 30 <= _x_range(plots.batch_plot)[1] <= 31
    assert 4 <= _x_range(plots.epoch_plot)[1] <= 4.2
    plots.set_plan(20)  # resumed: the 1-2-5 steps again, up to the plan
    plots.redraw()
    assert _x_range(plots.batch_plot)[1] >= 50
    plots.clear()  # another run, plan unknown: the 1-2-5 steps
    plots.add_batches(_batches(1, 60, steps=6))
    plots.redraw()
    assert _x_range(plots.batch_plot)[1] >= 100


def test_an_instance_runs_legend_leaves_its_last_point_in_sight(qtbot):
    """Eight metric names under a plot as narrow as at 1366 px: the legend must not widen
    the plot past its widget (that cut off the right end of the axis, last point and all)."""
    widget = LivePlots(timer=False)
    qtbot.addWidget(widget)
    widget.resize(630, 500)
    widget.show()
    names = ["mask_map50", "mask_map", "mask_map75", "mask_ar100", "box_map50", "box_map",
             "box_map75", "box_ar100"]
    widget.add_epoch({"epoch": 5, **{n: 0.8 for n in names}}, names)
    widget.redraw(force=True)
    qtbot_process()
    plot = widget.metric_plot
    item_rect = plot.getPlotItem().sceneBoundingRect()
    assert item_rect.right() <= plot.viewport().width() + 1
    view = plot.getPlotItem().vb
    right_edge = view.mapSceneToView(view.sceneBoundingRect().topRight()).x()
    visible = view.mapToScene(view.rect().topRight()).x() <= plot.viewport().width() + 1
    assert visible and right_edge >= 5  # the point at epoch 5 is inside what is shown


def test_a_long_failure_does_not_widen_the_panel_past_a_laptop_screen(qtbot):
    from studio.gui.train.live_panel import LivePanel

    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.begin(10, ["accuracy"], [], run_id=None)
    reason = ("'early_stopping.metric' must be one of mask_map50, mask_map, box_map50, "
              "box_map, val_loss for the instance task; got 'mean_iou' ") * 4
    panel.end(None, ValueError(reason))
    panel.show()
    qtbot.waitExposed(panel)
    # the layout asked for the whole line's width: Train grew past a laptop's screen
    assert panel.sizeHint().width() <= 1366
    assert panel.layout().totalMinimumSize().width() <= 1366
    state = panel.figures["state"]
    assert state.text().startswith("Failed: ") and reason in state.toolTip()
    assert reason in panel.log_view.toPlainText()
