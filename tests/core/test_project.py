"""The project store: create/open, lock, schema, images, classes, annotations, runs."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import stat

import numpy as np
import pytest

from studio.core.errors import (
    NotFoundError,
    ProjectCorruptError,
    ProjectError,
    ProjectLockedError,
    ReadOnlyProjectError,
    SchemaTooNewError,
    StudioError,
)
from studio.core.geometry import MaskGeom
from studio.core.project import Project
from studio.core.schema import SCHEMA_VERSION


def test_create_open_layout(tmp_path):
    p = Project.create(tmp_path / "p", name="Cells")
    assert (tmp_path / "p" / "project.db").is_file()
    assert p.runs_dir.is_dir() and p.cache_dir.is_dir()
    assert p.name == "Cells"
    p.close()
    with Project.open(tmp_path / "p") as q:
        assert q.name == "Cells"
        mode = q._query("PRAGMA journal_mode")[0][0]
        assert mode == "wal"
        assert q._query("PRAGMA foreign_keys")[0][0] == 1
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path / "p")
    with pytest.raises(ProjectError, match="not a Vision Studio project"):
        Project.open(tmp_path / "nothing")


def test_second_open_is_refused_in_process(tmp_path):
    p = Project.create(tmp_path / "p")
    with pytest.raises(ProjectLockedError, match="open in another"):
        Project.open(tmp_path / "p")
    p.close()
    Project.open(tmp_path / "p").close()


def _hold_open(folder, ready, release):
    p = Project.open(folder)
    ready.set()
    release.wait(20)
    p.close()


def test_second_process_is_refused(tmp_path):
    Project.create(tmp_path / "p").close()
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_open, args=(str(tmp_path / "p"), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(ProjectLockedError):
            Project.open(tmp_path / "p")
    finally:
        release.set()
        proc.join(30)
    Project.open(tmp_path / "p").close()


def test_newer_schema_is_refused(tmp_path):
    Project.create(tmp_path / "p").close()
    conn = sqlite3.connect(tmp_path / "p" / "project.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer Vision Studio"):
        Project.open(tmp_path / "p")
    # the refusal released the lock
    conn = sqlite3.connect(tmp_path / "p" / "project.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    Project.open(tmp_path / "p").close()


def test_garbage_database_is_a_clear_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectCorruptError, match="not a readable project database"):
        Project.open(tmp_path / "p")


def test_migration_from_empty_database(tmp_path):
    (tmp_path / "p").mkdir()
    sqlite3.connect(tmp_path / "p" / "project.db").close()  # version 0, no tables
    with Project.open(tmp_path / "p") as p:
        assert p._query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert p.count_images() == 0


def test_read_only_folder(tmp_path):
    Project.create(tmp_path / "p").close()
    folder = tmp_path / "p"
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ReadOnlyProjectError, match="read-only"):
            Project.open(folder)
    finally:
        os.chmod(folder, stat.S_IRWXU)
    Project.open(folder).close()


def test_images_dedup_and_paths(project, make_image, tmp_path):
    a = make_image("a.png", seed=1)
    b = make_image("b.png", seed=2)
    dup = tmp_path / "images" / "copy_of_a.png"
    dup.write_bytes(a.read_bytes())
    ia, created = project.add_image(a)
    assert created
    ib, _ = project.add_image(b, split="train")
    again, created = project.add_image(dup)
    assert again == ia and not created
    rec = project.image(ia)
    assert (rec.width, rec.height, rec.channels) == (48, 32, 3)
    assert rec.abs_path == a.resolve()
    assert project.count_images() == 2
    assert [r.id for r in project.images(split="train")] == [ib]
    # copy-in lands inside the project with a relative path
    c = make_image("c.png", seed=3)
    ic, _ = project.add_image(c, copy=True)
    rec = project.image(ic)
    assert not os.path.isabs(rec.path) and rec.abs_path.is_file()
    assert rec.abs_path.parent == project.root / "images"
    with pytest.raises(NotFoundError):
        project.add_image(tmp_path / "missing.png")
    with pytest.raises(StudioError, match="Unknown split"):
        project.add_image(c, split="holdout")


def test_image_queries_paging_and_status(project, make_image):
    ids = [project.add_image(make_image(f"im_{i}.png", seed=i))[0] for i in range(7)]
    assert [r.id for r in project.images(offset=2, limit=3)] == ids[2:5]
    project.set_status(ids[0], "done")
    project.set_status(ids[1:3], "review")
    assert project.count_images(status="review") == 2
    assert project.count_images(search="im_1") == 1
    assert project.count_images(search="%") == 0  # wildcards are literal
    cls = project.add_class("cell")
    project.add_annotation(ids[4], cls, "box", (1, 2, 3, 4))
    assert project.image_ids(class_id=cls) == [ids[4]]
    assert project.image(ids[4]).n_annotations == 1
    project.delete_image(ids[4])
    assert project.count_images() == 6
    assert project.counts()["annotations"]["total"] == 0


def test_classes(project, make_image):
    a = project.add_class("cell")
    b = project.add_class("nucleus", color="#00FF00", hotkey=5)
    assert project.class_record(a).hotkey == 1
    assert project.class_record(b).color == "#00ff00"
    with pytest.raises(StudioError, match="already exists"):
        project.add_class("cell")
    with pytest.raises(StudioError, match="#rrggbb"):
        project.set_class_color(a, "red")
    project.rename_class(a, "membrane")
    assert project.class_by_name("membrane").id == a
    project.set_class_hotkey(a, 5)  # steals the hotkey from b
    assert project.class_record(b).hotkey is None
    project.reorder_classes([b, a])
    assert [c.id for c in project.classes()] == [b, a]
    img, _ = project.add_image(make_image())
    project.add_annotation(img, a, "box", (0, 0, 5, 5))
    project.add_annotation(img, a, "tag")
    assert project.delete_class(a, move_to=b) == 2
    assert {x.class_id for x in project.annotations(img)} == {b}
    c = project.add_class("other")
    project.add_annotation(img, c, "box", (0, 0, 2, 2))
    assert project.delete_class(c) == 1
    assert len(project.annotations(img)) == 2
    assert project.get_or_add_class("nucleus") == b


def test_annotations_roundtrip_every_kind(project, make_image):
    img, _ = project.add_image(make_image(height=40, width=50))
    cls = project.add_class("x")
    full = np.zeros((40, 50), dtype=bool)
    full[5:15, 20:31] = True
    full[30, 2] = True
    ids = {
        "tag": project.add_annotation(img, cls, "tag"),
        "box": project.add_annotation(img, cls, "box", (1.5, 2, 10, 20), score=0.9),
        "polygon": project.add_annotation(img, cls, "polygon", [[0, 0], [10, 0], [10, 10]],
                                          source="import:coco"),
        "mask": project.add_annotation(img, cls, "mask", full),
    }
    anns = {a.kind: a for a in project.annotations(img)}
    assert anns["tag"].geometry is None and anns["tag"].bbox == (0, 0, 50, 40)
    assert anns["box"].geometry == (1.5, 2.0, 10.0, 20.0) and anns["box"].score == 0.9
    assert anns["polygon"].area == 50.0 and anns["polygon"].source == "import:coco"
    m = anns["mask"].geometry
    assert isinstance(m, MaskGeom) and (m.x, m.y) == (2, 5)
    assert np.array_equal(m.to_full(40, 50), full)
    assert anns["mask"].area == full.sum()
    assert anns["mask"].bbox == (2.0, 5.0, 29.0, 26.0)
    # update / delete / restore
    project.update_annotation(ids["box"], geometry=(0, 0, 4, 4))
    assert project.annotation(ids["box"]).area == 16
    old = project.annotation(ids["polygon"])
    project.delete_annotation(ids["polygon"])
    with pytest.raises(NotFoundError):
        project.annotation(ids["polygon"])
    project.restore_annotation(old)
    assert project.annotation(ids["polygon"]).created_at == old.created_at
    counts = project.counts()
    assert counts["annotations"]["by_kind"] == {"tag": 1, "box": 1, "polygon": 1, "mask": 1}
    assert counts["annotations"]["by_class"] == {"x": 4}


@pytest.mark.parametrize("kind,geometry,message", [
    ("box", (0, 0, -1, 2), "non-negative"),
    ("box", (0, 0, float("nan"), 2), "finite"),
    ("polygon", [[0, 0], [1, 1]], "at least 3 points"),
    ("circle", None, "Unknown annotation kind"),
])
def test_bad_geometry_is_rejected(project, make_image, kind, geometry, message):
    img, _ = project.add_image(make_image())
    cls = project.add_class("x")
    with pytest.raises(StudioError, match=message):
        project.add_annotation(img, cls, kind, geometry)
    assert project.counts()["annotations"]["total"] == 0


def test_transaction_is_all_or_nothing(project, make_image):
    img, _ = project.add_image(make_image())
    cls = project.add_class("x")
    with pytest.raises(RuntimeError):
        with project.transaction():
            project.add_annotation(img, cls, "box", (0, 0, 1, 1))
            project.add_class("y")
            raise RuntimeError("boom")
    assert project.counts()["annotations"]["total"] == 0
    assert project.class_by_name("y") is None
    with pytest.raises(NotFoundError):
        project.add_annotations([
            dict(image_id=img, class_id=cls, kind="box", geometry=(0, 0, 1, 1)),
            dict(image_id=img, class_id=999, kind="box", geometry=(0, 0, 1, 1)),
        ])
    assert project.counts()["annotations"]["total"] == 0


def test_runs(project):
    rid = project.create_run("semantic", {"model": "unet"})
    assert project.run(rid).name == f"run {rid}" and project.run(rid).status == "created"
    project.append_run_epoch(rid, {"epoch": 1, "loss": 0.5})
    project.append_run_epoch(rid, {"epoch": 2, "loss": 0.4})
    project.update_run(rid, status="finished", best_metrics={"dice": 0.8}, device="cpu")
    r = project.run(rid)
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert r.best_metrics == {"dice": 0.8} and r.device == "cpu"
    assert project.run_dir(rid).is_dir()
    # a caller passing a status or field that does not exist is our bug, not the user's
    with pytest.raises(ValueError, match="unknown run status"):
        project.update_run(rid, status="exploded")
    with pytest.raises(ValueError, match="no field"):
        project.update_run(rid, colour="red")


def test_store_works_from_another_thread(project, make_image):
    import threading

    cls = project.add_class("x")
    img, _ = project.add_image(make_image())
    errors = []

    def worker():
        try:
            for _ in range(50):
                project.add_annotation(img, cls, "box", (0, 0, 1, 1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(50):
        project.annotations(img)
    for t in threads:
        t.join()
    assert not errors
    assert len(project.annotations(img)) == 150


def test_unclean_shutdown_gets_the_full_integrity_check(tmp_path):
    from studio.core.project import _check_pragma

    p = Project.create(tmp_path / "p")
    conn = sqlite3.connect(tmp_path / "p" / "project.db")
    assert _check_pragma(conn) == "integrity_check"  # still open: as after a crash
    p.close()
    assert _check_pragma(conn) == "quick_check"
    conn.close()
    with Project.open(tmp_path / "p") as q:
        assert q._query("SELECT value FROM meta WHERE key='clean_close'")[0][0] == "0"


def test_run_records_are_strict_json(project):
    import json

    rid = project.create_run("semantic", {"lr": 1e-3})
    project.append_run_epoch(rid, {"epoch": 1, "iou": [0.5, float("nan")]})
    project.update_run(rid, best_metrics={"hd95": float("inf")})
    raw = project._query("SELECT history, best_metrics FROM runs WHERE id = ?", (rid,))[0]
    assert json.loads(raw[0], parse_constant=lambda c: pytest.fail(c)) == [
        {"epoch": 1, "iou": [0.5, None]}]
    assert json.loads(raw[1]) == {"hd95": None}


def test_images_after_an_id(project, make_image):
    ids = [project.add_image(make_image(f"a{i}.png", seed=i))[0] for i in range(5)]
    project.set_status(ids[2], "done")
    assert [r.id for r in project.images(status="new", after_id=ids[1], limit=1)] == [ids[3]]
    assert project.images(status="new", after_id=ids[4]) == []


def test_class_usage_queries(project, make_image):
    a, b = project.add_class("a"), project.add_class("b")
    i1, _ = project.add_image(make_image("q1.png", seed=1), split="train")
    i2, _ = project.add_image(make_image("q2.png", seed=2), split="val")
    project.add_annotation(i1, a, "tag")
    project.add_annotation(i2, b, "box", (0, 0, 2, 2))
    project.add_annotation(i2, a, "tag")
    assert project.class_ids_in_use(["tag"]) == {a}
    assert project.class_ids_in_use() == {a, b}
    assert project.image_classes() == [(i1, a), (i2, b), (i2, a)]
    assert project.image_classes(kind="tag", split="val") == [(i2, a)]


def test_delete_run_removes_its_record_and_folder(project):
    kept, gone, bare = (project.create_run("semantic", {}) for _ in range(3))
    (project.run_dir(gone) / "last.pt").write_bytes(b"weights")
    project.run_dir(kept)
    project.delete_run(gone)
    project.delete_run(bare)  # never saved anything: no folder to remove
    assert [r.id for r in project.runs()] == [kept]
    assert not (project.root / "runs" / f"run_{gone:04d}").exists()
    assert project.run_dir(kept).is_dir()
