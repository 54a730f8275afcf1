"""Object attributes, visibility and lock, image notes: schema 3 and the formats."""

from __future__ import annotations

import json
import sqlite3

import pytest

from studio.core.errors import StudioError
from studio.core.formats import export_dataset, import_dataset
from studio.core.project import Project
from studio.core.schema import MIGRATIONS, SCHEMA_VERSION, migrate


def test_migration_to_3_keeps_the_data_and_adds_the_columns(tmp_path, make_image):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=2)
    now = 1.0
    conn.execute("INSERT INTO images(path, width, height, sha256, added_at, updated_at)"
                 " VALUES ('a.png', 4, 4, 'x', ?, ?)", (now, now))
    conn.execute("INSERT INTO classes(name, color, position) VALUES ('c', '#fff', 0)")
    conn.execute("INSERT INTO annotations(image_id, class_id, kind, geometry, created_at,"
                 " updated_at) VALUES (1, 1, 'box', '[0,0,2,2]', ?, ?)", (now, now))
    assert migrate(conn) == SCHEMA_VERSION == 3 and 3 in MIGRATIONS
    row = conn.execute("SELECT attributes, hidden, locked FROM annotations").fetchone()
    assert row == ("{}", 0, 0)
    assert conn.execute("SELECT note FROM images").fetchone() == ("",)
    conn.close()


def test_attributes_state_and_notes_are_stored(project, make_image):
    c = project.add_class("car")
    image_id, _ = project.add_image(make_image("a.png"))
    (a,) = project.add_annotations([dict(image_id=image_id, class_id=c, kind="box",
                                         geometry=(1, 1, 4, 4),
                                         attributes={"difficult": True, "occluded": 2})])
    ann = project.annotation(a)
    assert ann.attributes == {"difficult": True, "occluded": 2}
    assert not ann.hidden and not ann.locked
    project.set_annotation_state([a], hidden=True, locked=True)
    ann2 = project.annotation(a)
    assert ann2.hidden and ann2.locked and ann2.updated_at >= ann.updated_at
    project.set_annotation_attributes(a, {"truncated": False})
    assert project.annotation(a).attributes == {"truncated": False}
    with pytest.raises(StudioError, match="yes/no"):
        project.set_annotation_attributes(a, {"bad": [1, 2]})
    project.delete_annotation(a)
    project.restore_annotation(ann2)  # undo of a delete keeps everything
    back = project.annotation(a)
    assert back.hidden and back.locked and back.attributes == {"difficult": True, "occluded": 2}
    assert project.image_note(image_id) == ""
    project.set_image_note(image_id, "blurred on the left")
    assert project.image_note(image_id) == "blurred on the left"


def test_voc_difficult_and_truncated_round_trip(tmp_path, make_image):
    src = tmp_path / "voc"
    (src / "Annotations").mkdir(parents=True)
    make_image("im.jpg.png", 40, 50, folder=src / "JPEGImages")
    (src / "JPEGImages" / "im.jpg.png").rename(src / "JPEGImages" / "im.png")
    (src / "Annotations" / "im.xml").write_text(
        "<annotation><filename>im.png</filename><object><name>car</name>"
        "<truncated>1</truncated><difficult>1</difficult>"
        "<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>"
        "<object><name>car</name><difficult>0</difficult>"
        "<bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "</annotation>")
    with Project.create(tmp_path / "p") as p:
        import_dataset(p, "voc", src)
        boxes = p.annotations(p.images()[0].id)
        assert boxes[0].attributes == {"truncated": True, "difficult": True}
        assert boxes[1].attributes == {"difficult": False}
        export_dataset(p, "voc", tmp_path / "out")
        xml = (tmp_path / "out" / "Annotations" / "im.xml").read_text()
        assert "<truncated>1</truncated><difficult>1</difficult>" in xml.replace("\n", "").replace(" ", "")
        export_dataset(p, "coco", tmp_path / "coco")
        coco = json.loads((tmp_path / "coco" / "annotations.json").read_text())
        assert coco["annotations"][0]["attributes"] == {"truncated": True, "difficult": True}
        with Project.create(tmp_path / "q") as q:
            import_dataset(q, "coco", tmp_path / "coco" / "annotations.json")
            assert q.annotations(q.images()[0].id)[0].attributes == {"truncated": True,
                                                                     "difficult": True}
