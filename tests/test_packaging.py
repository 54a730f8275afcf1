"""A wheel of the project, installed away from the repository, works on its own.

The source is copied to a temporary folder, built into a wheel (no build isolation, no
dependencies: nothing is downloaded; the test environment already holds setuptools and
the runtime dependencies) and installed with `pip --target` into another temporary
folder. The installed `studio` and `studio-cli` commands then run with the working
directory outside the repository, and the bundled sample project is built from the
installed package's data: what `studio --sample` and `studio --self-test` rely on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import studio

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 120) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(folder the wheel was installed into, environment that imports from there)."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "studio", src / "studio", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_NO_INDEX"] = "1"  # never ask a package index for anything
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
          str(src)], cwd=root, env=env, timeout=180)
    wheels = list((root / "dist").glob("vision_studio-*.whl"))
    assert len(wheels) == 1, wheels
    site = root / "site"
    _run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(site),
          str(wheels[0])], cwd=root, env=env, timeout=180)
    shutil.rmtree(src)  # nothing of the source is left to fall back on
    env["PYTHONPATH"] = str(site)
    return site, env


def test_wheel_holds_the_sample_data(installed):
    site, _env = installed
    data = site / "studio" / "resources" / "sample_data"
    assert sorted(p.name for p in (data / "images").glob("*.png")) == \
        sorted(p.name for p in (REPO / "studio/resources/sample_data/images").glob("*.png"))
    assert (data / "LICENSE").is_file()
    assert not (site / "resources").exists()  # data inside the package, not at the top


def test_installed_commands_run_outside_the_repository(installed, tmp_path):
    site, env = installed
    out = _run([str(site / "bin" / "studio"), "--version"], cwd=tmp_path, env=env)
    assert out.startswith(f"Vision Studio {studio.__version__} ")
    out = _run([str(site / "bin" / "studio-cli"), "--help"], cwd=tmp_path, env=env)
    assert "usage: studio-cli" in out


def test_installed_package_builds_the_sample_project(installed, tmp_path):
    site, env = installed
    code = ("import sys, studio, studio.sample as s\n"
            "print(studio.__file__)\n"
            "print(s.sample_data_dir())\n"
            "from studio.core.project import Project\n"
            "with Project.open(s.ensure_sample_project(sys.argv[1])) as p:\n"
            "    print(len(p.images()))\n")
    lines = _run([sys.executable, "-c", code, str(tmp_path / "sample")], cwd=tmp_path,
                 env=env).split()
    module, data, count = Path(lines[0]), Path(lines[1]), int(lines[2])
    assert module.is_relative_to(site), module  # the installed copy, not the repository's
    assert data == site / "studio" / "resources" / "sample_data"
    assert count == 7  # 5 labelled + 2 unlabelled images


def test_packaged_entry_point_runs_the_window_and_its_own_modules_only(tmp_path):
    """packaging/entry.py (what the frozen executables run): the window's arguments, and
    `-m MODULE` for the application's own modules (the training child), nothing else."""
    entry = str(REPO / "packaging" / "entry.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = _run([sys.executable, entry, "--version"], cwd=tmp_path, env=env)
    assert out.startswith(f"Vision Studio {studio.__version__} ")
    out = _run([sys.executable, entry, "-m", "studio.cli", "--help"], cwd=tmp_path, env=env)
    assert "usage:" in out
    refused = subprocess.run([sys.executable, entry, "-m", "json.tool"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "runs only its own modules" in refused.stderr
