"""The training child's optional summary report: kept with a finished run, a log line
(never a failure) when it cannot be made."""

from __future__ import annotations

import io
import json
import threading

from testutil import FAST_TRAINING, add_toy_classification

from studio.ml.evaluation import report_path, stored_report
from studio.ml.fit import fit
from studio.ml.fit_child import EventWriter, report

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


def test_a_config_error_crosses_the_process_boundary_with_its_field_path():
    from studio.core.errors import ConfigError, ImageMissingError
    from studio.ml.fit_child import describe_error

    told = describe_error(ConfigError("'optimizer.lr' must be a number", path="optimizer.lr"))
    assert told["type"] == "ConfigError" and told["path"] == "optimizer.lr"
    assert describe_error(ImageMissingError("gone", "/x.png"))["path"] is None  # a file
