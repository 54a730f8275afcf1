"""The bundled sample project: a few ISBI 2012 membrane images with their masks.

No Qt here: the GUI (`studio --sample`) and tests build it the same way. The project is
built in a temporary folder next to the destination and moved into place when complete,
so an interrupted build never leaves a half-made project behind.
"""

from __future__ import annotations

import os
import random
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np

from studio.core.errors import InstallationError, ProjectError
from studio.core.geometry import MaskGeom
from studio.core.images import load_image
from studio.core.project import DB_NAME, Project

CLASSES = (("membrane", "#f58231", 0), ("cell", "#4363d8", 255))  # name, colour, mask value
SPLIT_COUNTS = {"train": 3, "val": 1, "test": 1}
SEED = 2012


def resources_dir() -> Path:
    """The package's data folder `studio/resources/` (package data: present in a source
    tree, an editable or a wheel install, and a PyInstaller build alike)."""
    folder = files("studio") / "resources"
    if not isinstance(folder, Path):  # e.g. imported from a zip: the data is not on disk
        raise InstallationError(f"Vision Studio's data files are not in a folder ({folder}); "
                                "install it with pip into a normal environment.")
    return folder


def sample_data_dir() -> Path:
    folder = resources_dir() / "sample_data"
    if not (folder / "images").is_dir():
        raise InstallationError(f"The sample data is missing ({folder}); reinstall Vision Studio "
                                "(its package data is incomplete).")
    return folder


def default_sample_location() -> Path:
    """Where `studio --sample` keeps its sample project (per-user data folder)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("vision-studio")) / "sample_project"


def _masks_of(label: np.ndarray) -> list[tuple[str, MaskGeom]]:
    if label.ndim == 3:
        label = label[..., 0]
    cell = label >= 128
    regions = {"membrane": ~cell, "cell": cell}
    return [(name, MaskGeom.from_full(regions[name])) for name, _c, _v in CLASSES
            if regions[name].any()]


def build_sample_project(folder: Path, data: Path | None = None) -> None:
    """Create the sample project in `folder` (which must not hold a project yet)."""
    data = data or sample_data_dir()
    labelled = sorted((data / "images").glob("*.png"))
    unlabelled = sorted((data / "unlabelled").glob("*.png"))
    if not labelled:
        raise InstallationError(f"No sample images in {data / 'images'}; reinstall Vision Studio.")
    splits = [s for s, n in SPLIT_COUNTS.items() for _ in range(n)]
    splits += ["train"] * max(0, len(labelled) - len(splits))
    random.Random(SEED).shuffle(splits)
    with Project.create(folder, name="Sample: ISBI 2012 membranes") as project:
        with project.transaction():
            class_ids = {name: project.add_class(name, color) for name, color, _v in CLASSES}
            for image, split in zip(labelled, splits, strict=False):
                mask_file = data / "masks" / image.name
                if not mask_file.is_file():
                    raise InstallationError(f"The sample mask {mask_file} is missing; reinstall Vision "
                                            "Studio.")
                image_id, _created = project.add_image(image, copy=True, split=split,
                                                       status="done")
                project.add_annotations([
                    dict(image_id=image_id, class_id=class_ids[name], kind="mask",
                         geometry=geom, source="import:masks")
                    for name, geom in _masks_of(load_image(mask_file, mode="gray"))
                ])
            for image in unlabelled:
                project.add_image(image, copy=True)


def ensure_sample_project(dest: str | os.PathLike) -> Path:
    """The sample project at `dest`, built first if it is not there yet; returns the folder."""
    dest = Path(dest).expanduser().resolve()
    if (dest / DB_NAME).is_file():
        return dest
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ProjectError(f"{dest} exists and is not a Vision Studio project; choose another "
                           "place for the sample project.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    building = dest.with_name(dest.name + ".building")
    if building.exists():
        shutil.rmtree(building)  # a build that was interrupted earlier
    try:
        build_sample_project(building)
        if dest.exists():
            dest.rmdir()
        os.replace(building, dest)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return dest
