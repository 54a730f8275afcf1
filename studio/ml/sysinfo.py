"""What a bug report needs to know about this machine: versions and the GPU found.

Used by the About box, "Report a problem" and `studio --version`. No Qt import here: the
Qt version comes from the installed package's metadata, or from Qt itself when the GUI
already loaded it.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import torch

import studio


def _package_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def qt_version() -> str:
    """PySide6's version, and the Qt it runs when the GUI already loaded it."""
    binding = _package_version("PySide6-Essentials", "PySide6") or "not installed"
    core = sys.modules.get("PySide6.QtCore")
    if core is not None:
        return f"Qt {core.qVersion()}, PySide6 {binding}"
    return f"PySide6 {binding}"


def gpu_summary() -> list[str]:
    """One line per CUDA device (name, memory, compute capability), or why there is none."""
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            return ["none: this torch is a CPU-only build (install a CUDA build of torch "
                    "to train on an NVIDIA GPU)"]
        return [f"none found (torch built for CUDA {torch.version.cuda}; no usable NVIDIA "
                "GPU or driver)"]
    lines = []
    for i in range(torch.cuda.device_count()):
        try:
            props = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i} {props.name}, {props.total_memory / 2**30:.1f} GiB, "
                         f"compute capability {props.major}.{props.minor}")
        except RuntimeError as exc:  # a broken device is still worth naming
            lines.append(f"cuda:{i} unusable ({exc})")
    return lines


def system_info() -> dict[str, str]:
    """Versions of the studio, Python, Qt, torch, CUDA and the libraries, the OS and GPU."""
    mps = getattr(torch.backends, "mps", None)
    info = {
        "Vision Studio": studio.__version__,
        "Python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{sys.executable})",
        "Operating system": f"{platform.platform()} ({platform.machine()})",
        "Qt": qt_version(),
        "torch": torch.__version__,
        "torchvision": _package_version("torchvision") or "not installed",
        "CUDA (torch build)": torch.version.cuda or "none (CPU build)",
        "cuDNN": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available()
        else "none",
        "GPU": "; ".join(gpu_summary()),
        "Apple MPS": "available" if mps is not None and mps.is_available() else "no",
        "CPU cores": str(os.cpu_count()),
        "numpy": _package_version("numpy") or "not installed",
        "OpenCV": _package_version("opencv-contrib-python-headless", "opencv-python",
                                   "opencv-python-headless") or "not installed",
    }
    return info


def format_system_info(info: dict[str, str] | None = None) -> str:
    """`system_info()` as aligned "name: value" lines."""
    info = system_info() if info is None else info
    width = max(len(k) for k in info)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in info.items())
