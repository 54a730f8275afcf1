"""Settings of click-to-segment (model, device, cache sizes, output kind) and the dialog
where a model is chosen, its licence read, and its files downloaded or installed.

`SEGMENT` is the one live copy the canvas tool reads; `load`/`save` keep it in the
application's settings. Downloads run on the dialog's own worker with progress and Cancel; nothing is
downloaded unless the person presses Download.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from studio.core.errors import StudioError
from studio.gui.workers import WorkerPool
from studio.ml.segment import DEFAULT_MODEL, available_devices, get_model_spec, list_models
from studio.ml.segment.engine import forget_loaded
from studio.ml.segment.registry import offered_names
from studio.ml.segment.weights import (
    DownloadCancelled,
    install_from_file,
    is_installed,
    offline_message,
    pull,
    weights_folder,
)


@dataclass
class SegmentConfig:
    model: str = DEFAULT_MODEL
    device: str = "cpu"
    memory_items: int = 8  # embeddings kept in memory
    disk_mb: int = 1024  # embedding cache on disk, per project
    output: str = "mask"  # "mask" or "polygon"


class SegmentSettings(QObject):
    """The live settings; `changed` tells the canvas tool to drop what it prepared."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.config = SegmentConfig()

    def update(self, **values) -> None:
        for key, value in values.items():
            if not hasattr(self.config, key):
                raise AttributeError(key)
            setattr(self.config, key, value)
        self.changed.emit()

    def load(self, settings) -> None:
        """From studio.gui.settings.Settings."""
        c = SegmentConfig()
        model = str(settings.value("segment/model", c.model))
        if model not in offered_names():  # checked without importing osam (GUI thread)
            model = c.model
        device = str(settings.value("segment/device", c.device))
        self.update(model=model, device=device if device in ("cpu", "cuda") else "cpu",
                    memory_items=int(settings.value("segment/memory_items", c.memory_items)),
                    disk_mb=int(settings.value("segment/disk_mb", c.disk_mb)),
                    output=str(settings.value("segment/output", c.output)))

    def save(self, settings) -> None:
        for key, value in self.config.__dict__.items():
            settings.set_value(f"segment/{key}", value)


SEGMENT = SegmentSettings()


class SegmentModelDialog(QDialog):
    """Choose the model (licence and size shown), the device and the cache sizes;
    download the model (progress, Cancel) or install its files from disk."""

    def __init__(self, settings=None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Click-to-segment model")
        self.setMinimumWidth(560)
        # its own worker: a download of minutes must not hold up the canvas's assists
        self.workers = WorkerPool(1, self, name="segment-model")
        self.settings = settings
        self._cancel: threading.Event | None = None
        c = SEGMENT.config
        self.model = QComboBox()
        for spec in list_models():
            self.model.addItem(f"{spec.title} ({spec.size_text})", spec.name)
        self.model.setCurrentIndex(max(0, self.model.findData(c.model)))
        self.device = QComboBox()
        for d in available_devices():
            self.device.addItem(d.upper(), d)
        self.device.setCurrentIndex(max(0, self.device.findData(c.device)))
        self.memory = QSpinBox(minimum=1, maximum=256, value=c.memory_items)
        self.memory.setSuffix(" images in memory")
        self.disk = QSpinBox(minimum=0, maximum=100_000, value=c.disk_mb, singleStep=256)
        self.disk.setSuffix(" MB on disk")
        self.output = QComboBox()
        self.output.addItem("Mask", "mask")
        self.output.addItem("Polygon (exact outline, simplified)", "polygon")
        self.output.setCurrentIndex(max(0, self.output.findData(c.output)))
        self.licence = QLabel(wordWrap=True, openExternalLinks=True)
        self.state = QLabel(wordWrap=True)
        self.progress = QProgressBar(visible=False)
        self.download = QPushButton("Download")
        self.from_file = QPushButton("Install from file...")
        self.cancel_download = QPushButton("Cancel download", visible=False)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Licence", self.licence)
        form.addRow("Files", self.state)
        form.addRow("Device", self.device)
        form.addRow("Embedding cache", self.memory)
        form.addRow("", self.disk)
        form.addRow("Accept as", self.output)
        row = QHBoxLayout()
        for b in (self.download, self.from_file, self.cancel_download):
            row.addWidget(b)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(buttons)
        self.model.currentIndexChanged.connect(self._show_model)
        self.download.clicked.connect(self.start_download)
        self.cancel_download.clicked.connect(self.stop_download)
        self.from_file.clicked.connect(self._ask_file)
        self._show_model()

    @property
    def spec(self):
        return get_model_spec(self.model.currentData())

    def _show_model(self) -> None:
        spec = self.spec
        link = f' (<a href="{spec.licence_url}">text</a>)' if spec.licence_url else ""
        self.licence.setText(f"{spec.licence}{link}")
        if is_installed(spec):
            self.state.setText(f"Installed in {weights_folder()}")
        else:
            files = ", ".join(f.filename for f in spec.files)
            self.state.setText(f"Not installed: {spec.size_text} to download, or install "
                               f"{files} from files (SHA-256 checked) into "
                               f"{weights_folder()}.")
            self.state.setToolTip(offline_message(spec))
        self.download.setEnabled(not is_installed(spec))
        self.adjustSize()

    def start_download(self) -> None:
        """Download the chosen model on a worker, with progress and Cancel."""
        spec, cancel = self.spec, threading.Event()
        self._cancel = cancel
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.download.setEnabled(False)
        self.cancel_download.setVisible(True)

        def job(token):
            def report(name, done, total):
                token.progress((name, done, total))
                if token.cancelled:
                    cancel.set()
            pull(spec, progress=report, cancel=cancel)
            return spec.name

        self.workers.submit(job, with_token=True, key="segment-download",
                            on_progress=self._on_progress, on_result=self._on_downloaded,
                            on_error=self._on_download_error)

    def stop_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _on_progress(self, value) -> None:
        name, done, total = value
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
        self.progress.setFormat(f"{name}: {done / 1e6:.1f} MB")

    def _finish(self) -> None:
        self._cancel = None
        self.progress.setVisible(False)
        self.cancel_download.setVisible(False)
        self._show_model()

    def _on_downloaded(self, name: str) -> None:
        forget_loaded(name)
        self._finish()

    def _on_download_error(self, exc: BaseException) -> None:
        self._finish()
        if not isinstance(exc, DownloadCancelled):
            self.state.setText(str(exc))

    def _ask_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Install model files", "",
                                                "ONNX models (*.onnx);;All files (*)")
        self.install_files(paths)

    def install_files(self, paths):
        """Install files on a worker (each SHA-256 checked, which takes seconds for the big
        models); the state line then says what happened. Returns the worker task."""
        paths = [str(p) for p in paths]
        if not paths:
            return None
        self.state.setText(f"Checking {len(paths)} file(s)...")

        def job():
            errors, names = [], set()
            for path in paths:
                try:
                    spec, _dest = install_from_file(path)
                    names.add(spec.name)
                except StudioError as exc:
                    errors.append(str(exc))
            return errors, names

        return self.workers.submit(job, on_result=self._installed,
                                   on_error=lambda exc: self.state.setText(str(exc)))

    def _installed(self, out) -> None:
        errors, names = out
        for name in names:
            forget_loaded(name)
        self._show_model()
        if errors:
            self.state.setText("\n".join(errors))

    def accept(self) -> None:
        SEGMENT.update(model=self.model.currentData(), device=self.device.currentData(),
                       memory_items=self.memory.value(), disk_mb=self.disk.value(),
                       output=self.output.currentData())
        if self.settings is not None:
            SEGMENT.save(self.settings)
        super().accept()

    def done(self, result: int) -> None:
        """Closing (OK, Cancel, the window's X) cancels a download and stops the worker."""
        self.stop_download()
        self.workers.shutdown()
        super().done(result)
