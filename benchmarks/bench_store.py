"""Project store at scale: open a 100,000-image project and show its first page.

The images are synthetic rows (no files) inserted with SQL in one transaction; then the
project is closed, and `Project.open` + `images(limit=100)` + `count_images()` are timed
(target <= 1 s). The same is measured again with one box annotation per image, as a large
labelled project would have. Opening runs SQLite's integrity check, whose time grows with
the size of the database: that is most of the figure.

Durability: the cost of one edit (one annotation added, one moved: each its own
transaction, as the GUI saves them) in WAL mode with synchronous=NORMAL (what the store
used to) against FULL (an fsync of the WAL at every commit, what the store uses). On a RAM disk both are free; run
it on the disk that holds real projects.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from studio.core.project import Project

N_IMAGES = 100_000
PAGE = 100


def build(folder: Path, n: int = N_IMAGES, boxes: bool = False) -> float:
    """Create the synthetic project (with one box per image if `boxes`); returns seconds."""
    start = time.perf_counter()
    with Project.create(folder, name="bench") as project:
        classes = [project.add_class(f"class_{k}") for k in range(5)]
        now = time.time()
        splits = ("train", "train", "train", "val", "test")
        with project.transaction() as conn:
            conn.executemany(
                "INSERT INTO images(id, path, width, height, channels, sha256, split, status,"
                " added_at, updated_at) VALUES (?, ?, 640, 480, 3, ?, ?, 'new', ?, ?)",
                ((i, f"images/{i:06d}.png", f"{i:064x}", splits[i % 5], now, now)
                 for i in range(1, n + 1)))
            if boxes:
                conn.executemany(
                    "INSERT INTO annotations(image_id, class_id, kind, geometry, bbox_x, bbox_y,"
                    " bbox_w, bbox_h, area, source, created_at, updated_at) VALUES"
                    " (?, ?, 'box', '[10, 20, 30, 40]', 10, 20, 30, 40, 1200, 'manual', ?, ?)",
                    ((i, classes[i % 5], now, now) for i in range(1, n + 1)))
    return time.perf_counter() - start


def measure(folder: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    project = Project.open(folder)
    t1 = time.perf_counter()
    page = project.images(limit=PAGE)
    t2 = time.perf_counter()
    total = project.count_images()
    t3 = time.perf_counter()
    train = project.count_images(split="train")
    t4 = time.perf_counter()
    project.close()
    assert len(page) == PAGE and total == N_IMAGES and train == N_IMAGES * 3 // 5
    return {"open": t1 - t0, "page": t2 - t1, "count": t3 - t2, "count_split": t4 - t3,
            "total": t3 - t0}


def _timed(folder: Path, boxes: bool) -> tuple[float, dict[str, float]]:
    build_s = build(folder, boxes=boxes)
    measure(folder)  # the first open warms the OS file cache, as a second launch would
    return build_s, measure(folder)


EDITS = 200


def edit_cost(folder: Path, synchronous: str) -> float:
    """Seconds per edit (add a box, then move it: two transactions) at this setting."""
    with Project.create(folder) as project:
        project._conn.execute(f"PRAGMA synchronous={synchronous}")
        with project.transaction() as conn:
            conn.execute("INSERT INTO images(id, path, width, height, channels, sha256, added_at,"
                         " updated_at) VALUES (1, 'a.png', 640, 480, 3, 'x', 0, 0)")
        cls = project.add_class("cell")
        start = time.perf_counter()
        for i in range(EDITS // 2):
            ann = project.add_annotation(1, cls, "box", (i % 600, 10, 20, 20))
            project.update_annotation(ann, geometry=(i % 600 + 1, 11, 20, 20))
        return (time.perf_counter() - start) / EDITS


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        normal = edit_cost(Path(tmp) / "normal", "NORMAL")
        full = edit_cost(Path(tmp) / "full", "FULL")
        build_s, m = _timed(Path(tmp) / "plain", boxes=False)
        build_b, mb = _timed(Path(tmp) / "boxes", boxes=True)
    n = f"{N_IMAGES:,}"
    return [
        {"name": "one edit, WAL + synchronous=NORMAL", "value": normal * 1000,
         "unit": "ms", "target": ""},
        {"name": "one edit, WAL + synchronous=FULL (used)", "value": full * 1000, "unit": "ms",
         "target": ""},
        {"name": "FULL / NORMAL cost per edit", "value": full / normal, "unit": "x",
         "target": ""},
        {"name": f"build {n} images (SQL, one transaction)", "value": build_s, "unit": "s",
         "target": ""},
        {"name": "Project.open", "value": m["open"], "unit": "s", "target": ""},
        {"name": f"images(limit={PAGE})", "value": m["page"] * 1000, "unit": "ms", "target": ""},
        {"name": "count_images()", "value": m["count"] * 1000, "unit": "ms", "target": ""},
        {"name": "count_images(split='train')", "value": m["count_split"] * 1000, "unit": "ms",
         "target": ""},
        {"name": f"open + first page + count ({n} images)", "value": m["total"], "unit": "s",
         "target": "<= 1 s"},
        {"name": f"build {n} images + {n} boxes", "value": build_b, "unit": "s", "target": ""},
        {"name": f"open + first page + count ({n} images + boxes)", "value": mb["total"],
         "unit": "s", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.4g} {row['unit']} {row['target']}")
