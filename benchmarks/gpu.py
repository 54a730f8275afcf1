"""GPU readiness: the whole GPU path in one command, one row per check.

    python -m benchmarks gpu            (a CUDA machine: under 8 minutes on one GPU)

Checks, in order: CUDA is seen (name, memory, versions); the Train workspace's device
list; U-Net training at 512 px with AMP and channels_last through the project's own
`fit` (images/s, GPU busy fraction, peak memory); the same model and data through a plain
PyTorch AMP loop (fit / plain ratio); detection and instance training steps; prediction
on the GPU; export (TorchScript run on the GPU against the eager model, ONNX); and
`torchrun --nproc_per_node 1` with NCCL. Each row says ok or FAIL with what it measured;
the exit code is 1 when a check failed. Without CUDA it prints "no CUDA device" and exits 0.

GPU busy fraction: NVML's utilisation sampled during the measured epochs when pynvml is
installed, and the time the GPU spent in kernels (torch.profiler) over a few steady steps
of a separate short run, divided by the wall time of those steps.

Hidden options for checking the code paths on a machine without a GPU: `--device cpu`
runs every check on the CPU, `--tiny` shrinks images, models and epochs so it ends in
seconds. Figures from those modes say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.gpu_measure import NvmlSampler, plain_loop, union_length

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Profile:
    unet_images: int = 64
    unet_size: int = 512
    unet_samples: int = 8  # samples per image and epoch: enough steps to time
    unet_batch: int = 8
    unet_epochs: int = 3
    unet_options: dict | None = None  # None: the default semantic model's options
    det_images: int = 16
    det_size: int = 512
    det_batch: int = 4
    det_epochs: int = 2
    det_options: dict = field(default_factory=dict)
    repeats: int = 2  # fit / plain loop pairs
    workers: int = max(0, min(8, (os.cpu_count() or 1) - 2))
    cpu_threads: int = 0
    profiled_steps: int = 8
    predict_images: int = 8
    timeout_s: int = 300
    budget_s: float = 420.0  # checks not started by then are reported as not run


TINY = Profile(unet_images=4, unet_size=64, unet_samples=1, unet_batch=2, unet_epochs=2,
               unet_options={"depth": 2, "width": 8}, det_images=4, det_size=64, det_batch=2,
               det_epochs=1, det_options={"anchor_sizes": [[8], [16], [32], [64]],
                                          "min_size": 64, "max_size": 64},
               repeats=1, workers=0, cpu_threads=1, profiled_steps=2, predict_images=2,
               timeout_s=120)


@dataclass
class Row:
    check: str
    ok: bool
    figures: str


class Checks:
    """Runs the checks in order, printing each row as it ends."""

    def __init__(self, device: str, profile: Profile, tiny: bool, out=sys.stdout) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.p = profile
        self.tiny = tiny
        self.out = out
        self.rows: list[Row] = []
        self.state: dict = {}
        self.started = time.perf_counter()

    # --- plumbing --------------------------------------------------------------------
    def emit(self, check: str, ok: bool, figures: str) -> None:
        row = Row(check, ok, figures)
        self.rows.append(row)
        print(f"{'ok' if ok else 'FAIL':<5} {check:<46} {figures}", file=self.out, flush=True)

    def run_check(self, check: str, fn: Callable[[], tuple[bool, str]],
                  needs: str | None = None) -> None:
        if needs is not None and needs not in self.state:
            self.emit(check, False, f"not run: needs the {needs.replace('_', ' ')}, which failed")
            return
        if time.perf_counter() - self.started > self.p.budget_s:
            self.emit(check, False, f"not run: the checks took over {self.p.budget_s:.0f} s "
                      "already (the whole must stay under 8 minutes)")
            return
        start = time.perf_counter()
        try:
            ok, figures = fn()
        except Exception as exc:  # a failed check is a row; the others still run
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            ok, figures = False, f"{type(exc).__name__}: {first}"
        self.emit(check, ok, f"{figures}  [{time.perf_counter() - start:.1f} s]")

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def peak_reset(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> str:
        if self.device.type != "cuda":
            return "peak memory n/a on cpu"
        return f"peak {self.torch.cuda.max_memory_allocated(self.device) / 2**30:.2f} GiB"

    # --- the checks --------------------------------------------------------------------
    def all(self) -> list[Row]:
        folder = Path(tempfile.mkdtemp(prefix="studio-gpu-check-"))
        try:
            self.run_check("CUDA device", self.check_cuda)
            self.run_check("Train workspace device list", self.check_device_list)
            size = self.p.unet_size
            self.run_check(f"U-Net fit {size} px, AMP, channels_last",
                           lambda: self.check_unet(folder))
            self.run_check("fit / plain torch loop (same model and data)", self.check_plain,
                           needs="unet_run")
            self.run_check("detection training steps",
                           lambda: self.check_detector(folder, "detection"))
            self.run_check("instance training steps",
                           lambda: self.check_detector(folder, "instance"))
            self.run_check("prediction on the device", self.check_predict, needs="unet_run")
            self.run_check("export (TorchScript on the device, ONNX)",
                           lambda: self.check_export(folder), needs="unet_run")
            self.run_check("torchrun --nproc_per_node 1", self.check_torchrun)
        finally:
            for project in self.state.get("projects", []):
                project.close()
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        return self.rows

    def check_cuda(self) -> tuple[bool, str]:
        torch = self.torch
        versions = f"torch {torch.__version__}"
        if self.device.type != "cuda":
            return True, f"cpu mode (--device cpu), no CUDA checked; {versions}"
        index = self.device.index or 0
        props = torch.cuda.get_device_properties(index)
        x = torch.randn(1024, 1024, device=self.device)
        ok = bool(torch.isfinite(x @ x).all())
        cudnn = torch.backends.cudnn.version()
        return ok, (f"{props.name}, {props.total_memory / 2**30:.1f} GiB, capability "
                    f"{props.major}.{props.minor}, {torch.cuda.device_count()} device(s); "
                    f"{versions}, CUDA {torch.version.cuda}, cuDNN {cudnn}")

    def check_device_list(self) -> tuple[bool, str]:
        from studio.ml.device_list import list_devices

        choices = list_devices()
        names = [c.name for c in choices]
        ok = "auto" in names and "cpu" in names
        if self.device.type == "cuda":
            ok = ok and any(n.startswith("cuda:") for n in names)
        return ok, "; ".join(c.label for c in choices)

    def unet_config(self) -> dict:
        p = self.p
        cfg = {
            "task": "semantic", "image_size": p.unet_size, "batch_size": p.unet_batch,
            "epochs": p.unet_epochs, "samples_per_image": p.unet_samples, "amp": True,
            "channels_last": True, "device": str(self.device), "num_workers": p.workers,
            "cpu_threads": p.cpu_threads, "seed": 0,
            "splits": {"train": "train", "val": None},
            "early_stopping": {"enabled": False},
            "scheduler": {"name": "none", "warmup_epochs": 0},
            # augmentations that cost CPU time per image would measure the data loader
            "augment": {op: {"enabled": False} for op in ("elastic", "brightness", "contrast")},
        }
        if p.unet_options is not None:
            cfg["model_options"] = dict(p.unet_options)
        return cfg

    def timed_fit(self, project, cfg: dict, sampler: Callable | None = None):
        """fit once; (images/s after the first step, fit result, NVML busy or None)."""
        from studio.ml.fit import fit

        marks: dict = {"images": 0}

        def on_batch(_info: dict) -> None:
            if "start" not in marks:
                marks["start"] = time.perf_counter()
                if sampler is not None:
                    sampler.start()
            else:
                marks["images"] += cfg["batch_size"]

        def on_end(_summary: dict) -> None:
            self.sync()
            marks["end"] = time.perf_counter()

        try:
            result = fit(project, cfg, callbacks={"on_batch": on_batch, "on_end": on_end})
        finally:
            busy = sampler.stop() if sampler is not None else None
        if result.status != "finished":
            raise RuntimeError(f"the run ended {result.status}")
        return marks["images"] / (marks["end"] - marks["start"]), result, busy

    def check_unet(self, folder: Path) -> tuple[bool, str]:
        from benchmarks.gpu_data import blob_project

        p = self.p
        project = blob_project(folder / "unet", p.unet_images, p.unet_size)
        self.state.setdefault("projects", []).append(project)
        self.state["unet_project"] = project
        cfg = self.unet_config()
        self.peak_reset()
        sampler = NvmlSampler(self.device) if self.device.type == "cuda" else None
        rate, result, nvml = self.timed_fit(project, cfg, sampler)
        self.state["unet_run"] = result.run_id
        losses = [h["train_loss"] for h in project.run(result.run_id).history]
        parts = [f"{rate:.1f} img/s", self.peak(),
                 f"loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} epochs"]
        if self.device.type == "cuda":
            parts.append("busy " + (f"{nvml:.0%} (NVML)" if nvml is not None
                                    else "n/a by NVML (pynvml not installed)"))
            parts.append(self.kernel_busy(project, cfg))
        else:
            parts.append("GPU busy n/a on cpu")
        finite = all(v == v for v in losses)  # NaN != NaN
        return finite, ", ".join(parts)

    def kernel_busy(self, project, cfg: dict) -> str:
        """Time in CUDA kernels / wall time over a few steady steps of a short fit."""
        torch = self.torch
        from torch.profiler import ProfilerActivity, profile, schedule

        from studio.ml.fit import fit

        wait, warm, active = 1, 2, self.p.profiled_steps
        marks: dict = {"calls": 0}
        short = {**cfg, "epochs": 1,
                 "samples_per_image": max(1, -(-(wait + warm + active + 1) * cfg["batch_size"]
                                               // self.p.unet_images))}
        try:
            with profile(activities=[ProfilerActivity.CUDA],
                         schedule=schedule(wait=wait, warmup=warm, active=active, repeat=1)
                         ) as prof:
                def on_batch(_info: dict) -> None:
                    marks["calls"] += 1
                    if marks["calls"] in (wait + warm, wait + warm + active):
                        torch.cuda.synchronize(self.device)
                        marks["t0" if marks["calls"] == wait + warm else "t1"] = \
                            time.perf_counter()
                    prof.step()

                fit(project, short, callbacks={"on_batch": on_batch})
            if "t1" not in marks:
                return "kernel busy n/a (too few steps)"
            busy_us = union_length([(e.time_range.start, e.time_range.end)
                                    for e in prof.events()
                                    if getattr(e.device_type, "name", "") == "CUDA"])
            wall_us = (marks["t1"] - marks["t0"]) * 1e6
            return f"in kernels {busy_us / wall_us:.0%} of {active} steps (profiler)"
        except Exception as exc:  # the figure is missing, the check itself still stands
            return f"kernel busy n/a ({type(exc).__name__}: {str(exc)[:80]})"

    def check_plain(self) -> tuple[bool, str]:
        project = self.state["unet_project"]
        cfg = self.unet_config()
        fits, plains = [], []
        for i in range(self.p.repeats):  # pairs, alternating which goes first
            if i % 2:
                fits.append(self.timed_fit(project, cfg)[0])
                plains.append(plain_loop(project, cfg, self.device))
            else:
                plains.append(plain_loop(project, cfg, self.device))
                fits.append(self.timed_fit(project, cfg)[0])
        fit_rate, plain_rate = statistics.median(fits), statistics.median(plains)
        ratio = fit_rate / plain_rate
        verdict = "" if ratio >= 0.97 else ", below the target"
        return True, (f"fit {fit_rate:.1f} img/s, plain {plain_rate:.1f} img/s, ratio "
                      f"{ratio:.3f} (target >= 0.97{verdict}; medians of {len(fits)} pairs)")

    def detector_config(self, task: str) -> dict:
        from studio.ml.config import default_config, recommended_variant

        p = self.p
        cfg = default_config(task, recommended_variant(str(self.device)))
        cfg.update(device=str(self.device), epochs=p.det_epochs, batch_size=p.det_batch,
                   samples_per_image=1, num_workers=p.workers, cpu_threads=p.cpu_threads,
                   splits={"train": "train", "val": None}, pretrained=None,
                   early_stopping={**cfg["early_stopping"], "enabled": False})
        cfg["scheduler"]["warmup_epochs"] = 0
        if cfg["resize_policy"] == "crop":
            cfg["image_size"] = min(cfg["image_size"], p.det_size)
        if p.det_options:
            cfg["model_options"] = {**cfg["model_options"], **p.det_options}
        return cfg

    def check_detector(self, folder: Path, task: str) -> tuple[bool, str]:
        from benchmarks.gpu_data import objects_project

        p = self.p
        kind = "box" if task == "detection" else "mask"
        project = objects_project(folder / task, p.det_images, p.det_size, kind)
        self.state.setdefault("projects", []).append(project)
        cfg = self.detector_config(task)
        self.peak_reset()
        rate, result, _ = self.timed_fit(project, cfg)
        self.state[f"{task}_run"] = (project, result.run_id)
        losses = [h["train_loss"] for h in project.run(result.run_id).history]
        finite = all(v == v for v in losses)
        return finite, (f"{cfg['model']}: {rate:.1f} img/s after the first step, "
                        f"{self.peak()}, loss {losses[-1]:.3f}")

    def check_predict(self) -> tuple[bool, str]:
        from studio.ml.predict import predict

        project, run_id = self.state["unet_project"], self.state["unet_run"]
        ids = project.image_ids()[:self.p.predict_images]
        predict(project, run_id, ids[:1], device=str(self.device))  # warm-up
        self.sync()
        start = time.perf_counter()
        results = predict(project, run_id, ids, device=str(self.device))
        self.sync()
        seconds = (time.perf_counter() - start) / len(ids)
        shapes_ok = all(r.label_map is not None and r.label_map.shape ==
                        (project.image(i).height, project.image(i).width)
                        for r, i in zip(results, ids, strict=True))
        parts = [f"U-Net {1000 * seconds:.0f} ms/image ({len(ids)} images "
                 f"{self.p.unet_size} px)"]
        if "detection_run" in self.state:
            det_project, det_run = self.state["detection_run"]
            det_ids = det_project.image_ids()[:self.p.predict_images]
            start = time.perf_counter()
            detections = predict(det_project, det_run, det_ids, device=str(self.device))
            self.sync()
            per = (time.perf_counter() - start) / len(det_ids)
            parts.append(f"detector {1000 * per:.0f} ms/image, "
                         f"{sum(len(d.scores) for d in detections)} objects")
        return shapes_ok, "; ".join(parts)

    def check_export(self, folder: Path) -> tuple[bool, str]:
        import importlib.util

        torch = self.torch
        from studio.ml.export import export_model
        from studio.ml.predict import load_run_model

        project, run_id = self.state["unet_project"], self.state["unet_run"]
        path = export_model(project, run_id, "torchscript", folder / "export" / "unet.pt")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit.load's deprecation notice
            scripted = torch.jit.load(str(path), map_location=self.device)
        model, meta = load_run_model(project, run_id, "best", self.device)
        model.eval()
        size = meta["image_size"]
        x = torch.randn(2, meta["channels"], size, size, device=self.device)
        # full float32 on both sides: TF32 kernels chosen differently would differ by 1e-3
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.no_grad():
                eager, traced = model(x), scripted(x)
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        diff = float((eager - traced).abs().max())
        scale = float(eager.abs().max()) or 1.0
        ok = diff <= 1e-3 * max(1.0, scale)
        parts = [f"TorchScript on {self.device.type}: max |diff| {diff:.2e} (logits up to "
                 f"{scale:.2f})"]
        if importlib.util.find_spec("onnx") is not None:
            onnx_path = export_model(project, run_id, "onnx", folder / "export" / "unet.onnx")
            checked = ("checked by onnxruntime" if importlib.util.find_spec("onnxruntime")
                       else "written, not run (no onnxruntime)")
            parts.append(f"ONNX {onnx_path.stat().st_size / 2**20:.1f} MiB {checked}")
        else:
            parts.append("ONNX not checked (no onnx package)")
        return ok, "; ".join(parts)

    def check_torchrun(self) -> tuple[bool, str]:
        device = "cuda" if self.device.type == "cuda" else "cpu"
        env = {k: v for k, v in os.environ.items()
               if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        if self.device.type == "cuda" and self.device.index is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.device.index)
        out = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc_per_node", "1", "-m", "benchmarks.gpu_ddp", "--device", device],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=self.p.timeout_s)
        lines = [line for line in out.stdout.splitlines() if line.startswith("GPU_DDP ")]
        if out.returncode != 0 or not lines:
            tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
            return False, f"exit code {out.returncode}: {' | '.join(tail)[:300]}"
        info = json.loads(lines[-1][len("GPU_DDP "):])
        nccl = f", NCCL {info['nccl_version']}" if info.get("nccl_version") else ""
        return (info["weights_agree"] and (device == "cpu" or info["backend"] == "nccl"),
                f"{info['backend']}{nccl} on {info['device']}, {info['steps']} DDP steps, "
                f"collectives ok, weights agree: {info['weights_agree']}, "
                f"{info['seconds']:.1f} s in the worker")


def main(argv: list[str] | None = None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks gpu",
                                     description="Check the GPU path: one row per check.")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda or 'none'}): nothing to check", file=out, flush=True)
        return 0
    profile = TINY if args.tiny else Profile()
    print(f"GPU readiness ({args.device}{', tiny' if args.tiny else ''}): one row per check",
          file=out, flush=True)
    start = time.perf_counter()
    rows = Checks(args.device, profile, args.tiny, out).all()
    failed = [r.check for r in rows if not r.ok]
    print(f"{len(rows)} checks, {len(rows) - len(failed)} ok, {len(failed)} failed"
          f"{': ' + ', '.join(failed) if failed else ''} ({time.perf_counter() - start:.0f} s)",
          file=out, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
