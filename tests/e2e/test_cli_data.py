"""studio-cli data commands end to end: new, import, export, info, split; errors; no Qt."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.project import Project

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "studio.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=120)


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run `main` in-process; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_subprocess_new_import_info(tmp_path, test_data):
    proj = tmp_path / "proj"
    done = run_cli("new", proj, "--name", "demo")
    assert done.returncode == 0, done.stderr
    assert "Created project 'demo'" in done.stdout
    done = run_cli("import", proj, "--format", "labelme", "--source", test_data / "labelme")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Imported 2 images (0 already present), 7 annotations")
    done = run_cli("info", proj, "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert set(info) == {"images", "classes", "annotations", "splits", "statuses"}
    assert info["images"] == 2 and info["annotations"]["total"] == 7
    assert info["annotations"]["by_kind"] == {"box": 2, "polygon": 2, "mask": 2, "tag": 1}
    assert info["splits"]["none"] == 2 and info["statuses"]["done"] == 2  # came labelled


def test_subprocess_error_is_one_line(tmp_path):
    done = run_cli("info", tmp_path / "missing")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "not a Vision Studio project" in done.stderr and "Traceback" not in done.stderr


def test_in_process_flow(tmp_path, test_data, capsys):
    proj = tmp_path / "p"
    assert cli(capsys, "new", proj)[0] == 0
    code, out, _ = cli(capsys, "import", proj, "--format", "masks", "--source", test_data / "masks")
    assert code == 0 and "Imported 3 images" in out and "New classes: background, cell" in out
    code, out, _ = cli(capsys, "info", proj)
    assert code == 0
    assert "Images: 3 (train 0, val 0, test 0, none 3)" in out
    assert "Annotations: 5 (5 mask)" in out and "  cell: 1" in out
    code, out, _ = cli(capsys, "split", proj, "--stratify")
    assert code == 0 and out.startswith("Split: train ")
    code, out, _ = cli(capsys, "split", proj, "--train", "0.34", "--val", "0.33", "--test",
                       "0.33", "--seed", "1")
    assert code == 0 and out.strip() == "Split: train 1, val 1, test 1"
    code, out, _ = cli(capsys, "export", proj, "--format", "masks", "--out", tmp_path / "out",
                       "--split", "train")
    assert code == 0 and out.startswith("Exported 1 images")
    assert len(list((tmp_path / "out" / "images").iterdir())) == 1
    code, out, _ = cli(capsys, "import", proj, "--format", "masks", "--source", test_data / "masks",
                       "--json")
    report = json.loads(out)
    assert code == 0 and report["images"] == 0 and report["duplicate_images"] == 3


def test_import_options(tmp_path, capsys, shared_datasets):
    proj = tmp_path / "p"
    cli(capsys, "new", proj)
    code, out, err = cli(capsys, "import", proj, "--format", "folders", "--source",
                         shared_datasets / "sklearn_digits" / "images", "--option", "limit=2",
                         "--option", "split=train")
    assert code == 0, err
    with Project.open(proj) as p:
        assert p.count_images(split="train") == 20


def test_unknown_option_is_a_clear_error(tmp_path, test_data, capsys):
    cli(capsys, "new", tmp_path / "p")
    code, _, err = cli(capsys, "import", tmp_path / "p", "--format", "labelme", "--source",
                       test_data / "labelme", "--option", "colour=red")
    assert code == 1 and "has no option 'colour'" in err and "ignore_label" in err
    with pytest.raises(SystemExit) as exc:
        main(["import", str(tmp_path / "p"), "--format", "labelme", "--source", "x",
              "--option", "nokeyvalue"])
    assert exc.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_bad_format_name_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["import", str(tmp_path), "--format", "pascal", "--source", "x"])
    assert exc.value.code == 2 and "invalid choice: 'pascal'" in capsys.readouterr().err


def test_folder_without_images(tmp_path, capsys):
    cli(capsys, "new", tmp_path / "p")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    code, out, err = cli(capsys, "import", tmp_path / "p", "--format", "folders", "--source",
                         tmp_path / "empty")
    assert code == 1 and out == ""
    assert err.startswith("error: No images found in") and err.count("\n") == 1


def test_split_errors(tmp_path, capsys, make_image):
    cli(capsys, "new", tmp_path / "p")
    code, _, err = cli(capsys, "split", tmp_path / "p")
    assert code == 1 and "no images to split" in err
    with Project.open(tmp_path / "p") as p:
        p.add_image(make_image())
    code, _, err = cli(capsys, "split", tmp_path / "p", "--train", "1.5")
    assert code == 1 and "--train must be a fraction between 0 and 1" in err


def test_read_only_project(tmp_path, test_data, capsys):
    proj = tmp_path / "ro"
    cli(capsys, "new", proj)
    mode = proj.stat().st_mode
    os.chmod(proj, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        code, out, err = cli(capsys, "import", proj, "--format", "labelme", "--source",
                             test_data / "labelme")
        done = run_cli("import", proj, "--format", "labelme", "--source", test_data / "labelme")
    finally:
        os.chmod(proj, mode)
    assert code == 1 and out == "" and "read-only" in err and err.count("\n") == 1
    assert done.returncode == 1 and "read-only" in done.stderr
    assert done.stderr.count("\n") == 1
    with Project.open(proj) as p:
        assert p.count_images() == 0


def test_new_on_existing_project(tmp_path, capsys):
    cli(capsys, "new", tmp_path / "p")
    code, _, err = cli(capsys, "new", tmp_path / "p")
    assert code == 1 and "already holds a project" in err


def test_coco_import_and_export(tmp_path, test_data, capsys):
    source = test_data / "coco" / "mini" / "annotations.json"
    if not source.is_file():
        pytest.skip("the COCO test data is not in this checkout")
    cli(capsys, "new", tmp_path / "p")
    code, out, err = cli(capsys, "import", tmp_path / "p", "--format", "coco", "--source", source)
    assert code == 0 and out.startswith("Imported 2 images"), err
    code, out, err = cli(capsys, "export", tmp_path / "p", "--format", "labelme", "--out",
                         tmp_path / "lm")
    assert code == 0 and out.startswith("Exported 2 images"), err
    assert len(list((tmp_path / "lm").glob("*.json"))) == 2


NO_QT = textwrap.dedent("""
    import importlib, pkgutil, sys

    BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "superqt")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import studio.cli, studio.cli.data, studio.core, studio.ml
    imported = ["studio.cli"]
    for pkg in (studio.core, studio.ml):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
            imported.append(info.name)
    studio.cli.build_parser()
    leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    assert not leaked, leaked
    print("\\n".join(imported))
""")


@pytest.mark.slow
def test_cli_core_and_ml_import_without_qt():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", NO_QT], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(done.stdout.split())
    for name in ("studio.core.project", "studio.core.formats.labelme",
                 "studio.core.formats.masks", "studio.core.formats.instances",
                 "studio.core.formats.folders", "studio.core.splits"):
        assert name in modules
