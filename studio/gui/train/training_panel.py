"""Hyperparameters: loss, optimizer, learning-rate schedule, run length, early stopping,
the task's own options (detection thresholds), splits, precision and device.

The rows are the engine's fields of the task (`config_fields`), grouped here by section;
a field no group names is shown under "More options", so none is missing. The device
list is the engine's (found in a worker).
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from studio.gui.train import backend
from studio.gui.train.form import OPTIONS, ChoiceEdit, ConfigForm, FieldGroup, task_fields

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Loss", ("loss.",)),
    ("Optimizer and regularisation", ("optimizer.", "l1", "dropout", "grad_clip")),
    ("Learning-rate schedule", ("scheduler.",)),
    ("Run length and images", ("epochs", "batch_size", "image_size", "resize_policy",
                               "samples_per_image", "crops_by_area", "channels", "normalize",
                               "normalize_max_images")),
    ("Early stopping", ("early_stopping.", "overfit_patience", "val_every")),
    ("Hardware", ("device", "cpu_threads", "amp", "channels_last", "seed", "deterministic",
                  "num_workers", "cache_mb")),
    ("Prediction", ("detection.", "tta")),
    ("Splits", ("splits.",)),
)


def _here(path: str) -> bool:
    """The fields this panel asks the engine for: all but the model's options (the model
    panel asks for those whenever the model changes) and the task (the controls' list)."""
    return path != "task" and not path.startswith(f"{OPTIONS}.")


class TrainingPanel(QWidget):
    def __init__(self, form: ConfigForm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = form
        self.task = None
        self.device_choice = ChoiceEdit()
        form.add("device", self.device_choice)
        self.device_choice.connect_changed(lambda *_a: self.note_amp())
        form.changed.connect(lambda path: path == "model" and self.note_amp())
        self.has_cuda = False  # a CUDA device is in the engine's list
        self.groups = [FieldGroup(title, members) for title, members in GROUPS]
        self.more = FieldGroup("More options")
        grid = QGridLayout(self)
        for i, box in enumerate([*self.groups, self.more]):
            grid.addWidget(box, i // 2, i % 2)
        grid.setRowStretch(len(self.groups) // 2 + 1, 1)
        form.add_placer(self._place)
        form.add_placer(self._place_rest, catch_all=True)

    def _place(self, fields) -> list[str]:
        return [p for box in self.groups for p in box.take(fields)]

    def _place_rest(self, fields) -> list[str]:
        return self.more.take(fields, everything=True)

    def set_task(self, task: str) -> None:
        """Make the task's fields (every option of its config but the model's own)."""
        self.task = task
        self.form.set_specs(task_fields(task), within=_here)
        self.note_amp()

    def set_devices(self, devices) -> None:
        """`devices`: the engine's DeviceChoice list (computed in a worker)."""
        self.device_choice.set_choices([(d.name, d.label) for d in devices])
        self.has_cuda = any(d.name.startswith("cuda") for d in devices)
        self.note_amp()

    def note_amp(self) -> None:
        """What the engine does with mixed precision for the model on the chosen device,
        said beside the tick when it is not float16 on CUDA (the label column keeps its
        width)."""
        field = self.form.fields.get("amp")
        if field is None or not hasattr(field.editor, "setText"):
            return
        device = str(self.device_choice.value() or "auto")
        cuda = device.startswith("cuda") or (device == "auto" and self.has_cuda)
        kind = "cuda" if cuda else "cpu" if device in ("auto", "cpu") else device
        model = self.form.fields.get("model")
        dtype = backend.amp_dtype_name(str(model.editor.value()) if model else "", kind)
        field.editor.setText({"float16": "", "bfloat16": "bfloat16 on this CPU"}.get(
            dtype, "not used for this model on this device"))
