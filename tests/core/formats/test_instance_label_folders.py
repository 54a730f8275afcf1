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
