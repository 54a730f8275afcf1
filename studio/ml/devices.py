"""Choosing the compute device, seeding and deterministic mode."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch

from studio.core.errors import ConfigError
from studio.ml.config import RunConfig


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then the CPU; explicit names are checked."""
    if isinstance(name, torch.device):
        return name
    name = str(name or "auto")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"Device {name!r} asked for, but CUDA is not available on this "
                              "machine; use 'cpu' or 'auto'.")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"Device {name!r} does not exist: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s).")
        return device
    if name == "mps":
        if not has_mps:
            raise ConfigError("Device 'mps' asked for, but Apple MPS is not available; "
                              "use 'cpu' or 'auto'.")
        return torch.device("mps")
    raise ConfigError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.")


def describe_device(device: torch.device) -> str:
    """A short human label, e.g. "cuda:0 (NVIDIA H100)" or "cpu (2 threads)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def memory_format(cfg: RunConfig, device: torch.device) -> torch.memory_format:
    """The layout a run's model and batches use on `device`: channels_last when the config
    asks for it on CUDA or the CPU (oneDNN runs small U-Nets about 2x faster in NHWC),
    else the plain contiguous layout. Training and prediction both follow this."""
    if cfg.hardware.channels_last and device.type in ("cuda", "cpu"):
        return torch.channels_last
    return torch.contiguous_format


def cpu_computes_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where oneDNN's
    bfloat16 convolutions beat float32 ones; elsewhere they are emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def autocast_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The dtype a run's training forward pass is autocast to, None for float32: with
    config "amp", `mixed_precision` of its model on `device` (the instance U-Net's steps
    took 0.34 s against 0.69 s in float32 on a CPU here, with channels_last)."""
    return mixed_precision(cfg.model.name, device.type) if cfg.hardware.amp else None


def mixed_precision(model: str, device_type: str) -> torch.dtype | None:
    """The dtype config "amp" autocasts `model`'s training to on a device of this type
    ("cuda", "cpu", "mps"): float16 on CUDA; bfloat16 on a CPU that computes it natively,
    for a model measured to train as well so (`ModelSpec.cpu_bf16`); else None."""
    from studio.ml.models.registry import MODELS

    if device_type == "cuda":
        return torch.float16
    spec = MODELS.get(model)
    if device_type == "cpu" and spec is not None and spec.cpu_bf16 and cpu_computes_bf16():
        return torch.bfloat16
    return None


def amp_dtype_name(model: str, device_type: str) -> str | None:
    """`mixed_precision` by name ("float16", "bfloat16"; None: not used), for the GUI."""
    dtype = mixed_precision(model, device_type)
    return None if dtype is None else str(dtype).removeprefix("torch.")


def seed_everything(seed: int, deterministic: bool = False) -> Callable[[], None]:
    """Seed Python, NumPy and torch; in deterministic mode make torch pick deterministic
    kernels (warning where none exists). Returns a function restoring the global flags."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True

    def restore() -> None:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic = previous[2]
        torch.backends.cudnn.benchmark = previous[3]

    return restore
