"""TorchScript and ONNX export of Faster / Mask R-CNN models, checked against eager mode.

torchvision supports both for these models: TorchScript by scripting (the scripted model
takes a list of (C, H, W) images and returns ``(losses, detections)``), ONNX with opset
17 (RoIAlign's ``aligned`` mode needs opset >= 16) for one image of any size, whose
outputs are ``boxes``, ``labels``, ``scores`` (and ``masks``). The check runs both on a
probe image and compares the detections; anything else is refused with a clear error.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio.core.errors import ExportError
from studio.ml.onnx_run import run_onnx

ONNX_OPSET = 17
ATOL = 1e-3


def _probe(channels: int, size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(channels, size, size + size // 4, generator=gen)


def _compare(name: str, expected: dict, boxes, scores) -> None:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    want_boxes = expected["boxes"].double().numpy()
    want_scores = expected["scores"].double().numpy()
    same = len(scores) == len(want_scores) and np.allclose(
        np.sort(scores), np.sort(want_scores), atol=ATOL)
    if same and len(boxes):
        # near-equal scores may swap places: match each of the top boxes to its nearest
        top = want_boxes[:10]
        dist = np.abs(top[:, None, :] - boxes[None, :, :]).max(-1).min(1)
        same = bool((dist < 1e-2 * max(1.0, float(np.abs(top).max()))).all())
    if not same:
        raise ExportError(f"The {name} export does not reproduce the model's detections; "
                          "nothing was written.")


def export_detector(model: nn.Module, fmt: str, tmp: Path, channels: int, size: int) -> None:
    """Write ``model`` (eval mode, CPU) as ``fmt`` to ``tmp`` after checking it."""
    model.eval()
    probe = _probe(channels, max(32, int(size)))
    with torch.no_grad():
        expected = model([probe])[0]
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation and tuple-output notes
            try:
                scripted = torch.jit.script(model)
            except Exception as exc:  # scripting failures come as many exception types
                raise ExportError(f"TorchScript export of this detection model failed: "
                                  f"{exc}") from exc
        with torch.no_grad():
            got = scripted([probe])[1][0]
        _compare("TorchScript", expected, got["boxes"].numpy(), got["scores"].numpy())
        # in memory, then written by Python: torch's zip writer aborts the process on a full disk
        tmp.write_bytes(scripted.save_to_buffer())
        return
    if importlib.util.find_spec("onnx") is None:
        raise ExportError("ONNX export needs the 'onnx' package: pip install onnx")
    outputs = ["boxes", "labels", "scores"] + (["masks"] if hasattr(
        model.roi_heads, "mask_predictor") and model.roi_heads.mask_predictor is not None
        else [])
    axes = {"image": {1: "height", 2: "width"}, "boxes": {0: "n"}, "labels": {0: "n"},
            "scores": {0: "n"}, "masks": {0: "n", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, ([probe],), str(tmp), opset_version=ONNX_OPSET,
                              dynamo=False, input_names=["image"], output_names=outputs,
                              dynamic_axes={k: v for k, v in axes.items()
                                            if k == "image" or k in outputs})
        except OSError:
            raise  # writing failed (a full disk): the caller reports it
        except Exception as exc:  # the exporter raises many exception types
            raise ExportError(f"ONNX export of this detection model is not supported by "
                              f"torchvision here: {exc}") from exc
    got = run_onnx(tmp, {"image": probe.numpy()})
    _compare("ONNX", expected, got[0], got[2])
