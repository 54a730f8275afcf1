"""Pascal VOC import/export: 1-based boxes, flags, palette PNGs, safe XML, round trips."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import FormatError
from studio.core.formats import export_dataset, import_dataset
from studio.core.formats.voc import VOC_CLASSES, voc_box, voc_palette
from studio.core.geometry import MaskGeom
from studio.core.project import Project

from . import assert_same_annotations


@pytest.fixture
def mini(test_data, tmp_path) -> Path:
    dest = tmp_path / "voc"
    shutil.copytree(test_data / "voc" / "mini", dest)
    return dest


def xml_doc(filename: str, objects: str, extra: str = "") -> str:
    return (f"{extra}<annotation><filename>{filename}</filename>"
            f"<size><width>30</width><height>20</height><depth>3</depth></size>{objects}"
            "</annotation>")


def obj(name: str, box: tuple, difficult: int = 0) -> str:
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
            f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
            "</bndbox></object>")


def test_voc_palette_is_the_standard_one():
    pal = voc_palette()
    assert pal[0].tolist() == [0, 0, 0] and pal[1].tolist() == [128, 0, 0]
    assert pal[15].tolist() == [192, 128, 128] and pal[255].tolist() == [224, 224, 192]


def test_one_based_inclusive_coordinates():
    assert voc_box([1, 1, 10, 5]) == (0.0, 0.0, 10.0, 5.0)


def test_import_mini(mini, project):
    report = import_dataset(project, "voc", mini)
    assert report.images == 2 and not report.skipped
    img1, img2 = project.images()
    assert (img1.split, img2.split) == ("train", "val")
    boxes = {(project.class_record(a.class_id).name, a.geometry)
             for a in project.annotations(img1.id)}
    # xmin=1..xmax=10 is x=0, w=10; the third box (25..40 on a 30-wide image) is clipped
    assert boxes == {("dog", (0.0, 0.0, 10.0, 5.0)), ("cat", (11.0, 5.0, 9.0, 10.0)),
                     ("dog", (24.0, 9.0, 6.0, 11.0))}
    assert any("clipped" in w for w in report.warnings)
    assert any("difficult" in w for w in report.warnings)
    # SegmentationObject: one mask per object; class from SegmentationClass; void not labelled
    masks = project.annotations(img2.id, kind="mask")
    by_class = sorted((project.class_record(a.class_id).name, a.geometry.bbox()) for a in masks)
    assert by_class == [("aeroplane", (5.0, 12.0, 20.0, 6.0)), ("person", (2.0, 2.0, 8.0, 6.0)),
                        ("person", (14.0, 2.0, 6.0, 6.0))]
    assert all(a.geometry.area == a.geometry.width * a.geometry.height for a in masks)


def test_skip_difficult_option(mini, project):
    report = import_dataset(project, "voc", mini, skip_difficult=True)
    assert project.class_by_name("cat") is None
    assert any("difficult" in r for _, r in report.skipped)


def test_semantic_only_gives_one_mask_per_class(mini, project):
    shutil.rmtree(mini / "SegmentationObject")
    import_dataset(project, "voc", mini)
    img2 = project.images()[1]
    masks = {project.class_record(a.class_id).name: a.geometry
             for a in project.annotations(img2.id, kind="mask")}
    assert set(masks) == {"person", "aeroplane"}
    assert masks["person"].area == 6 * 8 + 6 * 6  # both people in one class mask


def test_external_entity_is_refused_and_never_read(tmp_path, project, make_image):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    root = tmp_path / "voc"
    make_image("a.png", 20, 30, folder=root / "JPEGImages")
    dtd = f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(
        xml_doc("a.png", "<object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                "<xmax>4</xmax><ymax>4</ymax></bndbox></object>", extra=dtd))
    with pytest.raises(FormatError, match="a.xml") as info:
        import_dataset(project, "voc", root)
    assert "TOP-SECRET" not in str(info.value)
    assert project.classes() == [] and project.count_images() == 0


@pytest.mark.parametrize("body, match", [
    ("<annotation><filename>a.png</filename><object>", "not well-formed"),
    (xml_doc("a.png", "<object><name>dog</name></object>"), "bndbox"),
    (xml_doc("a.png", "<object><bndbox><xmin>1</xmin></bndbox></object>"), "name"),
    (xml_doc("a.png", obj("dog", (1, 1, "x", 4))), "xmax"),
])
def test_malformed_xml_is_fatal(tmp_path, project, make_image, body, match):
    root = tmp_path / "voc"
    make_image("a.png", 20, 30, folder=root / "JPEGImages")
    make_image("b.png", 20, 30, seed=3, folder=root / "JPEGImages")
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(body)
    (root / "Annotations" / "b.xml").write_text(xml_doc("b.png", obj("cat", (1, 1, 5, 5))))
    with pytest.raises(FormatError, match=match) as info:
        import_dataset(project, "voc", root)
    assert "a.xml" in str(info.value)
    assert project.count_images() == 0 and project.classes() == []


def test_xml_folder_with_unsafe_filename_and_corrupt_image(tmp_path, project, make_image):
    make_image("outside.png", 20, 30, seed=5, folder=tmp_path)
    folder = tmp_path / "xmls"
    make_image("ok.png", 20, 30, folder=folder)
    (folder / "broken.png").write_bytes(b"not an image at all")
    (folder / "a.xml").write_text(xml_doc("../outside.png", obj("dog", (1, 1, 5, 5))))
    (folder / "b.xml").write_text(xml_doc("ok.png", obj("dog", (2, 2, 6, 6))))
    (folder / "c.xml").write_text(xml_doc("broken.png", obj("dog", (2, 2, 6, 6))))
    report = import_dataset(project, "voc", folder)
    assert [i.name for i in project.images()] == ["ok.png"]
    skipped = dict(report.skipped)
    assert skipped["a.xml"].startswith("refused") and "unreadable" in skipped["broken.png"]
    assert project.annotations(project.images()[0].id)[0].geometry == (1.0, 1.0, 5.0, 5.0)


def test_nothing_to_import_is_an_error(tmp_path, project):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no VOC annotations"):
        import_dataset(project, "voc", tmp_path / "empty")


# --- export ------------------------------------------------------------------------------------
def _synthetic(folder: Path, make_image) -> Project:
    p = Project.create(folder)
    dog, cat, road, tagged = (p.add_class(n) for n in ("dog", "cat", "road", "night"))
    a, _ = p.add_image(make_image("a.png", 20, 30, seed=1), split="train")
    b, _ = p.add_image(make_image("b.png", 24, 32, seed=2), split="test")
    p.add_image(make_image("c.png", 10, 10, seed=3))
    p.add_annotation(a, dog, "box", (0.0, 0.0, 10.0, 5.0))
    p.add_annotation(a, cat, "box", (12.5, 3.0, 7.25, 9.0))
    p.add_annotation(a, tagged, "tag")
    region = np.zeros((24, 32), bool)
    region[10:20, 2:30] = True
    region[14:16, 10:12] = False
    p.add_annotation(b, road, "mask", MaskGeom.from_full(region))
    p.add_annotation(b, dog, "polygon", [[2, 2], [9, 2], [9, 8], [2, 8]])
    p.add_annotation(b, cat, "polygon", [[20, 1], [28, 1], [24, 8]])
    return p


def test_export_layout_palette_and_exact_boxes(tmp_path, make_image):
    src = _synthetic(tmp_path / "src", make_image)
    out = tmp_path / "out"
    report = export_dataset(src, "voc", out)
    assert report.images == 3 and report.annotations == 6
    root = ET.parse(out / "Annotations" / "a.xml").getroot()
    bnd = {o.findtext("name"): [o.find("bndbox").findtext(k) for k in
                                ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")}
    assert bnd == {"dog": ["1", "1", "10", "5"], "cat": ["13.5", "4", "19.75", "12"]}
    assert root.findtext("size/width") == "30" and root.findtext("segmented") == "0"
    assert (out / "ImageSets/Main/train.txt").read_text() == "a\n"
    assert (out / "ImageSets/Main/test.txt").read_text() == "b\n"
    assert not (out / "ImageSets/Main/val.txt").exists()
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["a.png", "b.png", "c.png"]
    with Image.open(out / "SegmentationClass" / "b.png") as im:
        assert im.mode == "P"
        assert np.array_equal(np.asarray(im.getpalette()).reshape(-1, 3)[:256],
                              voc_palette()[: len(im.getpalette()) // 3])
        cls = np.asarray(im)
    names = (out / "class_names.txt").read_text().splitlines()
    assert names[0] == "_background_" and names[1:] == ["dog", "cat", "road", "night"]
    assert cls[12, 20] == names.index("road") and cls[0, 0] == 0 and cls[3, 3] == names.index("dog")
    with Image.open(out / "SegmentationObject" / "b.png") as im:
        assert sorted(np.unique(np.asarray(im)).tolist()) == [0, 1, 2, 3]
    assert not (out / "SegmentationClass" / "a.png").exists()
    src.close()


def test_export_reimport_round_trip(tmp_path, make_image):
    src = _synthetic(tmp_path / "src", make_image)
    export_dataset(src, "voc", tmp_path / "out")
    with Project.create(tmp_path / "dst") as dst:
        report = import_dataset(dst, "voc", tmp_path / "out")
        assert not report.skipped
        assert_same_annotations(src, dst, kind_map={"polygon": "mask"})
    src.close()


# --- real datasets -------------------------------------------------------------------------------
def test_bccd_voc_import_and_round_trip(shared_datasets, tmp_path):
    root = shared_datasets / "bccd_voc" / "BCCD"
    xmls = sorted((root / "Annotations").glob("*.xml"))
    n_objects = sum(len(ET.parse(f).getroot().findall("object")) for f in xmls)
    with Project.create(tmp_path / "bccd") as p:
        report = import_dataset(p, "voc", root)
        assert report.images == len(xmls) == 364
        assert report.annotations + len(report.skipped) == n_objects
        assert {c.name for c in p.classes()} == {"RBC", "WBC", "Platelets"}
        test_ids = (root / "ImageSets/Main/test.txt").read_text().split()
        assert p.count_images(split="test") == len(set(test_ids))
        first = ET.parse(xmls[0]).getroot()
        rec = next(r for r in p.images() if r.name == first.findtext("filename"))
        want = sorted(voc_box([float(o.findtext(f"bndbox/{k}")) for k in
                               ("xmin", "ymin", "xmax", "ymax")]) for o in first.iter("object"))
        assert sorted(a.geometry for a in p.annotations(rec.id)) == want
        export_dataset(p, "voc", tmp_path / "out")
        with Project.create(tmp_path / "again") as q:
            import_dataset(q, "voc", tmp_path / "out")
            assert_same_annotations(p, q)


@pytest.mark.parametrize("example", ["bbox_detection", "semantic_segmentation",
                                     "instance_segmentation", "video_annotation"])
def test_labelme_voc_exports_import(shared_datasets, tmp_path, example):
    root = shared_datasets / "labelme_examples" / example / "data_dataset_voc"
    if not root.is_dir():
        pytest.skip(f"labelme example {example} not present")
    names = (root / "class_names.txt").read_text().splitlines()
    with Project.create(tmp_path / "p") as p:
        report = import_dataset(p, "voc", root)
        assert report.images == len(list((root / "JPEGImages").iterdir()))
        assert report.annotations > 0 and not report.skipped
        seg_dir = next((root / d for d in ("SegmentationClass", "SegmentationClassPNG")
                        if (root / d).is_dir()), None)
        if seg_dir is not None:  # every labelled pixel is covered by a mask of its class
            for rec in p.images():
                with Image.open(seg_dir / f"{Path(rec.path).stem}.png") as im:
                    cls = np.asarray(im)
                for value in set(np.unique(cls).tolist()) - {0, 255}:
                    cid = p.class_by_name(names[value]).id
                    got = np.zeros_like(cls, dtype=bool)
                    for a in p.annotations(rec.id, kind="mask"):
                        if a.class_id == cid:
                            got |= a.geometry.to_full(rec.height, rec.width)
                    assert np.array_equal(got, cls == value)
        export_dataset(p, "voc", tmp_path / "out")
        with Project.create(tmp_path / "again") as q:
            import_dataset(q, "voc", tmp_path / "out")
            assert_same_annotations(p, q)


def test_default_class_names_are_voc(mini, project):
    import_dataset(project, "voc", mini)
    assert VOC_CLASSES[15] == "person" and project.class_by_name("person") is not None
