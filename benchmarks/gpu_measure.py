"""Measuring helpers of the GPU readiness check (benchmarks/gpu.py): the plain PyTorch AMP
loop `fit` is compared with, NVML utilisation sampling, and the union of kernel intervals
for the profiler's busy fraction."""

from __future__ import annotations

import statistics
import threading
import time


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals (kernels on several streams
    count once)."""
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


class NvmlSampler:
    """GPU utilisation (NVML, through torch.cuda.utilization) sampled on a thread every
    0.1 s between start() and stop(); stop() gives the mean or None without NVML."""

    def __init__(self, device) -> None:
        import torch

        self.device = device
        self.samples: list[float] = []
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        try:
            torch.cuda.utilization(device)
            self.available = True
        except Exception:  # no pynvml / amdsmi: the profiler figure stands alone
            self.available = False

    def start(self) -> None:
        if self.available:
            self.thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        import torch

        while not self.done.wait(0.1):
            self.samples.append(torch.cuda.utilization(self.device) / 100)

    def stop(self) -> float | None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(5)
        return statistics.mean(self.samples) if self.samples else None


def plain_loop(project, cfg: dict, device) -> float:
    """The textbook AMP loop (autocast, GradScaler, loss.item() each step as in most
    scripts) on fit's own dataset and DataLoader, model and loss; images/s after the
    first step."""
    import torch

    from studio.ml.builders import build_loss, make_model
    from studio.ml.config import validate_config
    from studio.ml.datasets import build_run_data, make_loader

    cfg = validate_config(cfg, project)
    torch.manual_seed(cfg["seed"])
    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg["cpu_threads"]:
        torch.set_num_threads(cfg["cpu_threads"])
    try:
        data = build_run_data(project, cfg)
        loader = make_loader(data.train, cfg["batch_size"], train=True,
                             num_workers=cfg["num_workers"], device=device, seed=cfg["seed"])
        layout = torch.channels_last if cfg["channels_last"] else torch.contiguous_format
        model = make_model(cfg, len(data.class_ids), data.channels).to(device)
        model.to(memory_format=layout)
        loss_fn = build_loss(cfg, len(data.class_ids)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg["optimizer"]["lr"])
        amp = bool(cfg["amp"]) and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        start, images, running = None, 0, 0.0
        for _ in range(cfg["epochs"]):
            model.train()
            for x, y in loader:
                x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
                y = y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    loss = loss_fn(model(x).float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                running += loss.item()
                if start is None:
                    start = time.perf_counter()
                else:
                    images += x.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return images / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
