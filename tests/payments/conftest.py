"""A webhook receiver for the payments tests: a loopback endpoint that keeps what it is sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Receiver:
    """A loopback HTTP endpoint that keeps what it is sent, as the app's webhook view would."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str | None]] = []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)  # type: ignore[arg-type]
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe"

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((request.get_data(), request.headers.get("Stripe-Signature")))
        return Response("ok")(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    thread.join(timeout=10)
    receiver.server.server_close()
