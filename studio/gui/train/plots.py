"""Live training curves (pyqtgraph): batch loss raw and smoothed, epoch train and
validation loss, validation metrics, learning rate.

One curve item per series, created once; points go into growing numpy buffers and the
curves are redrawn from a timer (at most `REDRAW_HZ` times a second, only the curves that
got new points), with downsampling and clip-to-view, so 100,000 batch points stay cheap.
The plots do not auto-range on every new point: their ranges grow in steps
(`StepRange`), so the axes and the grid are redrawn only when a curve leaves its range
and a frame (or an epoch) repaints just the curves. The grid is a GridItem: pyqtgraph's axis grid repaints every line through the axis's
cached picture and cost about 10 ms a plot per frame on a software raster, the GridItem
well under 1 ms with two scales of lines.
The best epoch is marked; stretches whose history records carry the engine's
"overfitting" flag are shaded and labelled.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

REDRAW_HZ = 10
SAMPLES_PER_PIXEL = 2.0
SMOOTHING = 0.95  # exponential moving average of the batch loss
# entries a row in a legend under its plot: three of the instance metrics' names are wider
# than the plot at 1366 px, and a legend wider than its plot pushes the axis end (the last
# point with it) out of sight
LEGEND_COLUMNS = 2
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


class Series:
    """x/y points in buffers that double when full, with the extent of the finite y."""

    def __init__(self, capacity: int = 1024) -> None:
        self.x = np.empty(capacity, np.float64)
        self.y = np.empty(capacity, np.float64)
        self.n = 0
        self.y_lo, self.y_hi = math.inf, -math.inf

    def extend(self, xs, ys) -> None:
        xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        need = self.n + len(xs)
        if need > len(self.x):
            size = max(need, 2 * len(self.x))
            self.x = np.resize(self.x, size)
            self.y = np.resize(self.y, size)
        self.x[self.n:need] = xs
        self.y[self.n:need] = ys
        self.n = need
        finite = ys[np.isfinite(ys)]
        if finite.size:
            self.y_lo = min(self.y_lo, float(finite.min()))
            self.y_hi = max(self.y_hi, float(finite.max()))

    def clear(self) -> None:
        self.n = 0
        self.y_lo, self.y_hi = math.inf, -math.inf

    def truncate(self, n: int) -> None:
        """Keep the first `n` points."""
        self.n = max(0, min(self.n, int(n)))
        finite = self.y[:self.n][np.isfinite(self.y[:self.n])]
        self.y_lo, self.y_hi = ((float(finite.min()), float(finite.max())) if finite.size
                                else (math.inf, -math.inf))

    def count_up_to(self, x: float) -> int:
        """How many points lie at or left of `x` (the x are ascending)."""
        return int(np.searchsorted(self.x[:self.n], x, side="right"))

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]


class LegendBelow(pg.LegendItem):
    """A legend the plot's layout places (in a row under the plot): pyqtgraph's own sets
    its geometry itself, to float over the curves."""

    def updateSize(self) -> None:  # noqa: N802 - pyqtgraph's name
        hint = self.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
        self.setMinimumHeight(hint.height())
        self.setPreferredSize(hint)
        self.updateGeometry()


def _plot(title: str, x_label: str, log_y: bool = False,
          downsampling: str = "peak", legend_at: tuple[int, int] | None = (-10, 10)
          ) -> pg.PlotWidget:
    """A plot with a faint grid and a legend (`legend_at`: pyqtgraph's offset, negative x
    from the right, negative y from the bottom; None: in rows below the plot, where it
    covers no curve)."""
    widget = pg.PlotWidget(title=title)
    widget.setBackground("w")
    item = widget.getPlotItem()
    grid = pg.GridItem(textPen=None)
    grid.setPen(pg.mkPen("#dcdcdc"))
    grid.setTickSpacing(x=[None, None], y=[None, None])  # two scales: ~10 lines, not ~100
    item.addItem(grid, ignoreBounds=True)
    item.setLabel("bottom", x_label)
    if legend_at is None:
        item.legend = LegendBelow(offset=None, colCount=LEGEND_COLUMNS, labelTextSize="8pt",
                                  verSpacing=-6, horSpacing=2)
        item.layout.addItem(item.legend, 4, 1)  # the row under the bottom axis
    else:
        item.addLegend(offset=legend_at, brush=pg.mkBrush(255, 255, 255, 210))  # over curves
    item.setDownsampling(auto=True, mode=downsampling)
    item.setClipToView(True)
    if log_y:
        item.setLogMode(y=True)
    return widget


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above `value`."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


class StepRange:
    """Keep a plot's view range still while its curves stay inside it: x grows to the next
    1-2-5 step, y to the data's extent plus a margin, only when a point falls outside.

    `limit`: where x is known to end (the run's last step or epoch): x never runs past
    it while the points stay inside it (60 steps show 0..60, not 0..100). `tight`: the
    run has ended, x ends at its last point."""

    MARGIN = 0.08

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.plot = plot
        plot.getPlotItem().disableAutoRange()
        self.x_max = 0.0
        self.y: tuple[float, float] | None = None
        self.limit: float | None = None
        self.tight = False

    def reset(self) -> None:
        """Forget the points seen: the view is the blank plot's until the next fit (a
        run of another project starts from nothing, not from the last one's axes)."""
        self.x_max, self.y = 0.0, None
        self.plot.getPlotItem().setRange(xRange=(0, 1), yRange=(0, 1))

    def x_end(self, x_hi: float) -> float:
        """Where the x axis ends for points up to `x_hi`."""
        if self.tight:
            return max(x_hi, 1.0)
        nice = _nice_ceiling(x_hi)
        if self.limit is not None and x_hi <= self.limit:
            return min(nice, max(self.limit, 1.0))
        return nice

    def fit(self, series: list[Series]) -> None:
        series = [s for s in series if s.n]
        if not series:
            return
        x_hi = max(float(s.x[s.n - 1]) for s in series)
        changed = x_hi > self.x_max
        if changed:
            self.x_max = self.x_end(x_hi)
        lo, hi = min(s.y_lo for s in series), max(s.y_hi for s in series)
        if lo <= hi:
            if self.y is None or lo < self.y[0] or hi > self.y[1]:
                pad = (hi - lo) * self.MARGIN or abs(hi) * self.MARGIN or 1.0
                self.y = (lo - pad, hi + pad)
                changed = True
        if changed:
            item = self.plot.getPlotItem()
            item.setXRange(0, self.x_max, padding=0.02)
            if self.y is not None:
                item.setYRange(*self.y, padding=0)


class LivePlots(QWidget):
    """Four plots fed by `add_batches` / `add_epoch`; `redraw` runs from a timer."""

    def __init__(self, parent: QWidget | None = None, timer: bool = True) -> None:
        super().__init__(parent)
        # raw batch losses are noise around the smoothed curve: a subsample shows their
        # spread as well as the peaks do, at a third of the cost per frame
        self.batch_plot = _plot("Batch loss", "step", downsampling="subsample")
        self.epoch_plot = _plot("Epoch loss", "epoch")
        # several metrics, each anywhere in 0..1: their legend goes under the plot
        self.metric_plot = _plot("Validation metrics", "epoch", legend_at=None)
        self.lr_plot = _plot("Learning rate", "step", downsampling="subsample")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, w in enumerate((self.batch_plot, self.epoch_plot, self.metric_plot, self.lr_plot)):
            grid.addWidget(w, i // 2, i % 2)
        self.series: dict[str, Series] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        pen = pg.mkPen
        self._curve("batch", self.batch_plot, "raw", pen("#9ecae1", width=1))
        self._curve("smooth", self.batch_plot, "smoothed", pen("#08519c", width=2))
        self._curve("train_loss", self.epoch_plot, "train", pen(COLOURS[0], width=2), True)
        self._curve("val_loss", self.epoch_plot, "validation", pen(COLOURS[1], width=2), True)
        self._curve("lr", self.lr_plot, "learning rate", pen(COLOURS[2], width=2))
        self.ranges = {"batch": StepRange(self.batch_plot), "lr": StepRange(self.lr_plot),
                       "epoch": StepRange(self.epoch_plot),
                       "metric": StepRange(self.metric_plot)}
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#2ca02c", style=pg.QtCore.Qt
                                                                 .PenStyle.DashLine),
                                         label="best", labelOpts={"position": 0.55})
        self.best_line.hide()
        self.epoch_plot.addItem(self.best_line)
        self.overfit_items: list = []
        self.metric_names: list[str] = []
        self._smooth: float | None = None
        self._smooth_n = 0
        self._dirty: set[str] = set()
        self.epochs: list[dict] = []
        self.steps_per_epoch: int | None = None  # of the run whose batches are shown
        self.planned_epochs: int | None = None  # of the run shown, once it is known
        # epochs of a resumed run whose batches this window never saw: (epoch, train
        # loss, lr), drawn one point an epoch once the run's steps per epoch are known
        self._earlier: list[tuple[int, float, float]] = []
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / REDRAW_HZ))
        self.timer.timeout.connect(self.redraw)
        if timer:
            self.timer.start()

    def _curve(self, key: str, plot: pg.PlotWidget, name: str, pen, symbols: bool = False) -> None:
        kwargs = {"symbol": "o", "symbolSize": 5, "symbolBrush": pen.color()} if symbols else {}
        self.curves[key] = plot.plot([], [], name=name, pen=pen, **kwargs)
        # two samples per pixel, not pyqtgraph's five: what a screen can show of a long run
        self.curves[key].opts["autoDownsampleFactor"] = SAMPLES_PER_PIXEL
        self.series[key] = Series()

    # --- feeding ----------------------------------------------------------------------
    def clear(self) -> None:
        self.clear_epochs()
        for key in ("batch", "smooth", "lr"):
            self.series[key].clear()
        self._smooth, self._smooth_n = None, 0
        self.steps_per_epoch, self._earlier = None, []
        self.planned_epochs = None
        for ranger in self.ranges.values():
            ranger.reset()
            ranger.limit, ranger.tight = None, False
        self.set_metrics([])  # the last run's metric curves and legend entries go too
        self._dirty = set(self.curves)
        self.redraw()

    def clear_epochs(self) -> None:
        """Forget the epoch curves (the batch curves stay)."""
        for key in ("train_loss", "val_loss", *self.metric_names):
            self.series[key].clear()
            self._dirty.add(key)
        for item in self.overfit_items:
            self.epoch_plot.removeItem(item)
        self.overfit_items = []
        self.best_line.hide()
        self.ranges["epoch"].reset()
        self.ranges["metric"].reset()
        self.epochs = []

    def set_plan(self, epochs: int | None) -> None:
        """The run trains `epochs` epochs in all: the epoch axes end there, the step axes
        at its last step once the steps per epoch are known (with its first batch)."""
        self.planned_epochs = int(epochs) if epochs else None
        self._set_limits()
        for ranger in self.ranges.values():
            ranger.tight = False
            ranger.reset()
        self._dirty = set(self.curves)

    def _set_limits(self) -> None:
        epochs, steps = self.planned_epochs, self.steps_per_epoch
        for name in ("epoch", "metric"):
            self.ranges[name].limit = float(epochs) if epochs else None
        for name in ("batch", "lr"):
            self.ranges[name].limit = float(epochs * steps) if epochs and steps else None

    def finish(self) -> None:
        """The run has ended (finished, stopped, failed): each x axis ends at its last
        point."""
        for ranger in self.ranges.values():
            ranger.tight = True
            ranger.reset()
        self.redraw(force=True)

    def set_metrics(self, metrics: list[str]) -> None:
        """Only these metric curves (and legend entries) exist: another task's go."""
        legend = self.metric_plot.getPlotItem().legend
        for name in [n for n in self.metric_names if n not in metrics]:
            curve = self.curves.pop(name)
            self.metric_plot.removeItem(curve)
            if legend is not None:
                legend.removeItem(curve)
            del self.series[name]
            self.metric_names.remove(name)
            self._dirty.discard(name)

    def keep_batches_until(self, epoch: int) -> None:
        """A run resumes after `epoch`: keep its batch points up to there (those of an
        unfinished epoch after it are trained again)."""
        if self.steps_per_epoch is None:
            return
        limit = epoch * self.steps_per_epoch
        for key in ("batch", "smooth", "lr"):
            series = self.series[key]
            series.truncate(series.count_up_to(limit))
            self._dirty.add(key)
        batch, smooth = self.series["batch"], self.series["smooth"]
        n = int(np.isfinite(batch.y[:batch.n]).sum())
        # the smoothed value is the bias-corrected EMA: undo the correction to go on
        self._smooth = float(smooth.y[smooth.n - 1]) * (1 - SMOOTHING ** n) if n else None
        self._smooth_n = n

    def show_earlier_epochs(self, history: list[dict]) -> None:
        """A resumed run whose batches were not seen here: its earlier epochs' training
        loss and learning rate are drawn at their last step, once the steps per epoch are
        known (with the run's first batch)."""
        self._earlier = [(int(h["epoch"]), float(h["train_loss"]), float(h["lr"]))
                         for h in history if isinstance(h.get("train_loss"), (int, float))
                         and isinstance(h.get("lr"), (int, float))]

    def add_batches(self, batches: list[dict]) -> None:
        if not batches:
            return
        xs, ys, smooth, lrs = [], [], [], []
        s, n = self._smooth or 0.0, self._smooth_n
        steps = int(batches[-1]["steps_per_epoch"])
        if steps != self.steps_per_epoch:
            self.steps_per_epoch = steps
            self._set_limits()
        first = batches[0]["epoch"]
        for epoch, loss, lr in self._earlier:
            if epoch < first and math.isfinite(loss):
                s, n = SMOOTHING * s + (1 - SMOOTHING) * loss, n + 1
                xs.append(epoch * self.steps_per_epoch)
                ys.append(loss)
                smooth.append(s / (1 - SMOOTHING ** n))
                lrs.append(lr)
        self._earlier = []
        for b in batches:
            step = (b["epoch"] - 1) * b["steps_per_epoch"] + b["step"]
            loss = float(b["loss"])
            if math.isfinite(loss):
                s, n = SMOOTHING * s + (1 - SMOOTHING) * loss, n + 1
            xs.append(step)
            ys.append(loss)
            smooth.append(s / (1 - SMOOTHING ** n) if n else loss)  # bias-corrected EMA
            lrs.append(float(b["lr"]))
        self._smooth, self._smooth_n = s, n
        self.series["batch"].extend(xs, ys)
        self.series["smooth"].extend(xs, smooth)
        self.series["lr"].extend(xs, lrs)
        self._dirty |= {"batch", "smooth", "lr"}

    def add_epoch(self, record: dict, metrics: list[str]) -> None:
        """One history record (the engine's on_epoch info or a stored history row)."""
        epoch = record["epoch"]
        self.epochs.append(record)
        for key in ("train_loss", "val_loss"):
            value = record.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.series[key].extend([epoch], [value])
            self._dirty.add(key)
        for name in metrics:
            value = record.get(name)
            if not isinstance(value, (int, float)):
                continue
            if name not in self.curves:
                colour = COLOURS[(len(self.metric_names) + 3) % len(COLOURS)]
                self._curve(name, self.metric_plot, name, pg.mkPen(colour, width=2), True)
                self.metric_names.append(name)
            self.series[name].extend([epoch], [value])
            self._dirty.add(name)
        best = record.get("best") or {}
        if best.get("epoch") is not None:
            self.best_line.setValue(best["epoch"])
            self.best_line.label.setFormat(f"best: epoch {best['epoch']}")
            self.best_line.show()
        if record.get("overfitting"):
            self._mark_overfitting(epoch)

    def _mark_overfitting(self, epoch: int) -> None:
        """Shade from the start of the rising stretch to this epoch (grow the last region
        when the stretch continues)."""
        if self.overfit_items:
            region = self.overfit_items[-2]
            lo, hi = region.getRegion()
            if hi >= epoch - 1:
                region.setRegion((lo, epoch))
                return
        flagged = [r for r in self.epochs if not r.get("overfitting")]
        start = flagged[-1]["epoch"] if flagged else epoch - 1
        region = pg.LinearRegionItem((start, epoch), movable=False,
                                     brush=pg.mkBrush(255, 0, 0, 40), pen=pg.mkPen(None))
        label = pg.TextItem("overfitting", color="#c0392b", anchor=(0, 0))
        label.setPos(start, 0)
        self.epoch_plot.addItem(region)
        self.epoch_plot.addItem(label)
        self.overfit_items += [region, label]

    # --- drawing ----------------------------------------------------------------------
    def redraw(self, force: bool = False) -> None:
        keys = set(self.curves) if force else self._dirty
        if not keys:
            return
        self._dirty = set()
        for key in keys:
            x, y = self.series[key].view()
            self.curves[key].setData(x, y)
        for name, members in (("batch", ("batch", "smooth")), ("lr", ("lr",)),
                              ("epoch", ("train_loss", "val_loss")),
                              ("metric", self.metric_names)):
            if keys.intersection(members):
                self.ranges[name].fit([self.series[k] for k in members])
        for i in range(1, len(self.overfit_items), 2):  # labels at the top of the plot
            view = self.epoch_plot.getPlotItem().viewRange()
            self.overfit_items[i].setPos(self.overfit_items[i - 1].getRegion()[0], view[1][1])

    def point_count(self, key: str) -> int:
        return self.series[key].n if key in self.series else 0
