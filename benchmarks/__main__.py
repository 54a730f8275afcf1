"""Run every benchmarks/bench_*.py (or those named on the command line) and print one table.

`python -m benchmarks gpu` runs the GPU readiness check instead (benchmarks/gpu.py).

Each script defines `run() -> list[dict]` with rows {"name", "value", "unit", "target"}.
A script that fails prints its error as a row; the others still run.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
import traceback
from pathlib import Path


def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    if argv[:1] == ["gpu"]:  # the GPU readiness check prints its own rows
        from benchmarks.gpu import main as gpu_main

        return gpu_main(argv[1:])
    here = Path(__file__).resolve().parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    rows: list[tuple[str, str, str, str, str]] = []
    failed = 0
    for name in names:
        module_name = name if name.startswith("bench_") else f"bench_{name}"
        print(f"== {module_name}", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{module_name}")
            for row in module.run():
                rows.append((module_name, row["name"], _fmt(row["value"]), row.get("unit", ""),
                             row.get("target", "")))
                print(f"   {row['name']}: {_fmt(row['value'])} {row.get('unit', '')}", flush=True)
        except Exception as exc:  # a broken benchmark is reported, the rest still run
            failed += 1
            traceback.print_exc()
            rows.append((module_name, "FAILED", type(exc).__name__, str(exc)[:60], ""))
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    widths = [max(len(r[i]) for r in rows + [("script", "measure", "value", "unit", "target")])
              for i in range(5)]
    header = ("script", "measure", "value", "unit", "target")
    print()
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
