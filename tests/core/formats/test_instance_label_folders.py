"""Instance label images in a masks folder beside the images, on the real StarDist file."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from studio.core.formats import import_dataset
from studio.core.project import Project


@pytest.mark.parametrize("label_ext, dtype", [(".tif", np.uint16), (".png", np.uint8)])
def test_masks_folder_of_label_images(shared_datasets, tmp_path, label_ext, dtype):
    """images/<name> with masks/<name> (16-bit TIFF as published, or 8-bit PNG as many
    tools save up to 255 objects): one mask object per integer of the label image."""
    folder = shared_datasets / "stardist_example"
    label = cv2.imread(str(folder / "mask2d.tif"), cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint16 and label.max() <= 255
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(folder / "img2d.tif", root / "images" / "img2d.tif")
    assert cv2.imwrite(str(root / "masks" / f"img2d{label_ext}"), label.astype(dtype))
    with Project.create(tmp_path / "p") as project:
        report = import_dataset(project, "instances", root)
        values = [v for v in np.unique(label) if v]
        assert report.images == 1 and report.annotations == len(values) == 125
        rec = project.images()[0]
        masks = [a.geometry.to_full(rec.height, rec.width)
                 for a in project.annotations(rec.id)]
        assert all(a.kind == "mask" for a in project.annotations(rec.id))
        for mask, value in zip(masks, values, strict=True):
            assert np.array_equal(mask, label == value)


def _side_by_side(folder, n: int = 3) -> dict[str, np.ndarray]:
    """`s<i>.png` beside `s<i>_mask.png` (ids 1..k, id 1 in two blobs), one image without
    a label image and one label image without an image. Returns the labels by image name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    labels = {}
    for i in range(n):
        label = np.zeros((40, 48), np.uint8)
        for k in range(i + 2):
            label[2 + 9 * k:7 + 9 * k, 3:9] = k + 1
        label[30:34, 40:45] = 1  # object 1's second part
        img = rng.integers(0, 50, (40, 48, 3)).astype(np.uint8)
        img[label > 0] += 160
        assert cv2.imwrite(str(folder / f"s{i}.png"), img)
        assert cv2.imwrite(str(folder / f"s{i}_mask.png"), label)
        labels[f"s{i}.png"] = label
    assert cv2.imwrite(str(folder / "alone.png"), np.full((40, 48, 3), 90, np.uint8))
    assert cv2.imwrite(str(folder / "orphan_mask.png"), labels["s0.png"])
    (folder / "notes.txt").write_text("not an image")
    return labels


@pytest.mark.parametrize("both", [False, True])
def test_images_and_label_images_side_by_side(tmp_path, both):
    """a.png beside a_mask.png, given as the source (or as both the source and the images
    folder): paired by name; no label image is imported as an image."""
    from studio.core.formats.instances import import_instances

    labels = _side_by_side(tmp_path / "ds")
    with Project.create(tmp_path / "p") as project:
        images = tmp_path / "ds" if both else None
        report = import_instances(project, tmp_path / "ds", images)
        names = sorted(r.name for r in project.images())
        assert names == ["alone.png", "s0.png", "s1.png", "s2.png"]  # no *_mask.png
        assert report.annotations == sum(len(np.unique(v)) - 1 for v in labels.values())
        skipped = dict(report.skipped)
        assert skipped["orphan_mask.png"] == "label image without an image"
        assert "notes.txt" in skipped
        assert any("side by side" in w for w in report.warnings)
        for rec in project.images():
            label = labels.get(rec.name)
            anns = project.annotations(rec.id)
            if label is None:
                assert anns == []
                continue
            masks = [a.geometry.to_full(rec.height, rec.width) for a in anns]
            assert len(masks) == label.max()  # id 1's two blobs are one object
            for mask, value in zip(masks, range(1, label.max() + 1), strict=True):
                assert np.array_equal(mask, label == value)


def test_one_folder_without_pairs_is_refused(tmp_path):
    from studio.core.errors import StudioError
    from studio.core.formats.instances import import_instances

    folder = tmp_path / "ds"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with Project.create(tmp_path / "p") as project:
        with pytest.raises(StudioError, match="label image beside it"):
            import_instances(project, folder, folder)
        with pytest.raises(StudioError, match="No images found"):
            import_instances(project, folder)
        assert project.images() == []


def test_the_import_preview_describes_the_one_folder_layout(tmp_path):
    from studio.core.formats.instances import describe_label_layout

    _side_by_side(tmp_path / "ds")
    for images in (None, tmp_path / "ds"):
        layout = describe_label_layout(tmp_path / "ds", images)
        assert layout is not None and layout.image_dir == layout.label_dir == tmp_path / "ds"
        assert layout.pairs == 3 and layout.first[0].name == "s0.png"
        assert layout.first[1].name == "s0_mask.png"
    empty = tmp_path / "none"
    empty.mkdir()
    assert cv2.imwrite(str(empty / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert describe_label_layout(empty, empty) is None and describe_label_layout(empty) is None
