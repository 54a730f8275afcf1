"""studio-cli facing odd file names: not UTF-8, near the file-system limit, and --out
paths that cannot be written. One line, never a crash, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from testutil import FAST_TRAINING, add_toy_classification, write_png

from studio.cli import main
from studio.core.images import image_info, load_image
from studio.core.project import Project

REPO = Path(__file__).resolve().parents[2]
BAD = b"caf\xe9"  # Latin-1 "café": not valid UTF-8


def _bytes_name(folder: Path, stem: bytes, suffix: str) -> Path:
    """A path whose name holds bytes that are not UTF-8 (Python keeps them as surrogates)."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + stem + suffix.encode()))


def _write_any(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        buf = __import__("io").BytesIO()
        Image.fromarray(arr).save(buf, format="GIF")
        data = buf.getvalue()
    else:
        ok, enc = cv2.imencode(path.suffix, arr)
        assert ok
        data = enc.tobytes()
    with open(os.fsencode(path), "wb") as fh:
        fh.write(data)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], cwd=REPO, env=env,
                          capture_output=True, timeout=300)


def _cls_project(tmp_path: Path) -> tuple[Path, int]:
    from studio.ml.fit import fit

    root = tmp_path / "p"
    with Project.create(root) as project:
        add_toy_classification(project, tmp_path / "img", ["train"] * 4 + ["val"] * 2, size=8)
        config = {"task": "classification", "image_size": 8, "batch_size": 2, "epochs": 1,
                  "device": "cpu", "model_options": {"width": 4, "fc": [4]}, **FAST_TRAINING}
        run_id = fit(project, config).run_id
    return root, run_id


@pytest.mark.parametrize("suffix", [".png", ".gif", ".jpg", ".webp"])
def test_a_name_that_is_not_utf8_is_decoded_from_memory(tmp_path, suffix):
    arr = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    path = _bytes_name(tmp_path, BAD, suffix)
    _write_any(path, arr)
    # in a child: OpenCV given such a name as text used to kill the process (SIGSEGV)
    code = ("import sys; from pathlib import Path; from studio.core.images import load_image,"
            " image_info; p = Path(sys.argv[1]); print(image_info(p).width,"
            " load_image(p).shape)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, os.fsencode(path)], cwd=REPO, env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode().split()[0] == "9"
    assert image_info(path).height == 6 and load_image(path).shape[:2] == (6, 9)


def test_an_import_skips_names_that_are_not_utf8_and_keeps_the_rest(tmp_path):
    rng = np.random.default_rng(1)
    for i, suffix in enumerate((".png", ".gif", ".jpg", ".webp")):
        _write_any(_bytes_name(tmp_path / "ds" / "cat", BAD + str(i).encode(), suffix),
                   rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    write_png(tmp_path / "ds" / "cat" / "ok.png", rng.integers(0, 256, (8, 8, 3), np.uint8))
    proj = tmp_path / "p"
    assert main(["new", str(proj)]) == 0
    proc = _run_cli("import", str(proj), "--format", "folders", "--source",
                    str(tmp_path / "ds"))
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "Imported 1 images" in out and "Skipped 4" in out
    assert "caf\\xe90.png: the file name is not valid UTF-8" in out
    with Project.open(proj) as project:
        assert [r.name for r in project.images()] == ["ok.png"]


def test_predict_reads_an_image_whose_name_is_not_utf8(tmp_path):
    root, run_id = _cls_project(tmp_path)
    path = _bytes_name(tmp_path / "new", BAD, ".png")
    _write_any(path, np.full((8, 8, 3), 200, np.uint8))
    proc = _run_cli("predict", str(root), "--run", str(run_id), "--device", "cpu",
                    "--images", str(tmp_path / "new"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    rows = (tmp_path / "out" / "predictions.csv").read_bytes().splitlines()
    assert len(rows) == 2 and BAD + b".png" in rows[1]  # the name as it is on disk


# --- names near the file system's limit ---------------------------------------------------
LONG = "x" * 236 + ".png"  # 240 bytes: fits, but not with what a temporary name adds


def _seg_project(tmp_path: Path, extra: Path | None = None) -> tuple[Path, int]:
    from testutil import add_toy_segmentation

    from studio.ml.fit import fit

    root = tmp_path / "p"
    with Project.create(root) as project:
        add_toy_segmentation(project, tmp_path / "img", ["train"] * 3 + ["val"], cells=4)
        if extra is not None:
            from studio.core.geometry import MaskGeom

            iid, _ = project.add_image(extra, split="train")
            mask = np.zeros((16, 16), bool)
            mask[2:9, 3:12] = True
            project.add_annotation(iid, project.class_by_name("foreground").id, "mask",
                                   MaskGeom.from_full(mask))
            project.add_annotation(iid, project.class_by_name("foreground").id, "box",
                                   [1.0, 1.0, 6.0, 7.0])
        config = {"task": "semantic", "image_size": 16, "batch_size": 2, "epochs": 1,
                  "device": "cpu", "model_options": {"depth": 1, "width": 4}, **FAST_TRAINING}
        run_id = fit(project, config).run_id
    return root, run_id


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".tmp" in p.name)


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo", "labelme", "masks", "instances",
                                 "folders"])
def test_export_of_an_image_named_near_the_limit(tmp_path, capsys, fmt):
    image = write_png(tmp_path / "ds" / LONG, np.full((16, 16), 90, np.uint8))
    root = tmp_path / "p"
    with Project.create(root) as project:
        from studio.core.geometry import MaskGeom

        cls = project.add_class("thing")
        iid, _ = project.add_image(image, split="train")
        mask = np.zeros((16, 16), bool)
        mask[2:9, 3:12] = True
        project.add_annotation(iid, cls, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, cls, "box", [1.0, 1.0, 6.0, 7.0])
        project.add_annotation(iid, cls, "tag", None)
    out = tmp_path / "out"
    assert main(["export", str(root), "--format", fmt, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Exported 1 images" in captured.out, captured.err
    names = [p.name for p in out.rglob("*") if p.is_file()]
    assert names and all(len(os.fsencode(n)) <= 255 for n in names)
    assert _leftovers(tmp_path) == [] and not any(".tmp" in n for n in names)


def test_predict_of_an_image_named_near_the_limit(tmp_path, capsys):
    root, run_id = _seg_project(tmp_path)
    image = write_png(tmp_path / "new" / LONG, np.full((16, 16), 200, np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(root), "--run", str(run_id), "--device", "cpu",
                 "--images", str(image), "--out", str(out)]) == 0
    written = list(out.iterdir())
    assert len(written) == 1 and written[0].suffix == ".png"
    assert written[0].name.startswith("x" * 100) and "~" in written[0].name


def test_a_failed_export_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / "ds" / "cat" / f"c{i}.png", rng.integers(0, 256, (8, 8, 3), np.uint8))
    root = tmp_path / "p"
    assert main(["new", str(root)]) == 0
    assert main(["import", str(root), "--format", "folders", "--source",
                 str(tmp_path / "ds")]) == 0
    import studio.core.formats.coco as coco

    real, calls = coco.atomic_copy, []

    def fail_on_third(src, dest):
        calls.append(dest)
        if len(calls) == 3:
            raise OSError(36, "File name too long")
        real(src, dest)

    monkeypatch.setattr(coco, "atomic_copy", fail_on_third)
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["export", str(root), "--format", "coco", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was written" in err and "too long" in err
    assert not out.exists() and _leftovers(tmp_path) == []


# --- --out that cannot be written ---------------------------------------------------------
def test_out_that_is_an_existing_file_is_one_line(tmp_path, capsys):
    root, run_id = _seg_project(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    image = str(tmp_path / "img" / "s0.png")
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"steps": []}')
    for argv in (["export", str(root), "--format", "coco", "--out", str(afile)],
                 ["export", str(root), "--format", "masks", "--out", str(afile / "sub")],
                 ["predict", str(root), "--run", str(run_id), "--device", "cpu",
                  "--images", image, "--out", str(afile)],
                 ["export-model", str(root), "--run", str(run_id), "--format", "torchscript",
                  "--out", str(afile / "model.pt")],
                 ["postprocess", str(root), "--run", str(run_id), "--recipe", str(recipe),
                  "--split", "train", "--device", "cpu", "--out", str(afile)]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and str(afile) in err, err
    assert afile.read_text() == "keep me"


def test_out_on_a_read_only_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    root, run_id = _seg_project(tmp_path)
    ro = tmp_path / "ro"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # what a read-only mount answers
        if self == ro or ro in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    image = str(tmp_path / "img" / "s0.png")
    for argv in (["export", str(root), "--format", "yolo", "--out", str(ro / "out")],
                 ["predict", str(root), "--run", str(run_id), "--device", "cpu",
                  "--images", image, "--out", str(ro / "out")],
                 ["export-model", str(root), "--run", str(run_id), "--format", "torchscript",
                  "--out", str(ro / "m" / "model.pt")]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "read-only" in err.lower(), err
