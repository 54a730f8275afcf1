"""Importing a real instance-segmentation dataset: DSB 2018 stage 1 test (65 images, 4,152
nuclei, one PNG per nucleus) into a fresh project, in one transaction."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from studio.core.formats import import_dataset
from studio.core.project import Project

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
DSB = SHARED / "dsb2018_nuclei" / "stage1_test"


def run() -> list[dict]:
    if not DSB.is_dir():
        return [{"name": f"import dsb2018_nuclei: skipped, {DSB} not present",
                 "value": float("nan"), "unit": "s", "target": ""}]
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        with Project.create(Path(tmp) / "dsb") as project:
            start = time.perf_counter()
            report = import_dataset(project, "instances", DSB)
            seconds = time.perf_counter() - start
    return [
        {"name": f"import dsb2018_nuclei ({report.images} images, {report.annotations} masks)",
         "value": seconds, "unit": "s", "target": ""},
        {"name": "import dsb2018_nuclei, masks per second", "value": report.annotations / seconds,
         "unit": "masks/s", "target": ""},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.4g} {row['unit']} {row['target']}")
