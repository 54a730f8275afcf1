"""A child process of the lock holder opens the project beside it (training from the GUI)."""

from __future__ import annotations

import pytest

from studio.core.errors import ProjectError, ProjectLockedError
from studio.core.project import Project


def test_child_opens_beside_the_holder_and_writes(tmp_path):
    holder = Project.create(tmp_path / "p", name="p")
    try:
        with pytest.raises(ProjectLockedError):
            Project.open(tmp_path / "p")
        child = Project.open_for_child(tmp_path / "p")
        run_id = child.create_run("classification", {"epochs": 1})
        child.append_run_epoch(run_id, {"epoch": 1, "train_loss": 0.5})
        child.close()
        assert holder.run(run_id).history == [{"epoch": 1, "train_loss": 0.5}]
        clean = holder._query("SELECT value FROM meta WHERE key = 'clean_close'")[0][0]
        assert clean == "0"  # the child's close does not claim the holder closed cleanly
        with pytest.raises(ProjectLockedError):  # the holder still holds the lock
            Project.open(tmp_path / "p")
    finally:
        holder.close()


def test_child_needs_a_project(tmp_path):
    with pytest.raises(ProjectError):
        Project.open_for_child(tmp_path)
