"""With Redis unreachable, committed requests still succeed, and their jobs run once it is back.

Redis "down" is an address where nothing listens: a port this test holds bound but never
listens on, so connecting is refused at once. "Back" is a second app on the same database with
the real Redis (REDIS_URL), as a restarted worker would be.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from marketplace import jobs
from marketplace.artists.models import Work
from marketplace.catalog.models import CollectionJob, JobStatus
from marketplace.db import get_database
from marketplace.jobs.models import OutboxJob
from tests import images
from tests.catalog.test_search import make_stock
from tests.conftest import make_test_app
from tests.factories import make_api_token, make_artist, make_buyer

LICENSE = {"use_default_terms": "", "kind": "donate"}


@pytest.fixture
def dead_redis_url() -> Iterator[str]:
    """redis:// on a port that is bound (so nobody else takes it) but never listens."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    yield f"redis://127.0.0.1:{holder.getsockname()[1]}/0"
    holder.close()


@pytest.fixture
def app_config(dead_redis_url: str) -> dict[str, Any]:
    return {"REDIS_URL": dead_redis_url, "RATELIMIT_STORAGE_URI": dead_redis_url}


@pytest.fixture
def redis_back(database_url, tmp_path, redis_url) -> Iterator[Any]:
    """The same database and storage, now with a reachable Redis; no grace for the sweep."""
    app = make_test_app(database_url, tmp_path, REDIS_URL=redis_url, JOBS_OUTBOX_GRACE_SECONDS=0)
    yield app
    get_database(app).engine.dispose()


def sweep_and_work(app) -> int:
    """What `marketplace jobs sweep` and a worker do once Redis answers again."""
    result = app.test_cli_runner().invoke(args=["jobs", "sweep"])
    assert result.exit_code == 0, result.output
    sent = int(result.output.split()[0])  # "N jobs sent from the outbox."
    jobs.set_worker_app(app)
    SimpleWorker([jobs.queue(app)], connection=jobs.redis_connection(app)).work(burst=True)
    return sent


def outbox(db, func_suffix: str) -> list[OutboxJob]:
    db.rollback()  # a fresh snapshot (SQLite keeps one per transaction) ...
    db.expire_all()  # ... and rows this session added itself (via factories) re-read
    rows = db.scalars(select(OutboxJob).order_by(OutboxJob.id)).all()
    return [row for row in rows if row.func.endswith(func_suffix)]


def test_uploads_succeed_while_redis_is_down_and_get_thumbnails_once_it_is_back(
    client, db, login, redis_back
):
    login(make_artist(db))
    data = {
        "images": [
            (io.BytesIO(images.png(1, (640, 480))), "dusk.png"),
            (io.BytesIO(images.png(2, (640, 480))), "dawn.png"),
        ],
        **LICENSE,
    }
    response = client.post("/artists/works/new", data=data, content_type="multipart/form-data")

    assert response.status_code == 200  # the batch page, not a 500 after the commit
    page = response.get_data(as_text=True)
    assert "dusk.png</strong>: uploaded" in page
    assert "dawn.png</strong>: uploaded" in page  # the batch did not stop after the first file
    works = db.scalars(select(Work).order_by(Work.id)).all()
    assert [w.derivatives_ready for w in works] == [False, False]
    assert [row.job_id for row in outbox(db, "make_derivatives")] == [
        f"derivatives-{w.id}" for w in works
    ]

    assert sweep_and_work(redis_back) >= 2
    db.rollback()
    assert all(db.get(Work, w.id).derivatives_ready for w in works)
    assert db.scalar(select(func.count()).select_from(OutboxJob)) == 0


def test_adding_a_search_while_redis_is_down_is_accepted_and_runs_once_it_is_back(
    client, db, redis_back
):
    for n in range(3):
        make_stock(db, f"Harbour {n}")
    token = make_api_token(db, make_buyer(db))
    headers = {"Authorization": f"Bearer {token}"}
    cid = client.post("/api/v1/collections", json={"name": "c"}, headers=headers).get_json()["id"]

    response = client.post(
        f"/api/v1/collections/{cid}/add-by-query", json={"query": {"q": "harbour"}}, headers=headers
    )

    assert response.status_code == 202
    job_id = response.get_json()["id"]
    status = client.get(f"/api/v1/collections/{cid}/jobs/{job_id}", headers=headers).get_json()
    assert status["status"] == "queued"  # waiting in the outbox, not failed and not lost
    health = client.get("/healthz").get_json()
    assert health["checks"]["job_outbox"]["pending"] >= 1

    # A worker alone is enough: it sends the outbox's jobs as part of its maintenance.
    jobs.set_worker_app(redis_back)
    queue = jobs.queue(redis_back)
    jobs.MarketplaceWorker([queue], connection=queue.connection).work(burst=True)
    db.rollback()
    job = db.get(CollectionJob, job_id)
    assert (job.status, job.added) == (JobStatus.DONE, 3)


def test_a_sweep_while_redis_is_still_down_keeps_the_jobs_and_says_why(app, db, dead_redis_url):
    make_artist(db)  # sign-up queues the confirmation mail
    app.config["JOBS_OUTBOX_GRACE_SECONDS"] = 0
    with app.app_context():
        assert jobs.dispatch_pending() == 0
    (row,) = outbox(db, "send_verification_email")
    assert row.attempts == 1
    assert "Redis unreachable" in row.last_error


def test_log_in_works_and_is_still_limited_while_the_rate_limit_store_is_down(client, db):
    user = make_artist(db)
    bad = {"email": user.email, "password": "wrong password"}
    statuses = [client.post("/accounts/login", data=bad).status_code for _ in range(11)]

    assert 500 not in statuses
    assert statuses[-1] == 429  # LOGIN_RATE_LIMIT: 10 per minute, counted in memory
    health = client.get("/healthz").get_json()
    assert health["checks"]["rate_limits"]["storage"].startswith("memory (fallback")


def test_opt_out_checks_answer_while_the_rate_limit_store_is_down(client):
    response = client.get("/api/v1/optout/check", query_string={"url": "https://example.com/a"})
    assert response.status_code == 200


def test_a_sweep_sends_everything_waiting_batch_by_batch(db, redis_back):
    for _ in range(3):
        make_artist(db)  # each sign-up records a confirmation mail while Redis is down
    assert len(outbox(db, "send_verification_email")) == 3
    with redis_back.app_context():
        assert jobs.dispatch_pending(batch=2) == 3
        assert jobs.queue().count == 3
    assert outbox(db, "") == []
