"""What a training run is doing now: curves, progress of the epoch and the run, ETA,
images per second, device memory, the engine's log lines and why the run ended."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.gui.train.plots import LivePlots

LOG_LINES = 5000


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LivePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots = LivePlots()
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("epoch: %p%")
        self.run_bar = QProgressBar()
        self.run_bar.setFormat("run: %v / %m epochs")
        self.figures = {k: QLabel("-") for k in ("state", "eta", "speed", "memory")}
        # a long reason (a failure, early stopping) must not widen Train past the screen:
        # the label takes the width it is given; the whole line is in its tooltip and log
        self.figures["state"].setSizePolicy(QSizePolicy.Policy.Ignored,
                                            QSizePolicy.Policy.Preferred)
        self.set_state("-")
        self.figures["eta"].setToolTip("Time left if every epoch takes as long as the ones "
                                       "so far (early stopping can end the run sooner).")
        self.figures["speed"].setToolTip("Training images per second.")
        self.figures["memory"].setToolTip("Device memory in use (GPU) or the program's "
                                          "memory (CPU).")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setToolTip("The engine's messages about this run.")
        info = QGridLayout()
        info.addWidget(self.epoch_bar, 0, 0)
        info.addWidget(self.run_bar, 0, 1)
        figures = QHBoxLayout()  # the state's line takes what the short figures leave
        for key in ("state", "eta", "speed", "memory"):
            figures.addWidget(self.figures[key], 1 if key == "state" else 0)
            figures.addSpacing(12)
        info.addLayout(figures, 1, 0, 1, 2)
        bottom = QWidget()
        column = QVBoxLayout(bottom)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(info)
        column.addWidget(self.log_view)
        split = QSplitter()
        split.setOrientation(Qt.Orientation.Vertical)
        split.addWidget(self.plots)
        split.addWidget(bottom)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self.total_epochs = 1
        self.first_epoch = 1
        self.started_at = 0.0
        self.metrics: list[str] = []
        self.run_id: int | None = None  # the run whose curves are shown
        self.summary_logged = False  # the log said its Summary is ready

    def begin(self, epochs: int, metrics: list[str], history: list[dict] | None = None,
              run_id: int | None = None) -> None:
        """A run starts (or resumes run `run_id` with the `history` it has so far: the
        batch curves drawn here for it stay up to its last saved epoch; a run whose
        batches this window did not see gets one point an epoch)."""
        history = list(history or [])
        if run_id is not None and run_id == self.run_id:
            self.plots.keep_batches_until(max((int(h.get("epoch", 0)) for h in history),
                                              default=0))
            self.plots.clear_epochs()
        else:
            self.plots.clear()
            self.plots.show_earlier_epochs(history)
        self.run_id = run_id
        self.metrics = list(metrics)
        self.plots.set_metrics(self.metrics)
        self.total_epochs = max(1, int(epochs))
        self.plots.set_plan(self.total_epochs)
        self.summary_logged = False
        for record in history:
            self.plots.add_epoch(record, self.metrics)
        self.first_epoch = len(history or []) + 1
        self.started_at = time.monotonic()
        self.epoch_bar.setValue(0)
        self.run_bar.setRange(0, self.total_epochs)
        self.run_bar.setValue(len(history or []))
        self.set_state("Starting: building the model...")
        self.figures["eta"].setText("ETA -")
        self.figures["speed"].setText("- img/s")
        self.figures["memory"].setText("memory -")
        self.log_view.clear()

    def set_state(self, text: str) -> None:
        """What the run is doing (one line, cut at the panel's width; whole in the tooltip)."""
        self.figures["state"].setText(text)
        self.figures["state"].setToolTip(f"{text}\n\nWhat the run is doing, and why it ended.")

    def show_events(self, events) -> None:
        if events.batches:
            self.plots.add_batches(events.batches)
            last = events.batches[-1]
            self.epoch_bar.setValue(int(100 * last["step"] / max(1, last["steps_per_epoch"])))
            self.figures["speed"].setText(f"{last['images_per_s']:.1f} img/s")
            self.set_state(f"Training epoch {last['epoch']} of {self.total_epochs}")
            done = (last["epoch"] - self.first_epoch) + last["step"] / max(1, last["steps_per_epoch"])
            left = self.total_epochs - self.first_epoch + 1 - done
            if done > 0:
                elapsed = time.monotonic() - self.started_at
                self.figures["eta"].setText(f"ETA {_duration(elapsed / done * left)}")
        for record in events.epochs:
            self.plots.add_epoch(record, self.metrics)
            self.run_bar.setValue(int(record["epoch"]))
            self.epoch_bar.setValue(100)
        for line in events.logs:
            self.log_view.appendPlainText(line)
            if line.startswith("Early stopping"):
                self.set_state(line)
        if events.memory is not None:
            self.figures["memory"].setText(f"memory {events.memory / 2**20:,.0f} MiB")

    def summary_shown(self, run_id: int, text: str) -> None:
        """The Summary tab shows run `run_id`'s report (or why it has none): the log of
        that run ends with it, once (the last line no longer says it is evaluating)."""
        if run_id != self.run_id or self.summary_logged:
            return
        self.summary_logged = True
        self.log_view.appendPlainText(text)

    def end(self, summary: dict | None, error: BaseException | None) -> None:
        self.plots.finish()
        if summary is not None and summary.get("status") == "interrupted":
            text = f"Interrupted: {summary.get('error') or error}"
            self.set_state(text)
            self.log_view.appendPlainText(text)
        elif error is not None:
            self.set_state(f"Failed: {error}")
            self.log_view.appendPlainText(f"Failed: {error}")
        elif summary is not None:
            status = summary.get("status")
            if summary.get("early_stopped"):
                text = self.figures["state"].text()  # the engine's reason, set above
            elif status == "stopped":
                text = f"Stopped after epoch {summary.get('epochs_done')}; resume continues it."
            else:
                text = f"Finished {summary.get('epochs_done')} epochs."
            self.set_state(text)
            self.figures["eta"].setText(f"took {_duration(summary.get('duration_s') or 0)}")
            self.log_view.appendPlainText(text)
