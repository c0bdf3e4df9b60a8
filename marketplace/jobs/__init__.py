"""Background jobs: `enqueue(func, *args)` runs inline without Redis and on RQ with it.

Jobs take ids and strings (the row may change before the job runs) and must be safe to rerun.
Each job runs in an app context of its own, so it gets a fresh session.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from werkzeug.utils import import_string

log = logging.getLogger(__name__)

_worker_app: Flask | None = None


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["marketplace.redis"] = Redis.from_url(str(url)) if url else None


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
        if existing is not None and existing.get_status() in {
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.DEFERRED,
            JobStatus.SCHEDULED,
        }:
            return job_id
    job = q.enqueue(run_job, _dotted(func), *args, job_id=job_id, result_ttl=3600)
    return str(job.id)


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


def job_status(job_id: str) -> str | None:
    connection = redis_connection()
    if connection is None:
        return None
    try:
        return str(Job.fetch(job_id, connection=connection).get_status())
    except NoSuchJobError:
        return None
