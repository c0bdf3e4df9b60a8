"""Fetching open-access images over HTTP: retries with backoff, and a per-host limit on
concurrent downloads shared by every worker (Redis) or every thread of this process."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

from flask import current_app

from marketplace import jobs

log = logging.getLogger(__name__)

USER_AGENT = "ConsentMarketplace-mirror/1.0 (+open-access image mirroring)"
# Keyed by limit too: a changed MIRROR_HOST_CONCURRENCY takes effect instead of being ignored
# for hosts seen before.
_local_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_local_lock = threading.Lock()


class Permanent(Exception):
    """A failure retrying will not fix (404, not an image, too large)."""


@contextlib.contextmanager
def host_slot(host: str, limit: int, wait_seconds: float = 120.0) -> Iterator[None]:
    """At most `limit` downloads from one host at a time, across every worker (Redis) or
    within this process (inline jobs)."""
    redis = jobs.redis_connection()
    if redis is None:
        with _local_lock:
            slot = _local_slots.setdefault((host, limit), threading.BoundedSemaphore(limit))
        if not slot.acquire(timeout=wait_seconds):
            raise TimeoutError(f"no free download slot for {host}")
        try:
            yield
        finally:
            slot.release()
        return
    key = f"{current_app.config['RQ_QUEUE']}:mirror-slots:{host}"
    deadline = time.monotonic() + wait_seconds
    while True:
        taken = int(redis.incr(key))
        redis.expire(key, 600)  # a crashed worker's slot frees itself
        if taken <= limit:
            break
        redis.decr(key)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free download slot for {host}")
        time.sleep(0.05)
    try:
        yield
    finally:
        redis.decr(key)


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise  # worth another try
        raise Permanent(f"HTTP {exc.code} from {urlsplit(url).netloc}") from exc
    if len(data) > max_bytes:
        raise Permanent("the image is larger than the upload limit")
    return data


def fetch_with_retries(url: str) -> tuple[bytes, int]:
    """The bytes at `url`, retrying transient failures with exponential backoff; returns
    (data, attempts). Raises Permanent, or the last transient error."""
    config = current_app.config
    retries = max(1, int(config["MIRROR_RETRIES"]))
    backoff = float(config["MIRROR_BACKOFF_SECONDS"])
    host = urlsplit(url).netloc
    if urlsplit(url).scheme not in ("http", "https") or not host:
        raise Permanent(f"not an http(s) URL: {url[:100]}")
    for attempt in range(1, retries + 1):
        try:
            with host_slot(host, int(config["MIRROR_HOST_CONCURRENCY"])):
                return (
                    _download(
                        url,
                        timeout=float(config["MIRROR_TIMEOUT_SECONDS"]),
                        max_bytes=int(config["MAX_UPLOAD_BYTES"]),
                    ),
                    attempt,
                )
        except Permanent:
            raise
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            if attempt == retries:
                raise
            log.info("mirror %s: attempt %s failed (%s), retrying", host, attempt, exc)
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
