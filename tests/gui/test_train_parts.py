"""Pieces of the Train workspace: failure advice, config diffs, errors mapped to fields."""

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
from studio.gui.train.form import ConfigForm, NumberEdit, parse_number
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


def test_engine_messages_find_their_field(qtbot):
    form = ConfigForm()
    for path in ("optimizer.lr", "image_size", "augment.rotation.degrees",
                 "model_options.width", "early_stopping.metric"):
        form.add(path, NumberEdit(), "tip")
    assert form.field_for_message("'optimizer.lr' must be a number, got 'x'.") == "optimizer.lr"
    assert form.field_for_message("Bad augmentation spec: augmentation 'rotation': 'degrees' "
                                  "must be two numbers") == "augment.rotation.degrees"
    assert form.field_for_message("Model 'unet' needs images of at least 32 px; "
                                  "'image_size' is 8.") == "image_size"
    assert form.field_for_message("simple_cnn: 'width' must be an integer 1..1024, got 0"
                                  ) == "model_options.width"
    assert form.field_for_message("The 'train' split has no images.") is None
    assert form.show_error("'optimizer.lr' must be a number") == "optimizer.lr"
    assert not form.fields["optimizer.lr"].error.isHidden()


def test_numbers_parse_or_stay_text_for_the_engine_to_name():
    assert parse_number("30") == 30 and parse_number("1e-3") == 1e-3
    assert parse_number("fast") == "fast"
    assert parse_number("", allow_none=True) is None


def test_runner_rejects_unknown_mode(qtbot):
    with pytest.raises(ValueError):
        TrainingRunner(mode="cluster")
