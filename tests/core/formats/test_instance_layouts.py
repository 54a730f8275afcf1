"""Instance label-image layouts from the world: any two folders, folders found by content,
the name rules (a.png, a_mask.png, a_label.tif), ids split into several blobs, and the
masks format's hint that such values are instance ids."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.core.errors import DataError, FormatError
from studio.core.formats import import_dataset
from studio.core.formats.instances import find_label_folders, label_likeness
from studio.core.formats.labelimages import instance_id_counts, looks_like_instance_ids

H, W = 40, 48


def label_image(k: int, split: tuple[int, ...] = (), seed: int = 0) -> np.ndarray:
    """Ids 1..k, each a 5x5 square; the ids in `split` also own a second square apart from
    the first (one object cut in two by occlusion)."""
    label = np.zeros((H, W), np.uint16)
    for i in range(k):
        y, x = 2 + 9 * (i // 5), 2 + 9 * (i % 5)
        label[y:y + 5, x:x + 5] = i + 1
    for n, i in enumerate(split):
        y, x = 38 - 3, 2 + 9 * n
        label[y:y + 3, x:x + 6] = i
    return label


def micrograph(label: np.ndarray, seed: int) -> np.ndarray:
    """A grey image like a fluorescence micrograph of `label`: noise, bright objects."""
    rng = np.random.default_rng(seed)
    img = rng.integers(5, 40, label.shape).astype(np.uint8)
    img[label > 0] += 150
    return img


def write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def build(root: Path, image_dir: str, label_dir: str, names: dict[str, tuple[int, tuple]],
          label_name: str = "{}_mask.png", image_ext: str = ".png") -> dict[str, np.ndarray]:
    """Images in root/image_dir and label images in root/label_dir named by `label_name`."""
    labels = {}
    for n, (name, (k, split)) in enumerate(names.items()):
        label = label_image(k, split)
        write(root / image_dir / f"{name}{image_ext}", micrograph(label, n))
        write(root / label_dir / label_name.format(name), label)
        labels[name] = label
    return labels


DATA = {"a": (7, (3,)), "b": (9, ()), "c": (4, (1, 2))}  # 20 objects, 3 in two parts


def masks_of(project) -> dict[str, list[np.ndarray]]:
    out = {}
    for rec in project.images():
        out[Path(rec.path).stem] = [a.geometry.to_full(rec.height, rec.width)
                                    for a in project.annotations(rec.id)]
    return out


def check_objects(project, labels: dict[str, np.ndarray]) -> None:
    got = masks_of(project)
    assert set(got) == set(labels)
    for name, label in labels.items():
        values = [v for v in np.unique(label) if v]
        assert len(got[name]) == len(values)
        for mask, value in zip(got[name], values, strict=True):
            assert np.array_equal(mask, label == value)  # a split id is one two-part mask


def test_photos_and_annot_found_by_their_names_pairing(project, tmp_path):
    labels = build(tmp_path / "ds", "Photos", "Annot", DATA)
    report = import_dataset(project, "instances", tmp_path / "ds")
    assert report.images == 3 and report.annotations == 20
    chosen = [w for w in report.warnings if "Photos/" in w]
    assert chosen and "label images from Annot/" in chosen[0]
    parts = [w for w in report.warnings if "several separate parts" in w]
    assert parts and parts[0].startswith("3 object(s)")
    check_objects(project, labels)


def test_same_names_in_both_folders_are_told_apart_by_content(project, tmp_path):
    """Photos/a.png and Annot/a.png pair both ways: the label folder is the flat one."""
    labels = build(tmp_path / "ds", "Raw", "Zeta", DATA, label_name="{}.png")
    image_dir, label_dir, why = find_label_folders(tmp_path / "ds")
    assert (image_dir.name, label_dir.name) == ("Raw", "Zeta") and "flat regions" in why
    # the other way round in alphabetical order, so order does not decide it
    labels2 = build(tmp_path / "ds2", "Zimg", "Alab", DATA, label_name="{}.png")
    image_dir, label_dir, _ = find_label_folders(tmp_path / "ds2")
    assert (image_dir.name, label_dir.name) == ("Zimg", "Alab")
    report = import_dataset(project, "instances", tmp_path / "ds")
    assert report.annotations == 20
    check_objects(project, labels)
    assert labels2.keys() == labels.keys()


def test_label_likeness_separates_labels_from_micrographs(tmp_path):
    label = label_image(9, (2,))
    write(tmp_path / "l.png", label)
    write(tmp_path / "i.png", micrograph(label, 0))
    write(tmp_path / "c.png", np.random.default_rng(1).integers(0, 255, (H, W, 3), np.uint8))
    assert label_likeness(tmp_path / "l.png") > 0.5 > label_likeness(tmp_path / "i.png")
    assert label_likeness(tmp_path / "c.png") == 0.0  # colour is not a label image


@pytest.mark.parametrize("label_name", ["{}.png", "{}_mask.png", "{}_label.tif",
                                        "{}_labels.png"])
def test_any_two_folders_given_explicitly(project, tmp_path, label_name):
    labels = build(tmp_path, "pics", "gt", DATA, label_name=label_name, image_ext=".tif")
    report = import_dataset(project, "instances", tmp_path / "gt", images_dir=tmp_path / "pics")
    assert report.images == 3 and report.annotations == 20 and report.skipped == []
    check_objects(project, labels)


def test_given_folders_that_do_not_pair_import_nothing(project, tmp_path):
    build(tmp_path, "pics", "gt", DATA, label_name="label_{}.png")
    with pytest.raises(DataError, match="None of the 3 label images in gt/ pairs"):
        import_dataset(project, "instances", tmp_path / "gt", images_dir=tmp_path / "pics")
    assert project.count_images() == 0


def test_two_image_folders_are_not_taken_for_labels(project, tmp_path):
    """Folders whose names pair but that both hold photographs are not a label layout."""
    build(tmp_path / "ds", "left", "right", DATA, label_name="{}.png")
    for p in (tmp_path / "ds" / "right").iterdir():
        write(p, micrograph(label_image(3), 9))
    assert find_label_folders(tmp_path / "ds") is None
    with pytest.raises(FormatError, match="No images found.*label images named like them"):
        import_dataset(project, "instances", tmp_path / "ds")


def test_dsb_masks_of_two_parts_are_one_object_reported(project, tmp_path):
    sample = tmp_path / "dsb" / "s1"
    label = label_image(3, (2,))
    write(sample / "images" / "s1.png", micrograph(label, 0))
    for v in (1, 2, 3):
        write(sample / "masks" / f"m{v}.png", (label == v).astype(np.uint8) * 255)
    report = import_dataset(project, "instances", tmp_path / "dsb")
    assert report.annotations == 3
    assert any(w.startswith("1 object(s) are made of several separate parts")
               for w in report.warnings)


# --- the masks format's hint ---------------------------------------------------------------
def test_instance_hint_fires_when_some_ids_are_two_blobs(project, tmp_path):
    build(tmp_path / "ds", "images", "masks", DATA, label_name="{}.png")
    labels = [label_image(k, s) for k, s in DATA.values()]
    assert instance_id_counts(labels) == [7, 9, 4] and looks_like_instance_ids(labels)
    with pytest.raises(DataError, match="look like instance ids.*--format instances"):
        import_dataset(project, "masks", tmp_path / "ds")
    assert project.count_images() == 0


def test_instance_hint_fires_with_unusual_folder_names(project, tmp_path):
    labels = build(tmp_path, "Photos", "Annot", DATA)
    with pytest.raises(DataError, match="look like instance ids"):
        import_dataset(project, "masks", tmp_path / "Annot", images_dir=tmp_path / "Photos")
    assert len(labels) == 3


def test_classes_spread_over_many_blobs_are_not_taken_for_ids():
    """Semantic values 1..k where each class is scattered over several blobs."""
    labels = []
    for k in (3, 4, 5):
        label = np.zeros((H, W), np.uint8)
        for i in range(k):
            for j in range(3):  # three blobs of each class
                label[2 + 12 * j: 8 + 12 * j, 2 + 9 * i: 8 + 9 * i] = i + 1
        labels.append(label)
    assert instance_id_counts(labels) is None and not looks_like_instance_ids(labels)


def test_layout_description_for_the_import_dialog(tmp_path):
    from studio.core.formats.instances import describe_label_layout

    build(tmp_path / "ds", "Photos", "Annot", DATA)
    layout = describe_label_layout(tmp_path / "ds")
    assert (layout.image_dir.name, layout.label_dir.name) == ("Photos", "Annot")
    assert layout.pairs == 3 and layout.instance_ids
    assert layout.first[0].name == "a.png" and layout.first[1].name == "a_mask.png"
    given = describe_label_layout(tmp_path / "ds" / "Annot", tmp_path / "ds" / "Photos")
    assert given.why == "the folders given" and given.pairs == 3
    assert describe_label_layout(tmp_path / "ds" / "Photos" / "a.png") is None
    semantic = tmp_path / "sem"
    build(semantic, "images", "masks", {"x": (2, ()), "y": (2, ())}, label_name="{}.png")
    assert describe_label_layout(semantic).instance_ids is False
