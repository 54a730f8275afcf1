"""Pieces of the Train workspace: failure advice, config diffs, the runner's modes."""

from __future__ import annotations

import errno

import pytest

from studio.core.errors import (
    DiskFullError,
    DivergedError,
    ImageMissingError,
    OutOfMemoryError,
    TrainingError,
)
from studio.gui.train.failures import explain_failure
from studio.gui.train.history import config_diff
from studio.gui.train.runner import TrainingRunner


def test_failures_say_what_to_do():
    disk = DiskFullError("The disk is full: the checkpoint of epoch 3 could not be written.")
    title, text = explain_failure(disk)
    assert title == "The disk is full" and "Free space" in text and "Resume" in text
    # as a child process reports a checkpoint write that failed on a full disk
    wrapped = TrainingError("Could not write the checkpoint last.pt: DiskFullError: ...")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    title, text = explain_failure(wrapped)
    assert title == "The disk is full" and "Free space" in text and "Resume" in text
    title, text = explain_failure(ImageMissingError("The image a.png is missing."))
    assert title == "An image cannot be read" and "put it back" in text
    title, _ = explain_failure(DivergedError("The loss became nan at epoch 1, step 2"))
    assert title == "Training diverged"
    title, _ = explain_failure(OutOfMemoryError("Out of GPU memory with batch size 8"))
    assert title == "Out of memory"
    title, text = explain_failure(KeyError("x"))
    assert "bug" in text


def test_config_diff_lists_changed_nested_options():
    a = {"optimizer": {"lr": 0.1, "name": "sgd"}, "epochs": 3, "augment": {"hflip": {}}}
    b = {"optimizer": {"lr": 0.01, "name": "sgd"}, "epochs": 3, "seed": 1}
    assert config_diff(a, b) == [("augment.hflip", {}, "(not set)"),
                                 ("optimizer.lr", 0.1, 0.01), ("seed", "(not set)", 1)]
    assert config_diff(a, a) == []


def test_runner_rejects_unknown_mode(qtbot):
    with pytest.raises(ValueError):
        TrainingRunner(mode="cluster")
