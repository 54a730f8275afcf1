"""Run an exported ONNX model on the CPU, as the export checks do: with onnxruntime when
it is installed, else with onnx's own pure-NumPy reference runtime (slower, but it needs
nothing beyond the ``onnx`` package that export needs anyway)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def run_onnx(path: str | Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of the ONNX model at `path` for the inputs `feed` (name -> array)."""
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return list(session.run(None, feed))
    import onnx
    from onnx.reference import ReferenceEvaluator

    onnx.checker.check_model(str(path))
    return list(ReferenceEvaluator(str(path)).run(None, feed))
