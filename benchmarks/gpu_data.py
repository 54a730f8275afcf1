"""Synthetic projects for the GPU readiness check (`python -m benchmarks gpu`).

Generated, not downloaded: a GPU machine may have no network and no datasets beside the
checkout. The images are learnable (smooth blobs, bright squares and discs), so a loss
that does not fall says something, but the check measures the path, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _write(path: Path, array: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")
    return path


def blob_project(folder: Path, n_images: int, size: int, seed: int = 0):
    """A semantic project: grey images of smooth blobs, "blob" / "background" masks,
    every image in the train split. Returns the open Project (the caller closes it)."""
    import cv2

    from studio.core.geometry import MaskGeom
    from studio.core.project import Project

    project = Project.create(folder, name="gpu check: blobs")
    background, blob = project.add_class("background"), project.add_class("blob")
    rng = np.random.default_rng(seed)
    sigma = max(1.0, size / 24)
    for i in range(n_images):
        field = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), sigma)
        mask = field > np.median(field)
        noise = rng.normal(0, 20, (size, size))
        image = np.clip(np.where(mask, 170, 80) + noise, 0, 255).astype(np.uint8)
        iid, _ = project.add_image(_write(folder / "img" / f"b{i:03d}.png", image),
                                   split="train")
        project.add_annotation(iid, blob, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, background, "mask", MaskGeom.from_full(~mask))
    return project


def objects_project(folder: Path, n_images: int, size: int, kind: str, seed: int = 0):
    """A detection ("box") or instance ("mask") project: two bright squares and discs per
    image on a dark background, every image in the train split."""
    from studio.core.geometry import MaskGeom
    from studio.core.project import Project

    project = Project.create(folder, name=f"gpu check: objects ({kind})")
    classes = [project.add_class("square"), project.add_class("disc")]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images):
        image = np.full((size, size, 3), 30, np.uint8)
        shapes = []
        for k in range(4):
            r = int(rng.integers(max(2, size // 16), max(3, size // 8)))
            cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
            if k % 2 == 0:
                mask = (abs(xx - cx) < r) & (abs(yy - cy) < r)
            else:
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            image[mask] = (220, 200, 60) if k % 2 == 0 else (60, 200, 220)
            shapes.append((classes[k % 2], mask))
        iid, _ = project.add_image(_write(folder / "img" / f"o{i:03d}.png", image),
                                   split="train")
        for class_id, mask in shapes:
            geom = MaskGeom.from_full(mask)
            if kind == "box":
                project.add_annotation(iid, class_id, "box", geom.bbox())
            else:
                project.add_annotation(iid, class_id, "mask", geom)
    return project
