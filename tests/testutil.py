"""Small helpers shared by tests (import as `from testutil import ...`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write an image with OpenCV (RGB input is converted to OpenCV's BGR order)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", arr)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


# Training tests: no early stopping and no warm-up, so a few epochs really train.
FAST_TRAINING = {"early_stopping": {"enabled": False}, "scheduler": {"warmup_epochs": 0}}


def add_toy_classification(project, folder: Path, splits: list[str], size: int = 16,
                           spread: float = 30, seed: int = 0) -> None:
    """Dark vs bright noisy RGB images tagged "dark" / "bright" (a learnable toy).

    One image per entry of `splits`; odd images are bright.
    """
    dark, bright = project.get_or_add_class("dark"), project.get_or_add_class("bright")
    rng = np.random.default_rng(seed)
    for i, split in enumerate(splits):
        arr = np.clip(rng.normal(180 if i % 2 else 70, spread, (size, size, 3)), 0, 255)
        iid, _ = project.add_image(write_png(folder / f"c{i}.png", arr.astype(np.uint8)),
                                   split=split)
        project.add_annotation(iid, bright if i % 2 else dark, "tag", None)


def add_toy_segmentation(project, folder: Path, splits: list[str], cells: int = 6,
                         cell_px: int = 4, seed: int = 0) -> None:
    """Blocky bright-on-dark images whose mask is the bright part (a learnable toy).

    One image per entry of `splits`, with "background" and "foreground" masks.
    """
    from studio.core.geometry import MaskGeom

    bg, fg = project.get_or_add_class("background"), project.get_or_add_class("foreground")
    rng = np.random.default_rng(seed)
    for i, split in enumerate(splits):
        mask = np.kron(rng.random((cells, cells)) > 0.5, np.ones((cell_px, cell_px), bool))
        image = write_png(folder / f"s{i}.png", np.where(mask, 200, 40).astype(np.uint8))
        iid, _ = project.add_image(image, split=split)
        project.add_annotation(iid, fg, "mask", MaskGeom.from_full(mask))
        project.add_annotation(iid, bg, "mask", MaskGeom.from_full(~mask))
