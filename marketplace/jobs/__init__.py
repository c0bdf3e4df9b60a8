"""Background jobs: `enqueue(func, *args)` runs inline without Redis and on RQ with it.

Jobs take ids and strings (the row may change before the job runs) and must be safe to rerun.
Each job runs in an app context of its own, so it gets a fresh session.

Code that queues a job as part of a change calls `enqueue_after_commit(session, ...)`: with
Redis the job is written to the outbox (`job_outbox`) in the same transaction and handed to RQ
after the commit, so a Redis outage can neither fail a committed request nor lose the job;
`dispatch_pending()` sends what is left once Redis answers again.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import delete, select
from sqlalchemy import func as sa_func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.utils import import_string

from marketplace.db import after_commit, transaction, utcnow
from marketplace.jobs.models import OutboxJob

log = logging.getLogger(__name__)

_worker_app: Flask | None = None

REDIS_CONNECT_TIMEOUT = 2.0
# How often a worker sweeps the outbox and lets RQ clean up after dead workers.
WORKER_MAINTENANCE_SECONDS = 60
# What "Redis is unreachable" looks like to the client library.
REDIS_DOWN = (RedisError, OSError)


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    # A bounded connect timeout: an unreachable Redis must fail fast, not hang a request.
    app.extensions["marketplace.redis"] = (
        Redis.from_url(str(url), socket_connect_timeout=REDIS_CONNECT_TIMEOUT) if url else None
    )


def redis_connection(app: Flask | None = None) -> Redis | None:
    connection: Redis | None = (app or current_app).extensions["marketplace.redis"]
    return connection


def queue(app: Flask | None = None) -> Queue:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    connection = redis_connection(app)
    if connection is None:
        raise RuntimeError("REDIS_URL is not set; jobs run inline")
    return Queue(str(app.config["RQ_QUEUE"]), connection=connection)


def _dotted(func: Callable[..., Any] | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def enqueue(func: Callable[..., Any] | str, *args: Any, job_id: str | None = None) -> str | None:
    """Run `func(*args)` in the background (or now, inline); returns the RQ job id if queued.

    `func` may be a dotted name, so that a service can queue its feature's job without
    importing the job module (which imports the service). With `job_id`, a job already queued
    or running under that id is not queued again.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if redis_connection(app) is None:
        _run_inline(app, func, args)
        return None
    q = queue(app)
    if job_id is not None:
        existing = q.fetch_job(job_id)
        if existing is not None:
            if existing.get_status() in {
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.DEFERRED,
                JobStatus.SCHEDULED,
            }:
                return job_id
            # A retry: the old run (finished, failed, stopped) leaves its registries first.
            existing.delete()
    job = q.enqueue(run_job, _dotted(func), *args, job_id=job_id, result_ttl=3600)
    return str(job.id)


def enqueue_after_commit(
    session: Session, func: Callable[..., Any] | str, *args: Any, job_id: str | None = None
) -> None:
    """Queue `func(*args)` once the session's transaction commits; never fails that commit.

    Without Redis the job runs inline after the commit, as `enqueue` does. With Redis it is
    recorded in the outbox inside the transaction (committed or rolled back with it) and
    dispatched right after the commit; if Redis is down the row stays for `dispatch_pending`.
    """
    if redis_connection() is None:
        after_commit(session, lambda: enqueue(func, *args, job_id=job_id))
        return
    row = OutboxJob(func=_dotted(func), args=list(args), job_id=job_id or f"job-{uuid.uuid4().hex}")
    session.add(row)
    session.flush()
    outbox_id = row.id
    after_commit(session, lambda: _dispatch_one(outbox_id, row.func, row.args, row.job_id))


def _dispatch_one(outbox_id: int, func: str, args: list[Any], job_id: str) -> None:
    try:
        enqueue(func, *args, job_id=job_id)
    except REDIS_DOWN as exc:
        log.warning(
            "job %s kept in the outbox: Redis is unreachable (%s)", job_id, type(exc).__name__
        )
        return
    try:
        with transaction() as session:
            session.execute(delete(OutboxJob).where(OutboxJob.id == outbox_id))
    except SQLAlchemyError as exc:
        # Queued but still in the outbox: the sweeper queues it again under the same job id,
        # which is harmless (jobs are safe to rerun).
        log.warning("job %s queued; outbox row not cleared (%s)", job_id, type(exc).__name__)


def dispatch_pending(*, now: datetime | None = None, batch: int = 500) -> int:
    """Hand the outbox's waiting jobs to RQ, `batch` rows per transaction; returns how many
    were queued.

    Rows younger than JOBS_OUTBOX_GRACE_SECONDS are left alone: their own request is most
    likely dispatching them right now. Stops at the first Redis failure (Redis is down; the
    rows wait for the next sweep). Rows are locked with SKIP LOCKED on PostgreSQL, so two
    sweepers never send the same row at once.
    """
    if redis_connection() is None:
        return 0
    grace = float(current_app.config.get("JOBS_OUTBOX_GRACE_SECONDS", 30))
    cutoff = (now or utcnow()) - timedelta(seconds=grace)
    sent, after_id, redis_down = 0, 0, False
    while not redis_down:
        with transaction() as session:
            rows = session.scalars(
                select(OutboxJob)
                .where(OutboxJob.created_at <= cutoff, OutboxJob.id > after_id)
                .order_by(OutboxJob.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                after_id = row.id
                try:
                    enqueue(row.func, *row.args, job_id=row.job_id)
                except REDIS_DOWN as exc:
                    row.attempts += 1
                    row.last_error = f"Redis unreachable ({type(exc).__name__})"
                    log.warning(
                        "outbox sweep stopped: Redis is unreachable (%s)", type(exc).__name__
                    )
                    redis_down = True
                    break
                session.delete(row)
                sent += 1
        if len(rows) < batch:
            break
    if sent:
        log.info("outbox sweep queued %s jobs", sent)
    return sent


def pending_count(session: Session) -> int:
    """Jobs recorded but not yet handed to RQ (shown by /healthz)."""
    return int(session.scalar(select(sa_func.count()).select_from(OutboxJob)) or 0)


def _run_inline(app: Flask, func: Callable[..., Any] | str, args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            (import_string(func) if isinstance(func, str) else func)(*args)
        except Exception:
            # As on a worker, a failed job does not undo the committed work that queued it;
            # tests set JOBS_RAISE so that failures surface.
            log.exception("inline job %s failed", _dotted(func))
            if app.config.get("JOBS_RAISE"):
                raise


def run_job(dotted_name: str, *args: Any) -> Any:
    """What RQ runs: import the job function and call it inside the worker's app context."""
    func = import_string(dotted_name)
    app = _worker_app
    if app is None:
        from marketplace.app import create_app

        app = set_worker_app(create_app())
    if app.extensions.get("marketplace.pid") != os.getpid():
        # A forked work horse must not share the parent's database connections.
        from marketplace.db import get_database

        get_database(app).engine.dispose(close=False)
        app.extensions["marketplace.pid"] = os.getpid()
    with app.app_context():
        return func(*args)


def set_worker_app(app: Flask) -> Flask:
    global _worker_app
    _worker_app = app
    return app


@dataclass(frozen=True)
class JobState:
    """What RQ knows of a job: `given_up` with a sentence for people when it will not finish."""

    status: str  # RQ's status, or "missing" when RQ has no such job
    given_up: bool = False
    reason: str = ""


_GIVEN_UP = {
    JobStatus.STOPPED: "The job was stopped before it finished.",
    JobStatus.CANCELED: "The job was canceled before it ran.",
}


def job_state(job_id: str) -> JobState | None:
    """RQ's view of `job_id`; None without Redis, when Redis is unreachable, or while the job
    still waits in the outbox. Jobs whose worker died (SIGKILL, lost host) are moved to failed
    first, as RQ's own maintenance would, so the answer does not wait for a worker to run."""
    connection = redis_connection()
    if connection is None:
        return None
    with transaction() as session:
        if session.scalar(select(OutboxJob.id).where(OutboxJob.job_id == job_id).limit(1)):
            return None
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status()
        if status == JobStatus.STARTED:
            StartedJobRegistry(queue=queue(), connection=connection).cleanup()
            status = job.get_status()
        if status == JobStatus.FAILED:
            info = job.exc_info or ""
            if "AbandonedJobError" in info:
                reason = "The worker running the job stopped unexpectedly."
            else:
                reason = "The job failed."
            return JobState(_status_text(status), given_up=True, reason=reason)
        if status in _GIVEN_UP:
            return JobState(_status_text(status), given_up=True, reason=_GIVEN_UP[status])
        return JobState(_status_text(status))
    except NoSuchJobError:
        return JobState("missing")
    except REDIS_DOWN as exc:
        log.warning("job %s: Redis is unreachable (%s)", job_id, type(exc).__name__)
        return None


class MarketplaceWorker(Worker):
    """An RQ worker that also sends the outbox's waiting jobs, at start and at every
    maintenance round (RQ's `maintenance_interval`), so jobs recorded while Redis was down
    run once it is back without anything else to schedule."""

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        app = _worker_app
        if app is None:
            return
        with app.app_context():
            try:
                dispatch_pending()
            except SQLAlchemyError as exc:
                log.warning("outbox sweep failed (%s)", type(exc).__name__)


def _status_text(status: JobStatus | str) -> str:
    """RQ's status as its plain value ("queued"): `str()` of RQ 3's str-mixin enum gives
    "JobStatus.QUEUED" on Python 3.11+, which no caller's set of names would match."""
    return status.value if isinstance(status, JobStatus) else str(status)


def job_status(job_id: str) -> str | None:
    connection = redis_connection()
    if connection is None:
        return None
    try:
        return _status_text(Job.fetch(job_id, connection=connection).get_status())
    except NoSuchJobError:
        return None


@dataclass(frozen=True)
class FailedJob:
    """A job RQ gave up on, as the admin console lists it."""

    id: str
    func: str
    args: str
    ended_at: datetime | None
    error: str  # the exception's last line (the traceback stays in RQ)


_JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def failed_jobs(limit: int = 50) -> list[FailedJob] | None:
    """The latest failed jobs with their error; None without Redis (jobs run inline)."""
    connection = redis_connection()
    if connection is None:
        return None
    registry = FailedJobRegistry(queue=queue(), connection=connection)
    ids = registry.get_job_ids(0, limit - 1)
    found = []
    for job in Job.fetch_many(ids, connection=connection):
        if job is None:
            continue
        args = list(job.args or ())
        func_name = job.func_name or ""
        name = str(args[0]) if args and func_name.endswith("run_job") else func_name
        shown = ", ".join(repr(a) for a in args[1:])[:200]
        info = job.exc_info or ""
        lines = [line for line in info.strip().splitlines() if line.strip()]
        found.append(FailedJob(job.id, name, shown, job.ended_at, lines[-1][:500] if lines else ""))
    return found


def retry_failed(job_id: str) -> bool:
    """Queue a failed job again (RQ keeps its id); False if no such failed job."""
    connection = redis_connection()
    if connection is None or not _JOB_ID.fullmatch(job_id):
        return False
    registry = FailedJobRegistry(queue=queue(), connection=connection)
    if job_id not in registry.get_job_ids():
        return False
    registry.requeue(job_id)
    return True
