"""Run records: a resumed run's duration is its whole training time; runs whose process
died are recorded by the window at once; the Train settings a project keeps."""

from __future__ import annotations

import os

import pytest


def test_a_resumed_run_reports_the_time_of_every_session(project):
    run_id = project.create_run("semantic", {"epochs": 4})
    project.update_run(run_id, status="running")
    project.update_run(run_id, status="stopped", duration_s=12.5)
    assert project.run(run_id).duration_s == 12.5
    project.update_run(run_id, status="running")  # resumed
    assert project.run(run_id).duration_s == 12.5  # while it trains: the time so far
    project.update_run(run_id, status="finished", duration_s=7.5)
    assert project.run(run_id).duration_s == 20.0
    project.update_run(run_id, duration_s=3.0)  # set outside a session: taken as it is
    assert project.run(run_id).duration_s == 3.0


def test_the_runs_of_a_dead_process_are_ended_at_once(project):
    mine = project.create_run("semantic", {})
    other = project.create_run("semantic", {})
    project.update_run(mine, status="running")  # pid: this process
    project.update_run(other, status="stopped")
    ids = project.end_runs_of_process(os.getpid(), "interrupted", "killed by signal 9")
    assert ids == [mine]
    run = project.run(mine)
    assert (run.status, run.error) == ("interrupted", "killed by signal 9")
    assert run.ended_at is not None
    assert project.run(other).status == "stopped"
    assert project.end_runs_of_process(os.getpid(), "interrupted", "again") == []
    with pytest.raises(ValueError):
        project.end_runs_of_process(os.getpid(), "running", "no")


def test_train_settings_are_kept_per_project(project, tmp_path):
    from studio.core.project import Project

    assert project.train_setting("mirror") is None
    project.set_train_setting("mirror", True)
    assert project.train_setting("mirror") is True
    other = Project.create(tmp_path / "other")
    try:
        assert other.train_setting("mirror", "unset") == "unset"
    finally:
        other.close()
    project.set_train_setting("mirror", None)
    assert project.train_setting("mirror") is None
