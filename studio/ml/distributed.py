"""Training on several processes with torch's own DistributedDataParallel.

`studio-cli train` started by `torchrun --nproc_per_node N` (and `--nnodes`, a rendezvous
endpoint for several machines) finds RANK / WORLD_SIZE / LOCAL_RANK in its environment;
`setup` then joins the process group: NCCL on GPUs (one GPU per process, chosen by
LOCAL_RANK), gloo on CPUs. Rank 0 is the only one that writes: the run record, the log,
the checkpoints. The other ranks read the project without taking its lock.

What the ranks share:
- each rank trains on its own share of every epoch (DistributedSampler, reshuffled by
  `set_epoch`); DDP averages the gradients, so the weights stay identical;
- validation: each rank evaluates every world_size-th image and the metric meters and
  losses are merged across ranks, so every rank takes the same early-stopping decision;
- a stop asked for on any rank (rank 0's callbacks in practice) stops every rank at the
  same step;
- before validation and at the end, every rank takes rank 0's BatchNorm statistics;
- at the end, the ranks compare a checksum of their weights: ranks that diverged fail
  the run instead of saving one rank's weights as if they were everyone's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Subset

from studio.core.errors import TrainingError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun set them; (0, 1, 0) when not under it."""
    try:
        rank = int(os.environ.get("RANK", 0))
        world = int(os.environ.get("WORLD_SIZE", 1))
        local = int(os.environ.get("LOCAL_RANK", 0))
    except ValueError as exc:
        raise TrainingError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({exc}); start "
                            "distributed training with torchrun.") from exc
    return rank, world, local


def is_secondary_rank() -> bool:
    """True in every process of a distributed run but rank 0 (which alone writes)."""
    return world_from_env()[0] > 0


@dataclass
class Group:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.backend})"

    # --- collectives ---------------------------------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is True on any rank."""
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, value: float) -> float:
        """The mean of `value` over every rank."""
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def broadcast_int(self, value: int | None) -> int:
        """Rank 0's `value` on every rank."""
        t = torch.tensor([int(value or 0)], dtype=torch.int64, device=self.device)
        torch_dist.broadcast(t, src=0)
        return int(t.item())

    def merged(self, meter, total: float, count: int):
        """(meter, total, count) summed over every rank (meters implement `merge`)."""
        gathered: list = [None] * self.world_size
        torch_dist.all_gather_object(gathered, meter)
        first = gathered[0]
        for other in gathered[1:]:
            first.merge(other)
        sums = torch.tensor([float(total), float(count)], dtype=torch.float64,
                            device=self.device)
        torch_dist.all_reduce(sums)
        return first, float(sums[0]), int(sums[1])

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP sends them at
        the start of each training forward, so after the last step each rank holds its
        own; validation and the final weights use rank 0's, as the checkpoint does."""
        for buffer in model.buffers():
            torch_dist.broadcast(buffer.data, src=0)

    def weights_agree(self, model: nn.Module) -> tuple[bool, list[float]]:
        """Whether every rank holds the same weights (by a checksum), and the checksums."""
        local = weights_checksum(model)
        gathered: list = [None] * self.world_size
        torch_dist.all_gather_object(gathered, local)
        return all(c == gathered[0] for c in gathered), [float(c) for c in gathered]

    # --- data ------------------------------------------------------------------------------
    def train_sampler(self, dataset: Dataset, seed: int) -> DistributedSampler:
        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                  shuffle=True, seed=int(seed), drop_last=False)

    def shard(self, dataset: Dataset) -> Dataset:
        """Every world_size-th item from this rank's (no padding: validation counts each
        image once)."""
        return Subset(dataset, list(range(self.rank, len(dataset), self.world_size)))

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as DDP trains it (gradients averaged over ranks)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def weights_checksum(model: nn.Module) -> float:
    """A float64 checksum of a model's parameters and buffers (position-weighted so that
    swapped values change it)."""
    total = torch.zeros((), dtype=torch.float64)
    for i, t in enumerate(model.state_dict().values()):
        if not t.dtype.is_complex:
            v = t.detach().to("cpu", torch.float64).flatten()
            if v.numel():
                weights = torch.arange(1, v.numel() + 1, dtype=torch.float64)
                total += (i + 1) * (v * weights.remainder(97).add(1)).sum()
    return float(total)


def setup(device_setting: str) -> Group | None:
    """Join the process group when started by torchrun with WORLD_SIZE > 1; else None.

    NCCL and one GPU per process (by LOCAL_RANK) when the config's device allows CUDA and
    it is there; gloo on the CPU otherwise.
    """
    rank, world, local = world_from_env()
    if world <= 1:
        return None
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise TrainingError("WORLD_SIZE is set but MASTER_ADDR / MASTER_PORT are not: start "
                            "distributed training with torchrun (see the README).")
    use_cuda = torch.cuda.is_available() and device_setting in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend, rank=rank, world_size=world,
                                      timeout=timedelta(minutes=30))
    return Group(rank, world, local, backend, device)


def teardown(group: Group | None) -> None:
    if group is not None and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
