"""The documented production command (gunicorn with gunicorn.conf.py) answers as the app does:
a long query string gets the API's JSON error, not the server's own HTML page."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    """Block until gunicorn accepts connections (or has exited: then fail with its output)."""
    while process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            try:
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
    output = process.stdout.read().decode() if process.stdout else ""
    pytest.fail(f"gunicorn exited with {process.returncode}:\n{output}")


@pytest.fixture
def gunicorn(database_url, tmp_path) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance"),
        "RATELIMIT_ENABLED": "0",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(process, port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_long_query_through_gunicorn_gets_the_api_error_shape(gunicorn):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    connection.request("GET", "/api/v1/works?q=" + "x" * 10_000)
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 414
    assert response.getheader("Content-Type") == "application/json"
    assert '"code":"query_too_long"' in body.replace(" ", "")
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
