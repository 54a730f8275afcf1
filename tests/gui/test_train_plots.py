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
