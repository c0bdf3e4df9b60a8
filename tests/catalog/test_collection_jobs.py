"""Add-by-query jobs: their status follows RQ's, they can be retried, two at once both finish,
and a failure never shows a user SQL, parameters or a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from marketplace import jobs
from marketplace.catalog import services
from marketplace.catalog.models import CollectionItem, CollectionJob, JobStatus
from tests.catalog.test_search import make_stock
from tests.factories import make_api_token, make_buyer


@pytest.fixture
def app_config(request) -> dict[str, Any]:
    """`rq`: jobs go to a real Redis (skips, or fails in CI, without one); else the default."""
    param = getattr(request, "param", {})
    if param == "rq":
        return {"REDIS_URL": request.getfixturevalue("redis_url")}
    return dict(param)


@pytest.fixture
def harbours(db):
    return [make_stock(db, f"Harbour {n}") for n in range(4)]


@pytest.fixture
def api(client, db):
    token = make_api_token(db, make_buyer(db))
    headers = {"Authorization": f"Bearer {token}"}
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=headers).get_json()["id"]

    class Api:
        collection_id = cid

        def add_search(self) -> int:
            response = client.post(
                f"/api/v1/collections/{cid}/add-by-query",
                json={"query": {"q": "harbour"}},
                headers=headers,
            )
            assert response.status_code == 202
            return int(response.get_json()["id"])

        def job(self, job_id: int) -> dict[str, Any]:
            response = client.get(f"/api/v1/collections/{cid}/jobs/{job_id}", headers=headers)
            return dict(response.get_json())

        def retry(self, job_id: int) -> Any:
            return client.post(f"/api/v1/collections/{cid}/jobs/{job_id}/retry", headers=headers)

    return Api()


def as_a_killed_worker_leaves_it(app, db, job_id: int) -> None:
    """The state SIGKILL leaves: our row says running (the job's first transaction committed),
    RQ still says started, and the worker's heartbeat in the started registry has expired."""
    with app.app_context():
        connection = jobs.redis_connection()
        rq_job = Job.fetch(services.rq_job_id(job_id), connection=connection)
        jobs.queue().remove(rq_job.id)
        rq_job.set_status(RQStatus.STARTED)
        registry = StartedJobRegistry(queue=jobs.queue(), connection=connection)
        connection.zadd(registry.key, {f"{rq_job.id}:dead-execution": 1})
    db.get(CollectionJob, job_id).status = JobStatus.RUNNING
    db.commit()


@pytest.mark.parametrize("app_config", ["rq"], indirect=True)
def test_a_job_whose_worker_was_killed_reads_as_failed_and_can_be_retried(
    app, db, api, harbours, run_jobs
):
    job_id = api.add_search()
    as_a_killed_worker_leaves_it(app, db, job_id)

    status = api.job(job_id)

    assert status["status"] == "failed"
    assert "stopped unexpectedly" in status["error"]
    assert "Retry" in status["error"]
    response = api.retry(job_id)
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    run_jobs()
    assert (api.job(job_id)["status"], api.job(job_id)["added"]) == ("done", 4)


@pytest.mark.parametrize("app_config", ["rq"], indirect=True)
def test_a_stopped_job_reads_as_failed_with_its_reason(app, db, api, harbours):
    job_id = api.add_search()
    with app.app_context():
        Job.fetch(services.rq_job_id(job_id), connection=jobs.redis_connection()).set_status(
            RQStatus.STOPPED
        )
    status = api.job(job_id)
    assert (status["status"], status["error"]) == (
        "failed",
        "The job was stopped before it finished. Retry the job.",
    )


def test_only_a_failed_job_can_be_retried(api, harbours, run_jobs):
    job_id = api.add_search()
    run_jobs()
    response = api.retry(job_id)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "job_not_retryable"


@pytest.mark.parametrize("app_config", [{"JOBS_RAISE": False}], indirect=True)
def test_two_jobs_filling_one_collection_at_once_both_finish(
    app, db, api, harbours, monkeypatch, run_jobs
):
    """The second job's rows arrive after the first read what was present: insert-or-ignore."""
    url = app.config["DATABASE_URL"]
    matching = services.iter_matching_ids

    def another_job_commits_first(session, query, cap):
        ids = list(matching(session, query, cap))
        row = {"c": api.collection_id, "i": ids[0]}
        insert_one = "INSERT INTO collection_items (collection_id, item_id, added_at) "
        insert_one += "VALUES (:c, :i, CURRENT_TIMESTAMP)"
        if url.startswith("postgresql"):
            # Really another connection, committed while this job's transaction is open.
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(text(insert_one), row)
            engine.dispose()
        else:  # SQLite's write lock is ours: the other writer's row lands in our transaction
            session.execute(text(insert_one), row)
        monkeypatch.setattr(services, "iter_matching_ids", matching)
        yield from ids

    monkeypatch.setattr(services, "iter_matching_ids", another_job_commits_first)
    first, second = api.add_search(), api.add_search()
    run_jobs()  # with RQ; inline, the jobs ran when they were queued

    results = [api.job(first), api.job(second)]
    assert [r["status"] for r in results] == ["done", "done"], results
    total = db.scalar(select(func.count()).select_from(CollectionItem))
    assert total == len(harbours)


@pytest.mark.parametrize("app_config", [{"JOBS_RAISE": False}], indirect=True)
def test_a_failed_job_tells_the_user_what_to_do_and_shows_no_sql(
    app, db, api, harbours, monkeypatch, run_jobs
):
    def database_error(*args, **kwargs):
        raise IntegrityError(
            "INSERT INTO collection_items (collection_id, item_id) VALUES (%(c)s, %(i)s)",
            {"c": 1, "i": 2},
            Exception('duplicate key value violates unique constraint "pk_collection_items"'),
        )

    monkeypatch.setattr(services, "iter_matching_ids", database_error)
    job_id = api.add_search()
    if jobs.redis_connection(app) is not None:
        with pytest.raises(pytest.fail.Exception):
            run_jobs()  # the fixture fails on a failed RQ job; here that is expected

    status = api.job(job_id)
    assert status["status"] == "failed"
    assert status["error"] == services.JOB_FAILED_MESSAGE
    for leak in ("INSERT", "collection_items", "%(", "Traceback", "IntegrityError", "duplicate"):
        assert leak not in status["error"]
