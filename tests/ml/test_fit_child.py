"""The training child: its optional summary report (kept with a finished run, a log line,
never a failure, when it cannot be made), and a parent that dies under it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from testutil import FAST_TRAINING, add_toy_classification

from studio.ml.evaluation import report_path, stored_report
from studio.ml.fit import fit
from studio.ml.fit_child import PARENT_GONE, EventWriter, report

TINY = {"task": "classification", "epochs": 1, "batch_size": 4, "image_size": 16,
        "cpu_threads": 1, "model_options": {"width": 8, "fc": [16]}, **FAST_TRAINING}


def _events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_report_is_kept_with_the_run_or_said_to_be_missing(project, tmp_path,
                                                           torch_one_thread):
    add_toy_classification(project, tmp_path / "img", ["train"] * 8 + ["val"] * 4)
    run_id = fit(project, TINY).run_id
    out = io.StringIO()
    report(project, run_id, "val", "cpu", EventWriter(out), threading.Event())
    assert report_path(project, run_id).is_file()
    assert stored_report(project, run_id)["images"] == 4
    report(project, run_id, "test", "cpu", EventWriter(out), threading.Event())
    logs = [e["data"] for e in _events(out) if e["kind"] == "log"]
    assert any(line.startswith("No 'test' report:") for line in logs), logs
    assert not any(e["kind"] == "error" for e in _events(out))


def _start_child(project, config: dict) -> subprocess.Popen:
    """The training child as the window starts it, with its pipes in this test's hands (in
    a process group of its own, so a hung one is killed with its DataLoader workers)."""
    import studio

    root = str(Path(studio.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    child = subprocess.Popen([sys.executable, "-m", "studio.ml.fit_child"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env, text=True,
                             start_new_session=True)
    job = {"project": str(project.root), "config": config, "resume": None, "nice": 0,
           "report": None}
    child.stdin.write(json.dumps(job) + "\n")
    child.stdin.flush()
    return child


def _first_batch(child: subprocess.Popen) -> None:
    for line in child.stdout:
        if json.loads(line)["kind"] == "batch":
            return
    raise AssertionError("the child ended before its first batch")


def test_a_parent_that_dies_leaves_its_run_interrupted(project, tmp_path):
    """The window was killed while its child trained: both pipes close under the child.
    The run ends "interrupted" (resumable), not "failed: BrokenPipeError"."""
    add_toy_classification(project, tmp_path / "img", ["train"] * 8 + ["val"] * 4)
    child = _start_child(project, {**TINY, "epochs": 500})
    try:
        _first_batch(child)
        child.stdout.close()  # what the parent's death does to the child's pipes
        child.stdin.close()
        assert child.wait(120) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    run = project.runs()[-1]
    assert run.status == "interrupted", (run.status, run.error)
    assert run.error == PARENT_GONE and "BrokenPipe" not in run.error
    assert run.checkpoints.get("last")  # resumable from where it stopped


def test_events_to_a_reader_that_is_gone_are_dropped():
    gone = []

    class Broken(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    writer = EventWriter(Broken(), on_broken=lambda: gone.append(1))
    writer.on_batch({"epoch": 1})  # no exception reaches the training loop
    writer.on_log("still here")
    assert writer.broken and gone


def test_a_config_error_crosses_the_process_boundary_with_its_field_path():
    from studio.core.errors import ConfigError, ImageMissingError
    from studio.ml.fit_child import describe_error

    told = describe_error(ConfigError("'optimizer.lr' must be a number", path="optimizer.lr"))
    assert told["type"] == "ConfigError" and told["path"] == "optimizer.lr"
    assert describe_error(ImageMissingError("gone", "/x.png"))["path"] is None  # a file


def test_a_child_with_a_dataloader_worker_finishes(project, tmp_path):
    """num_workers >= 1: the worker forked while the command watcher blocked in a read of
    stdin closed stdin on start and waited forever for that read's lock; the run hung
    before its first batch. A hang fails here (a timeout), it does not block the suite."""
    import signal

    add_toy_classification(project, tmp_path / "img", ["train"] * 8 + ["val"] * 4)
    child = _start_child(project, {**TINY, "epochs": 2, "num_workers": 1})
    events: list[dict] = []

    def read() -> None:
        for line in child.stdout:
            events.append(json.loads(line))
            if events[-1]["kind"] in ("end", "error"):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(180)
    try:
        assert not reader.is_alive(), f"the child hung: {[e['kind'] for e in events]}"
        child.stdin.close()  # the parent lets go once the run has ended
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        reader.join(10)
        child.stdout.close()
    kinds = [e["kind"] for e in events]
    assert kinds.count("batch") >= 2 and kinds.count("epoch") == 2, kinds
    assert events[-1]["kind"] == "end" and events[-1]["data"]["status"] == "finished"
    assert project.runs()[-1].status == "finished"


def test_the_cli_trains_with_a_dataloader_worker(project, tmp_path):
    """`studio-cli train` with num_workers 1 finishes too (a hang fails on the timeout)."""
    add_toy_classification(project, tmp_path / "img", ["train"] * 8 + ["val"] * 4)
    root = project.root
    project.close()  # the command line opens it
    config = tmp_path / "run.json"
    config.write_text(json.dumps({**TINY, "num_workers": 1}), encoding="utf-8")
    import studio

    src = str(Path(studio.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "studio.cli", "train", str(root), "--config",
                           str(config)], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.PIPE, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "finished" in done.stdout and done.stdout.strip().splitlines()[-1] == "1"
