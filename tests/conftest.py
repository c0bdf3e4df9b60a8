"""Fixtures: a migrated database per test (SQLite file copy or PostgreSQL TEMPLATE), an app,
a client, a `db` session, and the real services (PostgreSQL, Redis) when present.

`DATABASE_URL` picks the backend of the main suite (default: SQLite). Tests that need a service
skip when it is absent, unless MARKETPLACE_REQUIRE_SERVICES is set (CI): then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from marketplace import create_app
from marketplace.db import get_database, make_engine
from marketplace.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MARKETPLACE_SHARED_DIR", ROOT.parent / "shared"))
REQUIRE_SERVICES = bool(os.environ.get("MARKETPLACE_REQUIRE_SERVICES"))
MAIN_DATABASE_URL = os.environ.get("DATABASE_URL", "")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery staple"


def service_missing(what: str) -> None:
    """Skip, or fail in CI, when a service a test needs is not running."""
    message = f"{what} is not available"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and MARKETPLACE_REQUIRE_SERVICES is set")
    pytest.skip(message)


# --- Services ------------------------------------------------------------------------------


def _postgres_admin_url() -> str:
    if MAIN_DATABASE_URL.startswith("postgresql"):
        return MAIN_DATABASE_URL
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a PostgreSQL database we may CREATE DATABASE from."""
    url = _postgres_admin_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        service_missing(f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)}")
    finally:
        engine.dispose()
    return url


class PostgresDatabases:
    """Creates and drops uniquely named databases on one PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"mkt_test_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        return name

    def drop(self, name: str) -> None:
        with self.engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def postgres(postgres_admin_url: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.engine.dispose()


@pytest.fixture
def empty_postgres_url(postgres: PostgresDatabases) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = postgres.create()
    yield postgres.url_for(name)
    postgres.drop(name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    from redis import Redis
    from redis.exceptions import RedisError

    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        Redis.from_url(url, socket_connect_timeout=2).ping()
    except (RedisError, OSError):
        service_missing(f"Redis at {url}")
    return url


# --- The database of each test ----------------------------------------------------------


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrations run once per session into a template; tests get copies of it."""
    if MAIN_DATABASE_URL.startswith("postgresql"):
        databases = PostgresDatabases(MAIN_DATABASE_URL)
        name = databases.create()
        _migrate(databases.url_for(name))
        yield f"postgres:{name}"
        databases.drop(name)
        databases.engine.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite"
        _migrate(f"sqlite:///{path}")
        yield f"sqlite:{path}"


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    kind, _, where = migrated_template.partition(":")
    if kind == "sqlite":
        copy = tmp_path / "test.sqlite"
        shutil.copyfile(where, copy)
        yield f"sqlite:///{copy}"
        return
    databases = PostgresDatabases(MAIN_DATABASE_URL)
    name = databases.create(template=where)
    try:
        yield databases.url_for(name)
    finally:
        databases.drop(name)
        databases.engine.dispose()


# --- App, client, db ---------------------------------------------------------------------


def make_test_app(database_url: str, tmp_path: Path, **overrides: Any) -> Flask:
    """An app on `database_url`; with REDIS_URL in the environment its jobs go to RQ (run them
    with the `run_jobs` fixture) and its rate limits live in Redis, as in production."""
    redis = os.environ.get("REDIS_URL") or None
    config: dict[str, Any] = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis,
        "STORAGE_DIR": str(tmp_path / "objects"),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "PUBLIC_URL": "http://localhost",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_STORAGE_URI": redis or "memory://",
        "RATELIMIT_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}",
        "RQ_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "JOBS_RAISE": True,
        # Index updates right after each commit, so a test searches what it just arranged
        # (tests/catalog/test_search_engine.py runs them as jobs).
        "SEARCH_INDEX_UPDATES": "inline",
    }
    config.update(overrides)
    return create_app(config, instance_path=str(tmp_path / "instance"))


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides of the app's configuration (override this fixture in a module)."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_test_app(database_url, tmp_path, **app_config)
    yield app
    get_database(app).engine.dispose()


class Client(FlaskClient):
    """A test client that ends the `db` fixture's read transaction after each request, so the
    test sees what the request wrote."""

    db_session: Session | None = None

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        if self.db_session is not None:
            self.db_session.rollback()
        return response


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's engine, outside any request; commit what you arrange."""
    session = get_database(app).sessions()
    session.info["app"] = app
    yield session
    session.close()


@pytest.fixture
def client(app: Flask, db: Session) -> Client:
    app.test_client_class = Client
    test_client = app.test_client()
    assert isinstance(test_client, Client)
    test_client.db_session = db
    return test_client


@pytest.fixture
def login(client: Client) -> Callable[..., Any]:
    def do_login(user: Any, password: str = PASSWORD, remember: bool = False) -> Any:
        response = client.post(
            "/accounts/login",
            data={"email": user.email, "password": password, "remember": "y" if remember else ""},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    return do_login


@pytest.fixture
def run_jobs(app: Flask, db: Session) -> Callable[[], int]:
    """Run the queued jobs now (an RQ burst worker in this process); inline apps have none.

    Returns how many jobs ran; a failed job fails the test with its traceback. Afterwards the
    test's session leaves its read transaction (when it holds nothing unsaved), as the test
    client does after each request: on SQLite a read transaction keeps the snapshot it began
    with, so without this a test could read an order as the jobs found it, not as they left it.
    """
    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry

    from marketplace import jobs

    def run() -> int:
        connection = jobs.redis_connection(app)
        if connection is None:
            return 0
        queue = jobs.queue(app)
        pending = queue.count
        jobs.set_worker_app(app)
        SimpleWorker([queue], connection=connection).work(burst=True)
        failed = FailedJobRegistry(queue=queue)
        for job_id in failed.get_job_ids():
            job = queue.fetch_job(job_id)
            pytest.fail(f"job {job_id} failed:\n{job.latest_result().exc_string if job else ''}")
        if not (db.new or db.dirty or db.deleted):
            db.rollback()
        return pending

    return run


@pytest.fixture
def outbox(tmp_path: Path, run_jobs: Callable[[], int]) -> Callable[[], list[Any]]:
    """The mails the app sent, oldest first, as email.message objects (queued jobs run first,
    as a worker would run them)."""
    from email import message_from_bytes, policy

    def read() -> list[Any]:
        run_jobs()
        folder = tmp_path / "outbox"
        if not folder.exists():
            return []
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))
        ]

    return read


def shared_path(relative: str) -> Path:
    """A file or folder of ../shared (published vectors, museum samples), read in place.

    Skips where ../shared is not checked out; fails under MARKETPLACE_REQUIRE_SERVICES (CI),
    so a test that needs the data cannot pass by skipping.
    """
    path = SHARED_DIR / relative
    if not path.exists():
        service_missing(f"{path} (set MARKETPLACE_SHARED_DIR)")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return shared_path(".")


# --- Live server and the Stripe emulator --------------------------------------------------


def _not_started(environ: object, start_response: object) -> list[bytes]:
    raise RuntimeError("the live server answered before its app was set")


@pytest.fixture
def live_server(
    database_url: str, tmp_path: Path, app_config: dict[str, Any]
) -> Iterator[tuple[Flask, str]]:
    """The app on 127.0.0.1 at a free port, CSRF on, PUBLIC_URL that address so mailed links
    work; `app_config` overrides apply (e.g. `stripe_config`)."""
    server = make_server("127.0.0.1", 0, _not_started, threaded=True)  # type: ignore[arg-type]
    base_url = f"http://127.0.0.1:{server.server_port}"
    config = {"PUBLIC_URL": base_url, "WTF_CSRF_ENABLED": True, **app_config}
    app = make_test_app(database_url, tmp_path, **config)
    server.app = app  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield app, base_url
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        get_database(app).engine.dispose()


class StripeEmulator:
    """A running `marketplace.payments.emulator` (localstripe + our extensions) to talk to."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, form: dict[str, str] | None = None) -> bytes:
        from urllib.parse import urlencode
        from urllib.request import Request, urlopen

        data = urlencode(form).encode() if form is not None else None
        request = Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback
        with urlopen(request, timeout=30) as response:  # noqa: S310
            return bytes(response.read())

    def register_webhook(self, url: str, secret: str, endpoint_id: str = "test") -> None:
        """Deliver every event to `url`, signed with `secret` as Stripe signs."""
        self._call("POST", f"/_config/webhooks/{endpoint_id}", {"url": url, "secret": secret})

    def unregister_webhook(self, endpoint_id: str = "test") -> None:
        self._call("DELETE", f"/_config/webhooks/{endpoint_id}")

    def visit_onboarding_link(self, link_url: str) -> str:
        """Do what an artist does on Stripe's onboarding page; the redirect's Location."""
        from http.client import HTTPConnection
        from urllib.parse import urlsplit

        parts = urlsplit(link_url)
        connection = HTTPConnection(parts.netloc, timeout=30)
        try:
            connection.request("GET", parts.path)
            response = connection.getresponse()
            response.read()
            return str(response.getheader("Location") or f"status {response.status}")
        finally:
            connection.close()

    def restrict_account(self, account_id: str) -> None:
        """Stripe wants more information: transfers and payouts stop (account.updated)."""
        self._call("POST", f"/_config/accounts/{account_id}/restrict", {})

    def enable_account(self, account_id: str) -> None:
        """Every requirement met: transfers and payouts work (account.updated)."""
        self._call("POST", f"/_config/accounts/{account_id}/enable", {})

    def set_balance(self, account_id: str, available: int, currency: str = "usd") -> None:
        """The connected account's available balance in `currency`, in minor units."""
        self._call(
            "POST",
            f"/_config/accounts/{account_id}/balance",
            {"available": str(available), "currency": currency},
        )

    def flush_webhooks(self) -> list[dict[str, Any]]:
        """Wait until every event so far was delivered; the deliveries since the last flush."""
        body = json.loads(self._call("POST", "/_config/webhook_deliveries/flush", {}))
        return list(body["deliveries"])


@contextmanager
def running_emulator(*args: str) -> Iterator[StripeEmulator]:
    """The Stripe emulator on a free loopback port in a child process (extra command-line
    `args`, e.g. `--state-file`), stopped afterwards."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketplace.payments.emulator",
            "--port",
            "0",
            "--exit-with-parent",
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if "listening on " not in line:
            pytest.fail(f"the Stripe emulator did not start: {line!r}")
        yield StripeEmulator(line.rsplit(" ", 1)[-1].strip())
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def stripe_emulator() -> Iterator[StripeEmulator]:
    """The Stripe emulator on a free loopback port in a child process, for the whole session."""
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def stripe_config(stripe_emulator: StripeEmulator) -> dict[str, Any]:
    """App settings for the embedded (emulated, test-mode) Stripe at the session's emulator.

    Use it as a module's `app_config`, e.g. `def app_config(stripe_config): return stripe_config`.
    """
    return {
        "STRIPE_SECRET_KEY": None,
        "STRIPE_PUBLISHABLE_KEY": None,
        "STRIPE_API_BASE": stripe_emulator.url,
        "STRIPE_JS_URL": None,
        "STRIPE_WEBHOOK_SECRET": f"whsec_test_{uuid.uuid4().hex}",
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        # Every test's database counts from 1: keep its idempotency keys its own.
        "STRIPE_IDEMPOTENCY_PREFIX": f"test-{uuid.uuid4().hex[:12]}:",
    }


@pytest.fixture
def stripe_webhooks(
    stripe_emulator: StripeEmulator,
) -> Iterator[Callable[[str, str], None]]:
    """`register(url, secret)`: the emulator delivers events to `url` (e.g. a live server's
    `/webhooks/stripe`) during this test; pending deliveries are flushed before and after."""
    endpoint_id = f"test-{uuid.uuid4().hex[:8]}"
    stripe_emulator.flush_webhooks()

    def register(url: str, secret: str) -> None:
        stripe_emulator.register_webhook(url, secret, endpoint_id)

    yield register
    stripe_emulator.flush_webhooks()
    stripe_emulator.unregister_webhook(endpoint_id)
