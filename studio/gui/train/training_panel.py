"""Hyperparameters: loss, optimizer, learning-rate schedule, run length, early stopping,
precision and device. Choices come from the engine (its lists of names and devices)."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGridLayout, QGroupBox, QWidget

from studio.gui.train.form import BoolEdit, ChoiceEdit, ConfigForm, ListEdit, NumberEdit
from studio.gui.train.tips import tip


class TrainingPanel(QWidget):
    def __init__(self, form: ConfigForm, parent: QWidget | None = None) -> None:
        from studio.gui.train.backend import (
            LOSS_NAMES,
            OPTIMIZERS,
            RESIZE_POLICIES,
            SCHEDULERS,
        )

        super().__init__(parent)
        self.form = form

        def group(title: str, rows: list[tuple[str, str, QWidget]]) -> QGroupBox:
            box = QGroupBox(title)
            layout = QFormLayout(box)
            for label, path, editor in rows:
                layout.addRow(label, form.add(path, editor, tip(path)).row)
            return box

        def choices(names) -> ChoiceEdit:
            return ChoiceEdit([(n, n.replace("_", " ")) for n in names])

        self.metric_choice = ChoiceEdit()
        self.device_choice = ChoiceEdit()
        boxes = [
            group("Loss", [
                ("Loss", "loss.name", choices(LOSS_NAMES)),
                ("Class weights", "loss.class_weights", ListEdit(allow_none=True)),
                ("Label smoothing", "loss.label_smoothing", NumberEdit()),
            ]),
            group("Optimizer and regularisation", [
                ("Optimizer", "optimizer.name", choices(OPTIMIZERS)),
                ("Learning rate", "optimizer.lr", NumberEdit()),
                ("Weight decay", "optimizer.weight_decay", NumberEdit()),
                ("Momentum", "optimizer.momentum", NumberEdit()),
                ("L1", "l1", NumberEdit()),
                ("Dropout", "dropout", NumberEdit(allow_none=True)),
                ("Gradient clip", "grad_clip", NumberEdit()),
            ]),
            group("Learning-rate schedule", [
                ("Scheduler", "scheduler.name", choices(SCHEDULERS)),
                ("Warm-up epochs", "scheduler.warmup_epochs", NumberEdit()),
                ("Final LR factor", "scheduler.min_lr_factor", NumberEdit()),
                ("Step size", "scheduler.step_size", NumberEdit()),
                ("Gamma", "scheduler.gamma", NumberEdit()),
                ("Plateau patience", "scheduler.patience", NumberEdit()),
            ]),
            group("Run length and images", [
                ("Epochs", "epochs", NumberEdit()),
                ("Batch size", "batch_size", NumberEdit()),
                ("Image size", "image_size", NumberEdit()),
                ("Resize policy", "resize_policy", choices(RESIZE_POLICIES)),
                ("Crops per image", "samples_per_image", NumberEdit()),
            ]),
            group("Early stopping", [
                ("Enabled", "early_stopping.enabled", BoolEdit()),
                ("Metric", "early_stopping.metric", self.metric_choice),
                ("Mode", "early_stopping.mode", ChoiceEdit([("max", "higher is better"),
                                                            ("min", "lower is better")])),
                ("Patience", "early_stopping.patience", NumberEdit()),
                ("Min. change", "early_stopping.min_delta", NumberEdit()),
                ("Overfit marker after", "overfit_patience", NumberEdit()),
            ]),
            group("Hardware", [
                ("Device", "device", self.device_choice),
                ("CPU threads", "cpu_threads", NumberEdit()),
                ("Mixed precision (AMP)", "amp", BoolEdit()),
                ("Seed", "seed", NumberEdit()),
            ]),
        ]
        grid = QGridLayout(self)
        for i, box in enumerate(boxes):
            grid.addWidget(box, i // 2, i % 2)
        grid.setRowStretch(3, 1)

    def set_task(self, task: str) -> None:
        from studio.gui.train.backend import METRICS

        self.metric_choice.set_choices([(m, m) for m in ("val_loss", "train_loss", *METRICS[task])])

    def set_devices(self, devices) -> None:
        """`devices`: the engine's DeviceChoice list (computed in a worker)."""
        self.device_choice.set_choices([(d.name, d.label) for d in devices])
