"""Opening a classification, detection or instance run in Inspect streams as a semantic
one does: the first image's prediction shows while the others are still being
predicted (the test holds them back), their figures fill the list as they land, then
the split readouts (confusion matrix, detection figures) and the ranking follow, and
the worst image is shown unless the person chose another."""

from __future__ import annotations

import math
import shutil
import threading

import pytest
from test_inspect_fit import train_tiny

from studio.core.project import Project


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    return {task: train_tiny(task, root) for task in ("classification", "detection",
                                                      "instance")}


@pytest.fixture
def opened(request, templates, qtbot, tmp_path):
    """(workspace, run id) of a copy of the task's project (the test's parameter)."""
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    src, run_id = templates[request.param]
    shutil.copytree(src, tmp_path / "proj", ignore=shutil.ignore_patterns("project.lock"))
    project = Project.open(tmp_path / "proj")
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    w.set_document(LabelDocument(project))
    yield w, run_id
    w.shutdown()
    w.set_document(None)
    project.close()


def held_back(monkeypatch, method: str) -> threading.Event:
    """Every call of Predictor.<method> after the first waits for the returned gate."""
    from studio.ml.predict import Predictor

    gate, calls = threading.Event(), []
    original = getattr(Predictor, method)

    def slow(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            gate.wait(20)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, method, slow)
    return gate


def first_shown_while_streaming(qtbot, w, run_id, gate) -> int:
    opened = []
    w.sessionOpened.connect(lambda: opened.append(1))
    try:
        with qtbot.waitSignal(w.imageShown, timeout=60000) as shown:
            w.open_run(run_id, "val")
        first = shown.args[0]
        assert opened == [] and w.session is not None  # the others still held back
        assert w.run_bar.progress.isVisible() and w.image_id == first
        assert w.browser.topLevelItemCount() == len(w.session.images)  # all listed at once
        assert first == next(e.image_id for e in w.session.images if e.labelled)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: opened == [1], timeout=60000)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)
    return first


def browser_column(w, column: int) -> dict:
    from PySide6.QtCore import Qt

    items = (w.browser.topLevelItem(i) for i in range(w.browser.topLevelItemCount()))
    return {it.data(0, Qt.ItemDataRole.UserRole): it.text(column) for it in items}


@pytest.mark.parametrize("opened", ["classification"], indirect=True)
def test_a_classification_run_streams_then_shows_its_confusion_matrix(opened, qtbot,
                                                                      monkeypatch):
    w, run_id = opened
    gate = held_back(monkeypatch, "classify")
    assert w.left_tabs.currentWidget() is w.browser
    first_shown_while_streaming(qtbot, w, run_id, gate)
    labelled = [e for e in w.session.images if e.labelled]
    assert len(labelled) == 4 and all(e.probabilities is not None for e in labelled)
    worst = min(labelled, key=lambda e: (e.score, e.image_id))
    assert w.browser.image_ids()[0] == worst.image_id and w.image_id == worst.image_id
    p_label = browser_column(w, 1)
    assert all(p_label[e.image_id] == f"{e.score:.3f}" for e in labelled)
    names = w.session.class_names
    predicted = browser_column(w, 2)
    assert all(predicted[e.image_id] == names[int(e.probabilities.argmax())] for e in labelled)
    # the confusion matrix, now that every image is in, and its tab
    m = w.confusion.matrix
    assert sum(int(m.item(i, j).text()) for i in range(2) for j in range(2)) == 4
    assert w.left_tabs.currentWidget() is w.confusion
    assert "predicted" in w.run_bar.status.text()


@pytest.mark.parametrize("opened", ["detection", "instance"], indirect=True)
def test_a_detection_run_streams_then_ranks_and_shows_split_figures(opened, qtbot,
                                                                   monkeypatch):
    w, run_id = opened
    gate = held_back(monkeypatch, "detect")
    split_done = []
    w.splitUpdated.connect(lambda: split_done.append(1))
    first_shown_while_streaming(qtbot, w, run_id, gate)
    s = w.session
    assert s.network_calls == len(s.images) == 3  # once per image, the first one too
    qtbot.waitUntil(lambda: bool(split_done), timeout=30000)
    qtbot.waitUntil(lambda: not w.pool.busy, timeout=30000)
    labelled = [e for e in s.images if e.labelled]
    assert len(labelled) == 2 and not s.images[-1].labelled  # the empty image last
    worst = min(labelled, key=lambda e: (math.inf if math.isnan(e.score) else e.score,
                                         -s.errors[e.image_id], e.image_id))
    assert w.browser.image_ids()[0] == worst.image_id and w.image_id == worst.image_id
    errors = browser_column(w, 2)
    assert all(errors[e.image_id] == str(s.errors[e.image_id]) for e in s.images)
    panel = w.detection.panel
    assert panel.value("Box mAP@0.5", 1) != "–"  # the split figures
    assert w.detection.result is not None and w.detection.result.image_id == worst.image_id
