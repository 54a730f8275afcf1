"""Small helpers shared by tests (import as `from testutil import ...`)."""

from __future__ import annotations

from contextlib import contextmanager
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


def add_toy_objects(project, folder: Path, splits: list[str], size: int = 64,
                    objects: int = 2, seed: int = 0, kind: str = "mask",
                    empty: tuple[int, ...] = ()) -> list[int]:
    """Bright squares ("square") and discs ("disc") on a dark background, one object
    per class and image by default; images whose position is in `empty` hold none.
    Objects are stored as `kind` ("mask", "polygon" or "box"). Returns the image ids."""
    from studio.core.geometry import MaskGeom

    classes = [project.get_or_add_class("square"), project.get_or_add_class("disc")]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    ids = []
    for i, split in enumerate(splits):
        image = np.full((size, size, 3), 30, np.uint8)
        shapes = []
        for k in range(0 if i in empty else objects):
            r = int(rng.integers(size // 10, size // 6))
            cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
            if k % 2 == 0:
                mask = (abs(xx - cx) < r) & (abs(yy - cy) < r)
            else:
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            image[mask] = (220, 200, 60) if k % 2 == 0 else (60, 200, 220)
            shapes.append((classes[k % 2], mask))
        iid, _ = project.add_image(write_png(folder / f"o{i}.png", image), split=split)
        for class_id, mask in shapes:
            geom = MaskGeom.from_full(mask)
            if kind == "box":
                project.add_annotation(iid, class_id, "box", geom.bbox())
            elif kind == "polygon":
                x, y, w, h = geom.bbox()
                pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
                project.add_annotation(iid, class_id, "polygon", pts)
            else:
                project.add_annotation(iid, class_id, "mask", geom)
        ids.append(iid)
    return ids


def huge_image_view(qtbot, project, path):
    """(view, document, image id): a small canvas for the image at `path`, told to treat
    it as huge (overview first, then tiles), the image not chosen yet."""
    from studio.gui.canvas import CanvasView
    from studio.gui.document import LabelDocument

    image_id, _ = project.add_image(path)
    doc = LabelDocument(project)
    view = CanvasView(doc)
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.show()
    view.image_layer.full_pixels = 100 * 100  # treat it as huge
    view.image_layer.overview_side = 256
    return view, doc, image_id


def tiny_task_project(root: Path, task: str, n_train: int = 6, n_val: int = 2):
    """A new project at `root` with a learnable toy for `task` (classification,
    semantic, detection or instance) in train and val; returns it open."""
    from studio.core.project import Project

    project = Project.create(root, name=task)
    splits = ["train"] * n_train + ["val"] * n_val
    if task == "classification":
        add_toy_classification(project, root / "img", splits)
    elif task == "semantic":
        add_toy_segmentation(project, root / "img", splits)
    else:
        add_toy_objects(project, root / "img", splits, size=48,
                        kind="box" if task == "detection" else "mask")
    return project


@contextmanager
def inspect_on_copy(qtbot, template, tmp_path, size=(1400, 800)):
    """An Inspect workspace shown on a copy of `template` ((project folder, run id), a
    module-scoped trained run), the run chosen; shut down and the project closed after."""
    import shutil

    from studio.core.project import Project
    from studio.gui.document import LabelDocument
    from studio.gui.inspect.workspace import InspectWorkspace

    src, run_id = template
    shutil.copytree(src, tmp_path / "proj", ignore=shutil.ignore_patterns("project.lock"))
    project = Project.open(tmp_path / "proj")
    w = InspectWorkspace(device="cpu")
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.set_document(LabelDocument(project))
    w.run_id = run_id
    try:
        yield w
    finally:
        w.shutdown()
        w.set_document(None)
        project.close()


def refuse_model_downloads(monkeypatch, tmp_path) -> Path:
    """A fresh HOME (osam's model folder) under `tmp_path`, and osam's downloader made to
    fail the test: no test downloads model files. Returns the HOME."""
    import importlib

    fetcher = importlib.import_module("gdown.cached_download")
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))

    def refuse(*_a, **_k):
        raise AssertionError("a test tried to download model files")

    monkeypatch.setattr(fetcher, "download", refuse)
    return home
