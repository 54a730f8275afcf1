"""What a person sees in Train on a laptop screen: the curves get a fair share of the
window, the log says when the run's Summary is ready, and the Summary's figures all have
the same number of decimals."""

from __future__ import annotations

import test_train_workspace as tw
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import studio.gui.train.summary as summary_module
from studio.gui.train.summary import SummaryPanel
from studio.gui.workers import WorkerPool

tiny_project, dialogs, win = tw.tiny_project, tw.dialogs, tw.win  # the same fixtures

REPORT = {"class_names": ["dark", "bright"], "images": 6, "precision": [0.794, 0.81234],
          "recall": [1.0, 0.5], "f1": [0.88512, 0.6182], "support": [3, 3],
          "confusion_matrix": [[3, 0], [1, 2]]}


def _finished_run(project) -> int:
    run_id = project.create_run("classification", {"task": "classification",
                                                   "model": "tiny_cnn"})
    project.update_run(run_id, status="finished", checkpoints={"best": "best.pt"},
                       best_metrics={"epoch": 2, "accuracy": 0.8})
    return run_id


def test_results_get_a_fair_share_of_a_laptop_window(qtbot, win, tmp_path):
    train = win.train
    win.resize(1366, 768)
    QApplication.processEvents()
    split = train.setup_tabs.parentWidget().parentWidget()
    setup, results = split.sizes()
    assert results >= 0.55 * (setup + results), (setup, results)
    assert setup >= train.controls.minimumSizeHint().width()  # the run's buttons uncut
    # each of the four plots has room for its title and axis (not ~250 px as before)
    plots = train.live.plots
    assert min(p.width() for p in (plots.batch_plot, plots.epoch_plot, plots.metric_plot,
                                   plots.lr_plot)) >= 330
    assert win.minimumSizeHint().width() <= 1366
    win.grab().save(str(tmp_path / "train_1366.png"))
    # a wider panel in front: the setup side widens to it (never cut at the right)
    bar = train.setup_tabs.tabBar()
    for i in range(train.setup_tabs.count()):
        QTest.mouseClick(bar, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         bar.tabRect(i).center())
        QApplication.processEvents()
        area = train.setup_tabs.currentWidget()
        assert not area.horizontalScrollBar().isVisible(), train.setup_tabs.tabText(i)
    # a divider the person dragged stays where they put it
    handle = split.handle(1)
    start = handle.rect().center()
    QTest.mousePress(handle, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(handle, start + QPoint(60, 0))
    QTest.mouseRelease(handle, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start + QPoint(60, 0))
    QApplication.processEvents()
    dragged = split.sizes()[0]
    assert train.divider_moved
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     bar.tabRect(0).center())
    QApplication.processEvents()
    assert split.sizes()[0] == dragged


def test_summary_figures_have_four_decimals_and_sort_by_value(qtbot, win, monkeypatch):
    monkeypatch.setattr(summary_module, "summary_report", lambda *a: dict(REPORT))
    train = win.train
    run_id = _finished_run(win.project)
    train.summary.show_run(win.project, run_id)
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=10000)
    table = train.summary.per_class
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    precision, recall = headers.index("precision"), headers.index("recall")
    assert table.item(rows["dark"], precision).text() == "0.7940"
    assert table.item(rows["bright"], precision).text() == "0.8123"
    assert table.item(rows["dark"], recall).text() == "1.0000"
    assert table.item(rows["dark"], headers.index("images")).text() == "3"
    table.sortItems(precision, Qt.SortOrder.DescendingOrder)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["bright", "dark"]


def test_the_log_ends_when_the_summary_is_shown(qtbot, win, monkeypatch):
    monkeypatch.setattr(summary_module, "summary_report", lambda *a: dict(REPORT))
    train = win.train
    run_id = _finished_run(win.project)
    live = train.live
    live.begin(2, ["accuracy"], run_id=run_id)
    live.log_view.appendPlainText("Evaluating the run on the 'val' split for its summary...")
    train.summary.show_run(win.project, run_id)
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=10000)
    lines = live.log_view.toPlainText().splitlines()
    assert lines[-1].startswith("Summary ready: 6 validation images")
    train.summary.show_run(win.project, run_id)  # picked again in the History: said once
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=10000)
    assert live.log_view.toPlainText().splitlines() == lines
    other = _finished_run(win.project)  # another run's summary is not this run's log
    train.summary.show_run(win.project, other)
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=10000)
    assert live.log_view.toPlainText().splitlines() == lines


def test_a_summary_that_cannot_be_evaluated_ends_the_log_too(qtbot, tmp_path, monkeypatch):
    from studio.core.errors import StudioError
    from studio.core.project import Project

    def fail(*_a):
        raise StudioError("The 'val' split has no labelled images.")

    monkeypatch.setattr(summary_module, "summary_report", fail)
    workers = WorkerPool(1)
    panel = SummaryPanel(workers)
    qtbot.addWidget(panel)
    shown: list[tuple[int, str]] = []
    panel.reportShown.connect(lambda rid, text: shown.append((rid, text)))
    with Project.create(tmp_path / "p", name="p") as project:
        run_id = _finished_run(project)
        panel.show_run(project, run_id)
        qtbot.waitUntil(lambda: bool(shown), timeout=10000)
    workers.shutdown()
    assert shown[0][0] == run_id and "no labelled images" in shown[0][1]
    assert "no labelled images" in panel.note.text()


def test_mixed_precision_says_what_it_does_on_the_device(qtbot, win, monkeypatch):
    from studio.ml import devices

    monkeypatch.setattr(devices, "cpu_computes_bf16", lambda: True)
    train = win.train
    amp = train.form.fields["amp"]
    panel = train.training_panel
    combo = panel.device_choice
    cpu = combo.findData("cpu")
    assert cpu >= 0
    combo.setCurrentIndex(cpu)  # as a pick from its list does
    assert amp.editor.text() == "not used for this model on this device"
    assert "float16 on CUDA" in amp.label.toolTip()
    train.set_config({**train.config(), "device": "cpu"})  # a loaded config: the same
    assert train.form.fields["amp"].editor.text() == "not used for this model on this device"
    # the instance U-Net trains in bfloat16 on a CPU that computes it (the engine says)
    train.set_config({**train.config(), "task": "instance", "model": "unet_instances",
                      "device": "cpu"})
    assert train.form.fields["amp"].editor.text() == "bfloat16 on this CPU"
    monkeypatch.setattr(devices, "cpu_computes_bf16", lambda: False)
    train.set_config({**train.config(), "model": "maskrcnn_resnet18_fpn"})
    assert train.form.fields["amp"].editor.text() == "not used for this model on this device"
    cuda = [combo.itemData(i) for i in range(combo.count())
            if str(combo.itemData(i)).startswith("cuda")]
    if cuda:  # a machine with a GPU: on it the tick counts
        combo.setCurrentIndex(combo.findData(cuda[0]))
        assert train.form.fields["amp"].editor.text() == ""


def test_a_run_ends_its_log_and_axes_with_its_last_step(qtbot, win):
    """A real tiny run from Start: 2 epochs of 4 steps. Its step axes end at step 8 (not
    the 1-2-5 step 10), its epoch axes at 2, and the log's last line says the Summary is
    ready (not that it is evaluating)."""
    train = win.train
    tw.set_fields(train, tw.TINY)
    tw.start(qtbot, train)
    tw.wait_run(qtbot, train)
    qtbot.waitUntil(lambda: train.summary.result is not None, timeout=30000)
    qtbot.waitUntil(lambda: train.live.log_view.toPlainText().splitlines()[-1]
                    .startswith("Summary ready"), timeout=10000)
    plots = train.live.plots
    steps = 2 * (18 // 4)
    assert plots.point_count("batch") == steps
    assert steps <= plots.batch_plot.getPlotItem().viewRange()[0][1] <= steps + 0.5
    assert 2 <= plots.epoch_plot.getPlotItem().viewRange()[0][1] <= 2.1
