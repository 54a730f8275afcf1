"""Export a trained run's model to TorchScript or ONNX, checked against the eager model.

Beside the model file a `<name>.json` records what a consumer needs: task, class names,
input channels and size, normalisation and resize policy.

Both files are written atomically, and together: when either cannot be written (a full
disk, no permission) neither is left behind, and no temporary file either. TorchScript is
serialised in memory and written by Python, because torch's zip writer aborts the whole
process when the disk fills.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from studio.core.errors import ExportError, ValidationError
from studio.core.fileio import atomic_path, atomic_write_text, disk_full_error, is_disk_full
from studio.core.formats.staging import check_output_folder
from studio.ml.onnx_run import run_onnx
from studio.ml.tasks import task_of
from studio.ml.tasks.detection.export import export_detector

FORMATS = ("torchscript", "onnx")
ATOL = 1e-4


def _check(name: str, expected: torch.Tensor, got) -> None:
    got = torch.as_tensor(np.asarray(got))
    if got.shape != expected.shape or not torch.allclose(got.float(), expected.float(),
                                                         atol=ATOL, rtol=1e-3):
        diff = (got.float() - expected.float()).abs().max().item() if got.shape == \
            expected.shape else float("nan")
        raise ExportError(f"The {name} export does not reproduce the model's outputs "
                          f"(max difference {diff:.3g}); nothing was written. Export to the "
                          "other format, or report the model type.")


def export_model(project, run_id: int, fmt: str, out_path: str | os.PathLike,
                 which: str = "best") -> Path:
    """Write the run's model as `fmt` to `out_path` (atomically) and return the path.

    The export is run on a random input and must match the eager model (atol 1e-4).
    ONNX needs the `onnx` package; onnxruntime is used for the check when installed.
    """
    from studio.ml.predict import load_run_model

    if fmt not in FORMATS:
        raise ValidationError(f"Unknown export format {fmt!r}; use torchscript or onnx.")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ExportError("ONNX export needs the 'onnx' package: pip install onnx")
    model, meta = load_run_model(project, run_id, which, "cpu")
    model.eval()
    out = Path(out_path).expanduser().resolve()
    size, channels = meta["image_size"], meta["channels"]
    # a per-pixel instance model (studio.ml.models.unet_instances) exports its network;
    # the sidecar says how its maps split into objects
    split = model.split_info() if hasattr(model, "split_info") else None
    if split is not None:
        model = model.network()
    detector = task_of(meta["task"]).is_detection and split is None
    if not detector:
        gen = torch.Generator().manual_seed(0)
        example = torch.randn(1, channels, size, size, generator=gen)
        probe = torch.randn(2, channels, size, size, generator=gen)
        with torch.no_grad():
            expected = model(probe)
    info = {k: meta[k] for k in ("task", "class_names", "channels", "image_size",
                                 "resize_policy", "normalize")}
    info.update({"format": fmt, "run_id": run_id, "input": "float32 N x C x H x W, "
                 "(pixel/255 - mean) / std", "output": "logits"})
    if detector:
        info.update({"input": "TorchScript: a list of float32 C x H x W images; ONNX: one "
                     "float32 C x H x W image; (pixel/255 - mean) / std",
                     "output": "boxes (x1, y1, x2, y2), labels (1..K = class_names[label - "
                     "1]), scores" + (", masks (N x 1 x H x W probabilities)"
                                      if task_of(meta["task"]).has_masks else ""),
                     "detection": meta["config"]["detection"]})
    if split is not None:
        info.update(split, detection=meta["config"]["detection"])
    if out.is_dir():
        raise ExportError(f"Cannot write the model to {out}: it is a folder; give a file name "
                          f"(e.g. {out / ('model.onnx' if fmt == 'onnx' else 'model.pt')}).")
    check_output_folder(out.parent)
    sidecar = out.with_suffix(".json")
    had = {p: p.exists() for p in (out, sidecar)}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            if detector:
                export_detector(model, fmt, tmp, channels, size)
            elif fmt == "torchscript":
                _torchscript(model, example, probe, expected, tmp)
            else:
                _onnx(model, example, probe, expected, tmp, meta["task"])
        atomic_write_text(sidecar, json.dumps(info, indent=2))
    except OSError as exc:
        for path, existed in had.items():
            if not existed:  # a model without its description (or the reverse) is no use
                with contextlib.suppress(OSError):  # what could not be written is not there
                    path.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(out.parent, "export the model into") from exc
        raise ExportError(f"Cannot write the exported model to {out.parent}: "
                          f"{exc.strerror or exc}; choose another folder.") from exc
    return out


def _torchscript(model, example, probe, expected, tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as exc:  # tracing failures come as many exception types
            raise ExportError(f"TorchScript export failed: {exc}") from exc
    with torch.no_grad():
        _check("TorchScript", expected, traced(probe))
    tmp.write_bytes(traced.save_to_buffer())


def _onnx(model, example, probe, expected, tmp: Path, task: str) -> None:
    dims = {0: "batch"} if task_of(task).image_label else {0: "batch", 2: "height", 3: "width"}
    dynamo = importlib.util.find_spec("onnxscript") is not None
    kwargs = {"dynamic_axes": {"input": dims, "logits": {0: "batch"} if
                               task_of(task).image_label else dims}} if not dynamo else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"],
                              output_names=["logits"], dynamo=dynamo,
                              **({"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
                                 if dynamo else kwargs))
        except OSError:
            raise  # writing failed (a full disk): reported by export_model
        except Exception as exc:  # the exporters raise many exception types
            raise ExportError(f"ONNX export failed: {exc}") from exc
    _check("ONNX", expected, run_onnx(tmp, {"input": probe.numpy()})[0])
