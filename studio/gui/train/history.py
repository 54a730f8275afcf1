"""Run history: every run of the project (from the store) with its status, best metric,
duration and model; sortable; several selected runs overlay their epoch curves; two
selected runs show what differs in their configs; under More: export the model
(TorchScript / ONNX, in a worker, as the CLI does), rename, open the folder, delete with
checkpoints."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.gui.dialogs import show_report
from studio.gui.errors import show_error
from studio.gui.train.plots import COLOURS

COLUMNS = ("id", "name", "status", "model", "best", "epochs", "duration", "device")
RESUME_TIP = ("Continue this stopped or finished run from its last checkpoint (more epochs: "
              "raise 'Epochs' first).")


def flatten(cfg: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def config_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(path, value in a, value in b) for every option that differs."""
    fa, fb = flatten(a), flatten(b)
    missing = "(not set)"
    return [(k, fa.get(k, missing), fb.get(k, missing)) for k in sorted(set(fa) | set(fb))
            if fa.get(k, missing) != fb.get(k, missing)]


class NumericItem(QTableWidgetItem):
    """Sorts by its number, shows text."""

    def __init__(self, text: str, number: float) -> None:
        super().__init__(text)
        self.number = number

    def __lt__(self, other) -> bool:
        return self.number < getattr(other, "number", 0.0)


class HistoryPanel(QWidget):
    runSelected = Signal(int)
    useConfigRequested = Signal(int)
    resumeRequested = Signal(int)

    def __init__(self, workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.project = None
        self.busy_run: int | None = None  # the run now training (not deletable)
        self.running = False  # a run trains: none can be resumed until it ends
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Every run of this project. Select several to overlay their "
                              "curves; two to compare their configs.")
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.overlay = pg.PlotWidget(title="Selected runs: validation (solid) and training "
                                           "(dashed) loss")
        self.overlay.setBackground("w")
        self.overlay.addLegend()
        self.overlay.getPlotItem().setLabel("bottom", "epoch")
        # the frequent actions as buttons, the rarer ones in a menu: the row fits the half
        # of a 1366 px window the results get, without scrolling sideways
        self.buttons: dict[str, QPushButton | QAction] = {}
        bar = QHBoxLayout()
        for key, text, tip, slot in (
            ("use", "Use its config", "Load this run's config into the panels.",
             lambda: self._single(self.useConfigRequested.emit)),
            ("resume", "Resume", RESUME_TIP, lambda: self._single(self.resumeRequested.emit)),
            ("diff", "What differs", "Compare the configs of two selected runs.", self.show_diff),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=slot: s())
            bar.addWidget(button)
            self.buttons[key] = button
        self.more_menu = QMenu(self)
        self.more_menu.setToolTipsVisible(True)
        for key, text, tip, slot in (
            ("export", "Export model...", "Write the model as TorchScript (.pt) or ONNX "
             "(.onnx), checked against the trained model.", self.export),
            ("rename", "Rename...", "Give the run a name.", self.rename),
            ("folder", "Open folder", "Open the run's folder (checkpoints).", self.open_folder),
            ("delete", "Delete...", "Delete the run and its checkpoints.", self.delete),
        ):
            action = self.more_menu.addAction(text)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, s=slot: s())
            self.buttons[key] = action
        self.more = QPushButton("More")
        self.more.setToolTip("Export the selected run's model, rename it, open its folder or "
                             "delete it.")
        self.more.setMenu(self.more_menu)
        bar.addWidget(self.more)
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(bar)
        column.addWidget(self.table)
        split.addWidget(top)
        split.addWidget(self.overlay)
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._update_buttons()

    # --- table ------------------------------------------------------------------------
    def refresh(self, project=None) -> None:
        if project is not None or self.project is None:
            self.project = project
        selected = set(self.selected_ids())
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        runs = self.project.runs() if self.project is not None else []
        self.table.setRowCount(len(runs))
        for r, run in enumerate(runs):
            best = run.best_metrics or {}
            metric = (run.config.get("early_stopping") or {}).get("metric", "")
            value = best.get(metric)
            best_text = f"{metric} {value:.4f}" if isinstance(value, float) else "-"
            cells = [NumericItem(str(run.id), run.id), QTableWidgetItem(run.name),
                     QTableWidgetItem(run.status), QTableWidgetItem(str(run.config.get("model"))),
                     NumericItem(best_text, value if isinstance(value, float) else -1e300),
                     NumericItem(str(len(run.history)), len(run.history)),
                     NumericItem(f"{run.duration_s:.0f} s" if run.duration_s else "-",
                                 run.duration_s or 0.0),
                     QTableWidgetItem(run.device or "-")]
            cells[0].setData(Qt.ItemDataRole.UserRole, run.id)
            if run.error:
                cells[2].setToolTip(run.error)
            for c, item in enumerate(cells):
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) in selected:
                self.table.selectRow(r)
        self._draw_overlay()

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows]

    def select_run(self, run_id: int) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == run_id:
                self.table.selectRow(r)

    def _on_selection(self) -> None:
        self._update_buttons()
        self._draw_overlay()
        ids = self.selected_ids()
        if len(ids) == 1:
            self.runSelected.emit(ids[0])

    def set_running(self, running: bool) -> None:
        """A run started or ended: Resume is off while one trains."""
        self.running = running
        self._update_buttons()

    def _update_buttons(self) -> None:
        n = len(self.selected_ids())
        for key, button in self.buttons.items():
            button.setEnabled(n == 2 if key == "diff" else n == 1)
        self.more.setEnabled(n == 1)
        if n == 1 and self.selected_ids()[0] == self.busy_run:
            for key in ("delete", "resume", "export"):
                self.buttons[key].setEnabled(False)
        if self.running:
            self.buttons["resume"].setEnabled(False)
        self.buttons["resume"].setToolTip(
            "A run is training: stop it (or let it finish) before resuming another."
            if self.running else RESUME_TIP)

    def _draw_overlay(self) -> None:
        plot = self.overlay.getPlotItem()
        plot.clear()
        if self.project is None:
            return
        for i, run_id in enumerate(self.selected_ids()):
            try:
                run = self.project.run(run_id)
            except StudioError:
                continue
            colour = COLOURS[i % len(COLOURS)]
            for key, style in (("val_loss", Qt.PenStyle.SolidLine),
                               ("train_loss", Qt.PenStyle.DashLine)):
                points = [(h["epoch"], h[key]) for h in run.history
                          if isinstance(h.get(key), (int, float))]
                if points:
                    x, y = zip(*points, strict=True)
                    plot.plot(list(x), list(y), pen=pg.mkPen(colour, width=2, style=style),
                              name=f"{run.name} {key}" if key == "val_loss" else None)

    # --- actions ----------------------------------------------------------------------
    def _single(self, fn) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            fn(ids[0])

    def show_diff(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 2 or self.project is None:
            return
        a, b = (self.project.run(i) for i in ids)
        rows = config_diff(a.config, b.config)
        details = "\n".join(f"{path}: {va!r} -> {vb!r}" for path, va, vb in rows)
        show_report(self, "What differs", f"{len(rows)} option(s) differ between {a.name} and "
                    f"{b.name}." if rows else f"{a.name} and {b.name} have the same config.",
                    details)

    def rename(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1 or self.project is None:
            return
        run = self.project.run(ids[0])
        name, ok = QInputDialog.getText(self, "Rename run", "Name:", text=run.name)
        if ok and name.strip():
            self.project.update_run(run.id, name=name.strip())
            self.refresh()

    def delete(self, ask: bool = True) -> None:
        ids = self.selected_ids()
        if len(ids) != 1 or self.project is None or ids[0] == self.busy_run:
            return
        run = self.project.run(ids[0])
        if ask and QMessageBox.question(
                self, "Delete run", f"Delete {run.name} and its checkpoints? This cannot be "
                "undone.") != QMessageBox.StandardButton.Yes:
            return
        self.workers.submit(self.project.delete_run, run.id, key="delete_run",
                            on_result=lambda _r: self.refresh(),
                            on_error=lambda exc: show_error(self, exc))

    def open_folder(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1 and self.project is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.project.run_dir(ids[0]))))

    def export(self, path: str | None = None) -> None:
        ids = self.selected_ids()
        if len(ids) != 1 or self.project is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export model", "",
                                                  "TorchScript (*.pt);;ONNX (*.onnx)")
        if not path:
            return
        fmt = "onnx" if Path(path).suffix.lower() == ".onnx" else "torchscript"
        from studio.ml.export import export_model

        self.workers.submit(export_model, self.project, ids[0], fmt, path, key="export_model",
                            on_result=lambda out: show_report(
                                self, "Model exported", f"Wrote {out} ({fmt}).", ""),
                            on_error=lambda exc: show_error(self, exc))
