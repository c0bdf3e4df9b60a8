"""Jobs run inline without Redis and on RQ workers with it; rerunning one is harmless."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import g

from marketplace import jobs
from marketplace.db import get_session
from tests.conftest import ROOT, make_test_app


def append_line(path: str, text: str) -> None:
    """A job: ids and strings in; proves it ran, and in its own app context."""
    assert "db_session" not in g
    with open(path, "a") as handle:
        handle.write(text + "\n")


def test_inline_jobs_run_at_once_in_their_own_app_context(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, REDIS_URL=None)
    marker = tmp_path / "marker"
    with app.test_request_context():
        get_session()  # the request has a session; the job must not see it
        assert jobs.enqueue(append_line, str(marker), "inline") is None
    assert marker.read_text() == "inline\n"


def test_rq_jobs_wait_for_a_worker(database_url, tmp_path, redis_url):
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url)
    marker = tmp_path / "marker"
    with app.app_context():
        job_id = jobs.enqueue(append_line, str(marker), "queued")
    assert job_id
    assert not marker.exists()
    from rq import SimpleWorker

    jobs.set_worker_app(app)
    SimpleWorker([jobs.queue(app)], connection=jobs.redis_connection(app)).work(burst=True)
    assert marker.read_text() == "queued\n"


def test_a_job_id_is_queued_once(database_url, tmp_path, redis_url):
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url)
    with app.app_context():
        first = jobs.enqueue(append_line, str(tmp_path / "m"), "a", job_id="derive-42")
        second = jobs.enqueue(append_line, str(tmp_path / "m"), "a", job_id="derive-42")
        assert first == second == "derive-42"
        assert jobs.queue(app).count == 1


def test_job_status_names_rqs_plain_status(database_url, tmp_path, redis_url):
    """ "queued", not "JobStatus.QUEUED": callers compare it with plain names."""
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url)
    with app.app_context():
        jobs.enqueue(append_line, str(tmp_path / "m"), "a", job_id="status-1")
        assert jobs.job_status("status-1") == "queued"
        state = jobs.job_state("status-1")
        assert state is not None
        assert state.status == "queued"


def test_marketplace_worker_command_runs_queued_jobs(database_url, tmp_path, redis_url):
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url)
    marker = tmp_path / "marker"
    with app.app_context():
        jobs.enqueue(append_line, str(marker), "from a worker process")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RQ_QUEUE": str(app.config["RQ_QUEUE"]),
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from marketplace.cli import main; main()", "worker", "--burst"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(marker).read_text() == "from a worker process\n"
