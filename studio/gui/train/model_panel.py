"""Model panel: architecture from the engine's registry, its options, pretrained weights,
freezing and the fine-tune phase.

The list of architectures is the registry's for the chosen task; each shows its
description, parameter count (built in a worker) and input-size rule. Pretrained weights:
none, ImageNet (said to be cached or missing, with the exact file it needs), a checkpoint
of a previous run of this project, or any checkpoint file.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import ConfigError, StudioError
from studio.gui.train.form import OPTIONS, ChoiceEdit, ConfigForm, FieldGroup, task_fields
from studio.gui.train.tips import tip

CHOOSE_FILE = "__choose_file__"
PREFIX = f"{OPTIONS}."


def _is_option(path: str) -> bool:
    return path.startswith(PREFIX)


def _count_parameters(name: str, options: dict, num_classes: int):
    """(parameter count, None), or (None, the error) when the builders reject the options:
    an answer, not an exception, so a count superseded by the next edit logs nothing."""
    from studio.gui.train.backend import check_model

    try:
        return check_model(name, max(1, num_classes), 3, options=options), None
    except (StudioError, ValueError, TypeError) as exc:
        return None, exc


class ModelPanel(QWidget):
    modelChanged = Signal(str)
    errorFound = Signal(object)  # a ConfigError of the builders about the model options

    def __init__(self, form: ConfigForm, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form, self.workers = form, workers
        self.project = None
        self.task = "classification"
        self.model = ChoiceEdit()
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.params = QLabel()
        model_field = form.add("model", self.model, tip("model"))
        for label in (self.info, self.params):  # under the model list, in its row
            model_field.row.layout().addWidget(label)
        self.arch = FieldGroup("Architecture", ("model",), hide_empty=False)
        self.options_box = FieldGroup("Model options", hide_empty=False)
        self.no_options = QLabel("This model has no options.")
        self.pretrained = ChoiceEdit()
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self.weights_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        weights = form.add("pretrained", self.pretrained, tip("pretrained"))
        weights.row.layout().addWidget(self.weights_note)
        self.transfer = FieldGroup("Pretrained weights and freezing",
                                   ("pretrained", "freeze.", "finetune."), hide_empty=False)
        form.add_placer(self._place)
        layout = QVBoxLayout(self)
        layout.addWidget(self.arch)
        layout.addWidget(self.options_box)
        layout.addWidget(self.no_options)
        layout.addWidget(self.transfer)
        layout.addStretch(1)
        self.model.currentIndexChanged.connect(lambda _i: self.refresh_model())
        self.pretrained.currentIndexChanged.connect(lambda _i: self._on_pretrained_changed())
        form.changed.connect(self._on_form_changed)

    # --- choices from the engine --------------------------------------------------------
    def set_task(self, task: str, project) -> None:
        """The task's models as choices (call `refresh_model` after choosing one)."""
        from studio.gui.train.backend import list_models

        self.task, self.project = task, project
        specs = list_models(task)
        self.model.blockSignals(True)  # the caller shows the chosen model once, after
        self.model.set_choices([(s.name, s.name) for s in specs])
        self.model.blockSignals(False)
        for i, spec in enumerate(specs):
            self.model.setItemData(i, spec.description, Qt.ItemDataRole.ToolTipRole)

    def _spec(self):
        from studio.gui.train.backend import get_spec

        name = self.model.value()
        try:
            return get_spec(name) if name else None
        except Exception:  # noqa: BLE001 - a name from a loaded file the registry lacks
            return None

    def refresh_model(self) -> None:
        """Show the chosen model: its options, weights, description and size."""
        spec = self._spec()
        self._rebuild_options(spec)
        self._fill_pretrained(spec)
        if spec is not None:
            self.info.setText(f"{spec.description}.\nInput: sides of at least {spec.min_size} "
                              f"px; multiples of {spec.size_multiple} avoid padding; usual size "
                              f"{spec.default_size}.")
            self.modelChanged.emit(spec.name)
        self.update_parameter_count()

    def _place(self, fields) -> list[str]:
        options = self.options_box.take([f for f in fields if _is_option(f.path)], True)
        self.no_options.setVisible(not options)
        self.options_box.setVisible(bool(options))
        return [*self.arch.take(fields), *options, *self.transfer.take(fields)]

    def _rebuild_options(self, spec) -> None:
        """The chosen model's option fields, holding the options the engine gives a
        newly chosen model (`apply_model_options`: options never carry over from the
        model chosen before)."""
        from studio.gui.train.backend import apply_model_options

        specs, options = [], {}
        if spec is not None:
            try:
                specs = task_fields(self.task, spec.name)
                options = apply_model_options({"task": self.task}, spec.name)["model_options"]
            except ConfigError:  # a model the task does not have: the check names it
                specs = []
        self.form.set_specs(specs, within=_is_option)
        self.form.update({OPTIONS: options})

    def _fill_pretrained(self, spec) -> None:
        from studio.gui.train.backend import weights_file

        choices: list[tuple[object, str]] = [(None, "none (random start)")]
        self._weights_help = ""
        if spec is not None and spec.supports_pretrained:
            path = weights_file(spec)
            if path.is_file():
                choices.append(("imagenet", "ImageNet (in the local cache)"))
            else:
                choices.append(("imagenet", "ImageNet (missing: will download, or copy the file)"))
                self._weights_help = (f"ImageNet weights need the file '{path.name}' in the "
                                      f"folder '{path.parent}'.")
        if self.project is not None:
            for run in self.project.runs(self.task):
                best = run.checkpoints.get("best") or run.checkpoints.get("last")
                if best:
                    full = Path(self.project.root) / best
                    choices.append((str(full), f"{run.name}: {Path(best).name} ({run.config.get('model')})"))
        choices.append((CHOOSE_FILE, "checkpoint file..."))
        self.pretrained.set_choices(choices)
        self._on_pretrained_changed()

    def _on_pretrained_changed(self) -> None:
        value = self.pretrained.value()
        if value == CHOOSE_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Checkpoint with weights", "",
                                                  "Checkpoints (*.pt *.pth);;All (*)")
            self.pretrained.set_value(path or None)
            return
        self.weights_note.setText(self._weights_help if value == "imagenet" else
                                  "Weights of a checkpoint: tensors that fit this model are "
                                  "loaded." if value else "")

    def _on_form_changed(self, path: str) -> None:
        if path.startswith("model_options."):
            self.update_parameter_count()

    def update_parameter_count(self) -> None:
        spec = self._spec()
        if spec is None:
            self.params.setText("")
            return
        options = self.form.values(PREFIX)
        n_classes = max(2, len(self.project.classes())) if self.project is not None else 2
        self.params.setText("Parameters: counting...")
        self.workers.submit(_count_parameters, spec.name, options, n_classes,
                            key="parameter_count", on_result=self._show_count)

    def _show_count(self, answer) -> None:
        count, error = answer
        if error is None:
            self.params.setText(f"Parameters: {count:,}")
            return
        self.params.setText("Parameters: the model cannot be built with these options.")
        if not isinstance(error, StudioError):  # the builders' plain ValueError
            error = ConfigError(str(error))
        self.errorFound.emit(error)
