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
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from studio.gui.train.form import BoolEdit, ChoiceEdit, ConfigForm, ListEdit, NumberEdit
from studio.gui.train.tips import tip

CHOOSE_FILE = "__choose_file__"


class TextEdit(QLineEdit):
    def value(self) -> str:
        return self.text()

    def set_value(self, value) -> None:
        self.setText("" if value is None else str(value))

    def connect_changed(self, slot) -> None:
        self.textEdited.connect(slot)


def _option_editor(default):
    if isinstance(default, bool):
        return BoolEdit()
    if isinstance(default, (list, tuple)):
        return ListEdit()
    if isinstance(default, str):
        return TextEdit()
    return NumberEdit(allow_none=default is None)


def _count_parameters(name: str, options: dict, num_classes: int) -> int:
    from studio.gui.train.backend import check_model

    return check_model(name, max(1, num_classes), 3, options=options)


class ModelPanel(QWidget):
    modelChanged = Signal(str)
    errorFound = Signal(str)  # a builder error about the model options

    def __init__(self, form: ConfigForm, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form, self.workers = form, workers
        self.project = None
        self.task = "classification"
        self.model = ChoiceEdit()
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.params = QLabel()
        arch = QGroupBox("Architecture")
        arch_form = QFormLayout(arch)
        arch_form.addRow("Model", form.add("model", self.model, tip("model")).row)
        arch_form.addRow(self.info)
        arch_form.addRow(self.params)
        self.options_box = QGroupBox("Model options")
        self.options_form = QFormLayout(self.options_box)
        self.pretrained = ChoiceEdit()
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self.weights_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.freeze_mode = ChoiceEdit()
        transfer = QGroupBox("Pretrained weights and freezing")
        t = QFormLayout(transfer)
        t.addRow("Weights", form.add("pretrained", self.pretrained, tip("pretrained")).row)
        t.addRow(self.weights_note)
        t.addRow("Freeze", form.add("freeze.mode", self.freeze_mode, tip("freeze.mode")).row)
        t.addRow("Stages", form.add("freeze.n_stages", NumberEdit(), tip("freeze.n_stages")).row)
        t.addRow("Unfreeze at epoch", form.add("finetune.unfreeze_epoch", NumberEdit(),
                                                tip("finetune.unfreeze_epoch")).row)
        t.addRow("Backbone LR factor", form.add("finetune.backbone_lr_factor", NumberEdit(),
                                                 tip("finetune.backbone_lr_factor")).row)
        layout = QVBoxLayout(self)
        layout.addWidget(arch)
        layout.addWidget(self.options_box)
        layout.addWidget(transfer)
        layout.addStretch(1)
        self.model.currentIndexChanged.connect(lambda _i: self.refresh_model())
        self.pretrained.currentIndexChanged.connect(lambda _i: self._on_pretrained_changed())
        form.changed.connect(self._on_form_changed)

    # --- choices from the engine --------------------------------------------------------
    def set_task(self, task: str, project) -> None:
        """The task's models as choices (call `refresh_model` after choosing one)."""
        from studio.gui.train.backend import FREEZE_MODES, list_models

        self.task, self.project = task, project
        specs = list_models(task)
        self.model.blockSignals(True)  # the caller shows the chosen model once, after
        self.model.set_choices([(s.name, s.name) for s in specs])
        self.model.blockSignals(False)
        for i, spec in enumerate(specs):
            self.model.setItemData(i, spec.description, Qt.ItemDataRole.ToolTipRole)
        self.freeze_mode.set_choices([(m, m.replace("_", " ")) for m in FREEZE_MODES])

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

    def _rebuild_options(self, spec) -> None:
        self.form.remove_prefix("model_options.")
        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        if spec is None:
            return
        for key, default in spec.default_options.items():
            editor = _option_editor(default)
            editor.set_value(default)
            field = self.form.add(f"model_options.{key}", editor, tip(f"model_options.{key}"))
            self.options_form.addRow(key, field.row)
        if not spec.default_options:
            self.options_form.addRow(QLabel("This model has no options."))

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
        options = {k.split(".", 1)[1]: f.editor.value() for k, f in self.form.fields.items()
                   if k.startswith("model_options.")}
        n_classes = max(2, len(self.project.classes())) if self.project is not None else 2
        self.params.setText("Parameters: counting...")
        self.workers.submit(_count_parameters, spec.name, options, n_classes,
                            key="parameter_count",
                            on_result=lambda n: self.params.setText(f"Parameters: {n:,}"),
                            on_error=self._on_build_error)

    def _on_build_error(self, exc: BaseException) -> None:
        self.params.setText("Parameters: the model cannot be built with these options.")
        self.errorFound.emit(str(exc))
