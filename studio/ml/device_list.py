"""The devices a run can use, described for a person choosing one."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceChoice:
    name: str  # the config's "device" value: "auto", "cpu", "cuda:0", "mps"
    label: str  # e.g. "cuda:0 NVIDIA H200 (130.2 of 139.8 GiB free)"


def list_devices() -> list[DeviceChoice]:
    """"auto", every CUDA GPU with its name and free memory, Apple MPS, the CPU."""
    out = [DeviceChoice("auto", "auto (the first GPU, else the CPU)")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
                memory = f" ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
            except RuntimeError:  # a busy or broken device still gets listed
                memory = ""
            out.append(DeviceChoice(f"cuda:{i}", f"cuda:{i} {name}{memory}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(DeviceChoice("mps", "mps (Apple GPU)"))
    cores = os.cpu_count() or 1
    out.append(DeviceChoice("cpu", f"cpu ({cores} cores, {torch.get_num_threads()} threads "
                                   "by default)"))
    return out
