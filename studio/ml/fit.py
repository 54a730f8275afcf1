"""The one training loop's entry: `fit(project, config, callbacks, stop, resume)`.

The CLI calls it, and so does the GUI's worker thread. `fit` validates the config (a bad one
never creates a run), reads the data, checks the model can be built with it, and only then
opens (or reopens) the run's record and hands the epochs to a
`studio.ml.session.TrainingSession`; however the run ends, the record says how: "finished"
or "stopped" (by `stop`, or Ctrl-C) with usable checkpoints, or "failed" with the reason,
listing the checkpoints that exist. See `studio.ml.loop` for the callbacks.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import torch

from studio.core.errors import ConfigError, StudioError, TrainingError
from studio.core.fileio import disk_full_error, is_disk_full
from studio.ml import checkpoints as ckpts
from studio.ml import distributed
from studio.ml.builders import check_buildable
from studio.ml.config import (
    RESUME_OVERRIDES,
    HardwareConfig,
    RunConfig,
    resume_overrides,
    validate_config,
)
from studio.ml.devices import describe_device, resolve_device, seed_everything
from studio.ml.loop import Callbacks
from studio.ml.session import FitResult, TrainingSession
from studio.ml.tasks.registry import TASK

__all__ = ["FitResult", "RESUME_OVERRIDES", "fit"]


def _resume_source(project, resume) -> tuple[Path, int | None]:
    if isinstance(resume, int) or (isinstance(resume, str) and resume.isdigit()):
        run_id = int(resume)
        return ckpts.run_checkpoint(project, run_id, "last"), run_id
    return Path(resume), None


def fit(project, config: dict | RunConfig | None, callbacks=None, stop=None,
        resume=None) -> FitResult:
    """Train a model on the project's labels as `config` says; see the module docstring.

    `config`: a JSON config (validated here, before anything else) or a `RunConfig`.
    `resume`: a run id (continues that run from its last.pt) or a checkpoint path (starts a
    new run from it); the checkpoint's config is used, with `config` overriding only
    epochs, device, num_workers, cpu_threads, early_stopping and val_every
    (`studio.ml.config.resume_overrides`); what else `config` says differently is kept as
    the checkpoint has it, and a log line says so.

    Started by torchrun with several processes, it trains with DistributedDataParallel
    (`studio.ml.distributed`); rank 0 alone writes the run.
    """
    device = (config.hardware.device if isinstance(config, RunConfig)
              else str((config or {}).get("device", HardwareConfig.device)))
    group = distributed.setup(device)
    try:
        return _fit(project, config, Callbacks(callbacks), stop, resume, group)
    finally:
        distributed.teardown(group)


def _fit(project, config: dict | RunConfig | None, cb: Callbacks, stop, resume,
         group: distributed.Group | None) -> FitResult:
    main = group is None or group.main
    ckpt, resume_run = None, None
    if resume is not None:
        path, resume_run = _resume_source(project, resume)
        ckpt = ckpts.load_checkpoint(path)
        new = config.to_dict() if isinstance(config, RunConfig) else config
        config, kept = resume_overrides(ckpt["config"], new or {})
        if kept and main:
            cb.log(f"Resuming with the checkpoint's settings: {'; '.join(kept)}.")
    run = validate_config(config, project)
    device = group.device if group is not None else resolve_device(run.hardware.device)
    known = {"class_ids": ckpt["class_ids"] if ckpt else None,
             "normalize": ckpt["normalize"] if ckpt else None,
             "channels": int(ckpt["config"]["channels"]) if ckpt else None}
    data = TASK[run.task].run_data(project, run, log=cb.log, **known)
    run.data.channels = data.channels
    run.data.normalize = dict(data.normalize)
    weights = run.loss.class_weights
    if weights is not None and len(weights) != len(data.class_ids):
        raise ConfigError(f"'loss.class_weights' has {len(weights)} values for "
                          f"{len(data.class_ids)} classes ({', '.join(data.class_names)}).",
                          path="loss.class_weights")
    check_buildable(run, len(data.class_ids), data.channels, pretrained=ckpt is None)
    cfg = run.to_dict()  # what the run's record keeps
    where = describe_device(device) + (f", {group.describe()}" if group is not None else "")
    history, run_id = [], None
    if resume_run is not None:
        run_id = resume_run
        record = project.run(run_id)
        history = [h for h in record.history if h.get("epoch", 0) <= int(ckpt["epoch"])]
        if main:
            project.update_run(run_id, status="running", history=history, error=None,
                               device=where, config=cfg)
    elif main:
        run_id = project.create_run(run.task, cfg)
        project.update_run(run_id, status="running", device=where)
    if group is not None:
        run_id = group.broadcast_int(run_id)
    # each rank its own augmentation stream; DDP gives every rank rank 0's initial weights
    rank = group.rank if group is not None else 0
    restore = seed_everything(run.training.seed + rank, run.training.deterministic)
    threads = torch.get_num_threads()
    if device.type == "cpu" and run.hardware.cpu_threads > 0:
        torch.set_num_threads(run.hardware.cpu_threads)
    session = None
    try:
        # the run folder is made here, inside the handling: a read-only or full disk ends
        # the run "failed" with the reason instead of leaving it "running"
        session = TrainingSession(project, run, data, device, run_id, cb, stop, ckpt, history,
                                  group)
        return session.run()
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        error = None if interrupted else _run_error(exc, project, run_id)
        if main:
            _record_end(project, run_id, session, "stopped" if interrupted else "failed",
                        error, cb)
        if interrupted or error is exc or not isinstance(exc, Exception):
            raise
        raise error from exc
    finally:
        torch.set_num_threads(threads)
        restore()


def _run_error(exc: BaseException, project, run_id: int) -> BaseException:
    """What a failed run says: our own errors as they are, a disk problem by name, any
    other exception as a TrainingError with its type."""
    if isinstance(exc, StudioError):
        return exc
    if isinstance(exc, OSError):
        folder = project.root / "runs"
        if is_disk_full(exc):
            return disk_full_error(folder, f"write run {run_id}'s checkpoints into")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return TrainingError(f"Cannot write to {folder} ({exc.strerror}): run {run_id} "
                                 "needs a writable runs folder. Fix its permissions and "
                                 "train again.")
    return TrainingError(f"Training failed: {type(exc).__name__}: {exc}")


def _record_end(project, run_id: int, session: TrainingSession | None, status: str,
                error: BaseException | None, cb: Callbacks) -> None:
    """Record a run that ended by an exception ("failed") or Ctrl-C ("stopped"), with
    the checkpoints that exist (the last good last.pt stays)."""
    if session is not None:
        session.end(status, error)
        return
    message = (str(error) or type(error).__name__) if error is not None else None
    project.update_run(run_id, status=status, error=message, ended_at=time.time())
    if cb.on_end is not None:
        cb.on_end({"run_id": run_id, "status": status, "error": message, "best": {}})
