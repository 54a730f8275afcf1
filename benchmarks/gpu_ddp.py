"""The torchrun leg of the GPU readiness check: one process per GPU joins a process group
(NCCL on CUDA, gloo on the CPU) and drives the project's collectives
(`studio.ml.distributed.Group`) and a DistributedDataParallel model through a few steps.

    python -m torch.distributed.run --standalone --nproc_per_node 1 \
        -m benchmarks.gpu_ddp --device cuda

`studio.ml.distributed.setup` joins a group only when WORLD_SIZE > 1 (a single process
trains without DDP), so with one process this script joins the group itself, with the
same backend choice, and then uses the project's Group for everything else. Rank 0
prints one JSON line starting with "GPU_DDP " for the parent check to read.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import nn

from studio.ml.distributed import Group, world_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    rank, world, local = world_from_env()
    if args.device == "cuda":
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    start = time.perf_counter()
    torch_dist.init_process_group(backend, rank=rank, world_size=world,
                                  timeout=timedelta(minutes=5))
    try:
        group = Group(rank, world, local, backend, device)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).to(device)
        ddp = group.wrap(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        losses = []
        for _ in range(5):
            x = torch.randn(4, 3, 32, 32, device=device)
            y = torch.randint(0, 2, (4,), device=device)
            loss = nn.functional.cross_entropy(ddp(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
        group.sync_buffers(model)
        agree, _sums = group.weights_agree(model)
        result = {
            "backend": backend, "world_size": world, "device": str(device),
            "nccl_version": ".".join(map(str, torch.cuda.nccl.version()))
            if backend == "nccl" else None,
            "mean_of_rank": group.mean(float(rank)), "any": group.any(rank == 0),
            "broadcast": group.broadcast_int(42 if rank == 0 else 0),
            "weights_agree": agree, "steps": len(losses),
            "seconds": time.perf_counter() - start,
        }
    finally:
        torch_dist.destroy_process_group()
    if rank == 0:
        print("GPU_DDP " + json.dumps(result), flush=True)
    ok = (result["any"] and result["broadcast"] == 42 and agree
          and abs(result["mean_of_rank"] - (world - 1) / 2) < 1e-9)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
