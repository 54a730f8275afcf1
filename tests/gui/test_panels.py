"""Panels, workers, error boxes and the prefetch cache, each on its own."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QColorDialog, QInputDialog, QMessageBox

from studio.core.errors import FormatError, StudioError
from studio.gui.document import LabelDocument
from studio.gui.pixels import qimage_view
from studio.gui.workers import CancelToken, WorkerPool


@pytest.fixture
def boxes(monkeypatch):
    shown: list[QMessageBox] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(box)
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def doc(project, make_image, qapp):
    """A document on a project with 6 images (3 train, 3 none) and classes a, b, c."""
    for i in range(6):
        image_id, _ = project.add_image(make_image(f"pic_{i}.png", 16, 16, seed=i),
                                        split="train" if i < 3 else "none")
    for name in ("a", "b", "c"):
        project.add_class(name)
    d = LabelDocument(project)
    d.set_image(1)
    return d


# --- workers ------------------------------------------------------------------------------
def test_worker_delivers_results_errors_and_progress(qtbot):
    pool = WorkerPool(2)
    got, errors, progress = [], [], []

    def job(token: CancelToken, n: int) -> int:
        for i in range(n):
            token.check()
            token.progress(i)
        return n * 2

    failures = []
    pool.failed.connect(failures.append)  # errors also come as a signal of the pool
    pool.submit(job, 3, with_token=True, on_result=got.append, on_progress=progress.append)
    pool.submit(lambda: 1 / 0, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(got and errors), timeout=5000)
    assert failures == errors
    assert got == [6] and progress == [0, 1, 2]
    assert isinstance(errors[0], ZeroDivisionError)
    assert "ZeroDivisionError" in errors[0].__traceback_text__
    qtbot.waitUntil(lambda: not pool.busy)


def test_newest_request_supersedes_and_cancel_is_cooperative(qtbot):
    pool = WorkerPool(1)
    started, release = threading.Event(), threading.Event()
    got, finished = [], []

    def slow(token: CancelToken, value: str) -> str:
        started.set()
        release.wait(5)
        token.check()
        return value

    first = pool.submit(slow, "old", key="k", with_token=True, on_result=got.append,
                        on_finished=lambda: finished.append("old"))
    assert started.wait(5)
    pool.submit(lambda v: v, "new", key="k", on_result=got.append)
    assert first.token.cancelled  # the running one was asked to stop
    release.set()
    qtbot.waitUntil(lambda: not pool.busy, timeout=5000)
    assert got == ["new"] and finished == []


def test_errors_without_handler_are_logged_not_lost(qtbot, caplog):
    pool = WorkerPool(1)
    pool.submit(lambda: (_ for _ in ()).throw(ValueError("boom")))
    qtbot.waitUntil(lambda: not pool.busy, timeout=5000)
    assert "boom" in caplog.text


# --- errors --------------------------------------------------------------------------------
def test_show_error_plain_for_studio_errors_and_details_for_bugs(qapp, boxes):
    from studio.gui.errors import show_error

    show_error(None, FormatError("The COCO file x.json is broken: fix it."))
    try:
        {}["missing"]
    except KeyError as exc:
        show_error(None, exc)
    warning, bug = boxes
    assert warning.icon() == QMessageBox.Icon.Warning
    assert warning.text() == "The COCO file x.json is broken: fix it."
    assert bug.icon() == QMessageBox.Icon.Critical and "unexpected" in bug.text().lower()
    assert "KeyError" in bug.detailedText() and "Traceback" in bug.detailedText()


# --- images panel ----------------------------------------------------------------------------
def test_images_panel_filters_search_and_navigation(doc, qtbot):
    from studio.gui.panels.images import ImagesPanel

    panel = ImagesPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    assert panel.model.rowCount() == 6
    panel.split_filter.setCurrentIndex(panel.split_filter.findData("train"))
    assert panel.model.rowCount() == 3
    panel.split_filter.setCurrentIndex(0)
    panel.search.setText("pic_4")
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=2000)
    panel.search.clear()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 6, timeout=2000)
    doc.add_annotation("box", (0, 0, 4, 4), class_id=doc.project.class_by_name("b").id)
    panel.class_filter.setCurrentIndex(panel.class_filter.findText("b"))
    assert panel.model.rowCount() == 1 and panel.model.image_id_at(0) == 1
    panel.class_filter.setCurrentIndex(0)
    # status filter: the current image leaves the list, navigation still steps from it
    doc.project.set_status([1, 2], "done")
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("new"))
    assert panel.model.rowCount() == 4 and panel.model.row_of(1) is None
    assert panel.go(1) and doc.image_id == 3
    assert panel.first_unlabelled_after(6) == 3  # wraps around
    panel.set_status("done")
    assert panel.model.rowCount() == 3 and doc.project.image(3).status == "done"
    panel.set_split("val")
    assert doc.project.image(3).split == "val"
    # clicking a row shows that image
    panel.status_filter.setCurrentIndex(0)
    panel.view.setCurrentIndex(panel.model.index(5, 0))
    assert doc.image_id == 6


def test_model_pages_are_bounded(doc):
    from studio.gui.panels.images_model import ImageListModel

    model = ImageListModel()
    model.PAGE, model.MAX_PAGES = 2, 2
    model.set_project(doc.project)
    assert model.loaded_rows == 0
    names = [model.data(model.index(r, 0)) for r in range(6)]
    assert names == [f"pic_{i}.png" for i in range(6)]
    assert model.pages_loaded == 2 and model.loaded_rows == 4
    assert model.row_of(1) == 0 and model.row_of(99) is None


# --- classes panel ---------------------------------------------------------------------------
def test_classes_panel_add_rename_recolour_reorder_delete(doc, qtbot, monkeypatch):
    from studio.gui.panels import classes as classes_module
    from studio.gui.panels.classes import ClassesPanel

    panel = ClassesPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    changes = []
    doc.classesChanged.connect(lambda: changes.append(1))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("dog", True))
    new_id = panel.add_class()
    assert doc.project.class_by_name("dog").id == new_id == doc.active_class_id
    assert panel.tree.topLevelItemCount() == 4 and changes
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("puppy", True))
    panel.rename_class()
    assert doc.project.class_record(new_id).name == "puppy"
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor("#123456"))
    panel.recolor_class()
    assert doc.project.class_record(new_id).color == "#123456"
    panel.move_class(-1)
    assert [c.name for c in doc.project.classes()] == ["a", "b", "puppy", "c"]
    # visibility check box -> document
    a_id = doc.project.class_by_name("a").id
    panel.tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)
    assert doc.hidden_class_ids == {a_id}
    # delete "puppy", moving its objects to "a"
    ann = doc.add_annotation("box", (1, 1, 3, 3), class_id=new_id)
    monkeypatch.setattr(classes_module, "ask_delete_class", lambda *a: (True, a_id))
    panel.delete_class()
    assert doc.project.class_by_name("puppy") is None
    assert doc.project.annotation(ann).class_id == a_id
    assert doc.active_class_id != new_id and panel.tree.topLevelItemCount() == 3
    # a name that exists already is refused with a message, nothing changes
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("b", True))
    shown = []
    monkeypatch.setattr(classes_module, "show_error", lambda parent, exc: shown.append(exc))
    assert panel.add_class() is None and isinstance(shown[0], StudioError)
    assert panel.use_hotkey(2) and doc.active_class_id == doc.project.class_by_name("b").id
    assert panel.give_selection_hotkey_class(9) is None


def test_delete_class_dialog_choices(doc, qtbot, boxes):
    from studio.gui.dialogs import DeleteClassDialog, ask_delete_class

    dialog = DeleteClassDialog(None, "a", 5, [(2, "b"), (3, "c")])
    qtbot.addWidget(dialog)
    assert dialog.move_radio.isChecked() and dialog.move_to() == 2
    dialog.target.setCurrentIndex(1)
    assert dialog.move_to() == 3
    dialog.delete_radio.setChecked(True)
    assert dialog.move_to() is None
    # a class without objects: a yes/no question (our fake answers Ok = not Yes)
    assert ask_delete_class(None, doc.project, doc.project.class_by_name("c").id) == (False, None)
    assert "no objects" in boxes[-1].text()


# --- objects and tags ----------------------------------------------------------------------
def test_objects_panel_lists_selects_deletes_and_changes_class(doc, qtbot):
    from studio.gui.panels.objects import ObjectsPanel

    panel = ObjectsPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    ids = [doc.add_annotation("box", (i, i, 4, 4)) for i in range(3)]
    assert panel.tree.topLevelItemCount() == 3
    assert panel.tree.topLevelItem(0).text(2) == "box"
    assert panel.tree.topLevelItem(0).text(3) == "16"
    panel.select_all()
    assert doc.selected_ids == ids
    doc.select([ids[1]])
    assert panel.selected_ids() == [ids[1]]
    c_id = doc.project.class_by_name("c").id
    panel.set_selected_class(c_id)
    assert doc.project.annotation(ids[1]).class_id == c_id
    panel.delete_selected()
    assert panel.tree.topLevelItemCount() == 2 and doc.selected_ids == []
    doc.undo_stack().undo()
    assert panel.tree.topLevelItemCount() == 3
    doc.set_image(2)
    assert panel.tree.topLevelItemCount() == 0


def test_tags_panel_ticks_store_tags(doc, qtbot):
    from studio.gui.panels.tags import TagsPanel

    panel = TagsPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    b_id = doc.project.class_by_name("b").id
    panel.item_of(b_id).setCheckState(Qt.CheckState.Checked)
    assert doc.tags() == {b_id}
    doc.set_image(2)
    assert panel.item_of(b_id).checkState() == Qt.CheckState.Unchecked
    doc.set_image(1)
    assert panel.item_of(b_id).checkState() == Qt.CheckState.Checked


def test_run_with_progress_closes_its_dialog_once(qtbot, monkeypatch):
    """A result handler that lets Qt delete the dialog must not make a second close fail."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QProgressDialog, QWidget

    from studio.gui.workers import run_with_progress

    closes = []
    original_close = QProgressDialog.close
    monkeypatch.setattr(QProgressDialog, "close",
                        lambda self: closes.append(1) or original_close(self))
    parent = QWidget()
    qtbot.addWidget(parent)
    pool = WorkerPool(1)
    got = []

    def on_result(value) -> None:  # e.g. a handler that opens a dialog of its own
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        got.append(value)

    run_with_progress(parent, pool, "Working...", lambda: 41 + 1, on_result=on_result)
    qtbot.waitUntil(lambda: bool(got) and not pool.busy, timeout=5000)
    assert got == [42] and closes == [1]
    pool.shutdown()


# --- prefetch --------------------------------------------------------------------------------
@pytest.fixture
def prefetcher(qapp):
    from studio.gui.prefetch import Prefetcher

    p = Prefetcher(WorkerPool(1, name="prefetch-test"))
    yield p
    p.shutdown()


def test_prefetch_decodes_in_background_and_is_used(make_image, prefetcher):
    paths = [make_image(f"p{i}.png", 40, 30, seed=i) for i in range(3)]
    assert prefetcher.get_cached(paths[0]) is None
    prefetcher.prefetch(paths[:2])
    prefetcher.wait_idle()
    first = prefetcher.get_cached(paths[0])
    assert first is not None and first.shape == (40, 30, 3) and not first.flags.writeable
    ready = prefetcher.get_display(paths[0])  # for QPixmap.fromImage on the GUI thread
    qimage = qimage_view(ready)
    assert (qimage.width(), qimage.height()) == (30, 40)
    assert qimage.pixelColor(3, 5).getRgb() == (*(int(v) for v in first[5, 3]), 255)
    assert QPixmap.fromImage(qimage).toImage().pixelColor(3, 5) == qimage.pixelColor(3, 5)
    hits = prefetcher.stats["hits"]
    assert prefetcher.load(paths[0]) is first and prefetcher.stats["hits"] == hits + 1
    assert prefetcher.load(paths[2]).shape == (40, 30, 3)  # not prefetched: decoded now
    bad = paths[0].with_name("bad.png")
    bad.write_bytes(b"not a png")
    prefetcher.prefetch([bad])
    prefetcher.wait_idle()
    with pytest.raises(StudioError):
        prefetcher.load(bad)
    prefetcher.clear()
    assert prefetcher.get_cached(paths[1]) is None


@pytest.mark.parametrize("how", ["prefetch", "clear"])
def test_prefetch_cancelled_before_it_starts_does_not_hang(make_image, prefetcher, how):
    """Paging faster than images decode cancels queued decodes; that must never block."""
    paths = [make_image(f"q{i}.png", 20, 20, seed=i) for i in range(3)]
    gate = threading.Event()
    prefetcher.workers.submit(gate.wait, 10)  # the only worker thread is busy
    prefetcher.prefetch(paths[:2])  # queued behind it, not started
    cancel = (lambda: prefetcher.prefetch([paths[2]])) if how == "prefetch" else prefetcher.clear
    caller = threading.Thread(target=cancel)
    caller.start()
    caller.join(timeout=5)
    hung = caller.is_alive()
    gate.set()
    assert not hung, f"{how}() blocked while cancelling a prefetch that had not started"
    prefetcher.wait_idle()
    assert prefetcher.get_cached(paths[0]) is None  # cancelled: never decoded
    assert prefetcher.stats["decoded"] == (1 if how == "prefetch" else 0)
    misses = prefetcher.stats["misses"]
    assert prefetcher.load(paths[0]).shape == (20, 20, 3)  # decoded on request instead
    assert prefetcher.stats["misses"] == misses + 1


def test_thumbnails_arrive_from_the_worker(doc, qtbot):
    from studio.gui.panels.images_model import ImageListModel

    pool = WorkerPool(1, name="thumbnails-test")
    model = ImageListModel(workers=pool)
    model.set_project(doc.project)
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole) is None  # requested
    qtbot.waitUntil(lambda: model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole)
                    is not None, timeout=5000)
    image = model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole)
    assert max(image.width(), image.height()) == 16  # never enlarged beyond the image
    assert (doc.project.cache_dir / "thumbs").is_dir()  # cached on disk by core
    pool.shutdown()  # other rows' thumbnails may still be on their way
