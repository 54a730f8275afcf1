"""Export a trained run's model to TorchScript or ONNX, checked against the eager model.

Beside the model file a `<name>.json` records what a consumer needs: task, class names,
input channels and size, normalisation and resize policy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from studio.core.errors import StudioError
from studio.core.fileio import atomic_path, atomic_write_text
from studio.ml.detection.export import export_detector
from studio.ml.tasks import DETECTION_TASKS

FORMATS = ("torchscript", "onnx")
ATOL = 1e-4


def _check(name: str, expected: torch.Tensor, got) -> None:
    got = torch.as_tensor(np.asarray(got))
    if got.shape != expected.shape or not torch.allclose(got.float(), expected.float(),
                                                         atol=ATOL, rtol=1e-3):
        diff = (got.float() - expected.float()).abs().max().item() if got.shape == \
            expected.shape else float("nan")
        raise StudioError(f"The {name} export does not reproduce the model's outputs "
                          f"(max difference {diff:.3g}); nothing was written.")


def export_model(project, run_id: int, fmt: str, out_path: str | os.PathLike,
                 which: str = "best") -> Path:
    """Write the run's model as `fmt` to `out_path` (atomically) and return the path.

    The export is run on a random input and must match the eager model (atol 1e-4).
    ONNX needs the `onnx` package; onnxruntime is used for the check when installed.
    """
    from studio.ml.predict import load_run_model

    if fmt not in FORMATS:
        raise StudioError(f"Unknown export format {fmt!r}; use torchscript or onnx.")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise StudioError("ONNX export needs the 'onnx' package: pip install onnx")
    model, meta = load_run_model(project, run_id, which, "cpu")
    model.eval()
    out = Path(out_path).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    size, channels = meta["image_size"], meta["channels"]
    detector = meta["task"] in DETECTION_TASKS
    if detector:
        with atomic_path(out) as tmp:
            export_detector(model, fmt, tmp, channels, size)
    else:
        gen = torch.Generator().manual_seed(0)
        example = torch.randn(1, channels, size, size, generator=gen)
        probe = torch.randn(2, channels, size, size, generator=gen)
        with torch.no_grad():
            expected = model(probe)
        with atomic_path(out) as tmp:
            if fmt == "torchscript":
                _torchscript(model, example, probe, expected, tmp)
            else:
                _onnx(model, example, probe, expected, tmp, meta["task"])
    info = {k: meta[k] for k in ("task", "class_names", "channels", "image_size",
                                 "resize_policy", "normalize")}
    info.update({"format": fmt, "run_id": run_id, "input": "float32 N x C x H x W, "
                 "(pixel/255 - mean) / std", "output": "logits"})
    if detector:
        info.update({"input": "TorchScript: a list of float32 C x H x W images; ONNX: one "
                     "float32 C x H x W image; (pixel/255 - mean) / std",
                     "output": "boxes (x1, y1, x2, y2), labels (1..K = class_names[label - "
                     "1]), scores" + (", masks (N x 1 x H x W probabilities)"
                                      if meta["task"] == "instance" else ""),
                     "detection": meta["config"]["detection"]})
    sidecar = out.with_suffix(".json")
    atomic_write_text(sidecar, json.dumps(info, indent=2))
    return out


def _torchscript(model, example, probe, expected, tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as exc:  # tracing failures come as many exception types
            raise StudioError(f"TorchScript export failed: {exc}") from exc
    with torch.no_grad():
        _check("TorchScript", expected, traced(probe))
    traced.save(str(tmp))


def _onnx(model, example, probe, expected, tmp: Path, task: str) -> None:
    dims = {0: "batch"} if task == "classification" else {0: "batch", 2: "height", 3: "width"}
    dynamo = importlib.util.find_spec("onnxscript") is not None
    kwargs = {"dynamic_axes": {"input": dims, "logits": {0: "batch"} if task ==
                               "classification" else dims}} if not dynamo else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"],
                              output_names=["logits"], dynamo=dynamo,
                              **({"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
                                 if dynamo else kwargs))
        except Exception as exc:  # the exporters raise many exception types
            raise StudioError(f"ONNX export failed: {exc}") from exc
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        _check("ONNX", expected, session.run(None, {"input": probe.numpy()})[0])
    else:  # onnx's own pure-NumPy reference runtime: slower, but needs nothing more
        import onnx
        from onnx.reference import ReferenceEvaluator

        onnx.checker.check_model(str(tmp))
        session = ReferenceEvaluator(str(tmp))
        _check("ONNX", expected, session.run(None, {"input": probe.numpy()})[0])
