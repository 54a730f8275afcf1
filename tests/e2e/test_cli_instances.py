"""studio-cli import of instance label images in the layouts people have: any two folders
(--source LABELDIR --images IMAGEDIR), folders found by content (--source ROOT), ids split
in two blobs, and the masks format's hint on the same folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from studio.cli import main


def _write(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _dataset(root: Path) -> int:
    """Photos/<n>.jpg and Annot/<n>_mask.png, ids 1..k, id 2 of each image in two blobs.
    Returns the number of objects."""
    rng = np.random.default_rng(0)
    total = 0
    for n, k in enumerate((12, 5, 30)):
        label = np.zeros((64, 80), np.uint16)
        for i in range(k):
            y, x = 1 + 7 * (i // 10), 1 + 8 * (i % 10)
            label[y:y + 5, x:x + 5] = i + 1
        label[58:62, 70:76] = 2  # the second part of object 2
        img = rng.integers(0, 60, (64, 80, 3)).astype(np.uint8)
        img[label > 0] += 150
        _write(root / "Photos" / f"cells_{n}.jpg", img)
        _write(root / "Annot" / f"cells_{n}_mask.png", label)
        total += k
    return total


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_root_with_unusual_folder_names(tmp_path, capsys):
    total = _dataset(tmp_path / "ds")
    assert _cli(capsys, "new", tmp_path / "p")[0] == 0
    code, out, err = _cli(capsys, "import", tmp_path / "p", "--format", "instances",
                          "--source", tmp_path / "ds")
    assert code == 0, err
    assert out.startswith(f"Imported 3 images (0 already present), {total} annotations")
    assert "images from Photos/ and their label images from Annot/" in out
    assert "3 object(s) are made of several separate parts" in out
    code, out, _ = _cli(capsys, "info", tmp_path / "p", "--json")
    assert json.loads(out)["annotations"]["by_class"] == {"nucleus": total}


def test_import_label_folder_and_image_folder(tmp_path, capsys):
    total = _dataset(tmp_path / "ds")
    _cli(capsys, "new", tmp_path / "p")
    code, out, err = _cli(capsys, "import", tmp_path / "p", "--format", "instances",
                          "--source", tmp_path / "ds" / "Annot",
                          "--images", tmp_path / "ds" / "Photos", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["images"] == 3 and report["annotations"] == total
    assert report["skipped"] == []


def test_masks_format_hints_at_instances_on_the_same_folders(tmp_path, capsys):
    _dataset(tmp_path / "ds")
    _cli(capsys, "new", tmp_path / "p")
    code, out, err = _cli(capsys, "import", tmp_path / "p", "--format", "masks",
                          "--source", tmp_path / "ds" / "Annot",
                          "--images", tmp_path / "ds" / "Photos")
    assert code != 0
    assert "look like instance ids" in err and "--format instances" in err
    assert "\n" not in err.strip()
    code, out, _ = _cli(capsys, "info", tmp_path / "p", "--json")
    assert json.loads(out)["images"] == 0


def test_import_images_beside_their_label_images(tmp_path, capsys):
    """`a.jpg` beside `a_mask.png` in one folder: paired, the masks never imported as
    images, through --source alone and through --source D --images D."""
    root = tmp_path / "ds"
    _dataset(root)
    flat = tmp_path / "flat"
    for path in list((root / "Photos").iterdir()) + list((root / "Annot").iterdir()):
        _write(flat / path.name, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    total = 12 + 5 + 30
    for n, extra in enumerate(([], ["--images", flat])):
        project = tmp_path / f"p{n}"
        _cli(capsys, "new", project)
        code, out, err = _cli(capsys, "import", project, "--format", "instances",
                              "--source", flat, *extra, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["images"] == 3 and report["annotations"] == total
        assert report["skipped"] == []
        code, out, _ = _cli(capsys, "info", project, "--json")
        assert json.loads(out)["images"] == 3  # no cells_<n>_mask.png among them
