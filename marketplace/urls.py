"""Absolute links for mail and jobs, with or without a request."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import can_ada
from flask import current_app, has_request_context, url_for


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL: the request's host inside a request, PUBLIC_URL outside one."""
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    base = urlsplit(str(current_app.config["PUBLIC_URL"]))
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http"
    )
    return adapter.build(endpoint, values, force_external=True)


class InvalidURL(ValueError):
    pass


MAX_LINK_LENGTH = 2048


def normalize_http_url(url: str) -> str:
    """A link people gave us (evidence, a profile), as browsers read it: an absolute http(s)
    URL with a host, at most 2048 characters; InvalidURL with the reason otherwise."""
    url = url.strip()
    if not url or len(url) > MAX_LINK_LENGTH:
        raise InvalidURL("give an http(s) address of at most 2048 characters")
    try:
        parsed = can_ada.parse(url)
    except ValueError as exc:
        raise InvalidURL("not a valid address") from exc
    if parsed.protocol not in ("http:", "https:") or not parsed.hostname:
        raise InvalidURL("only http and https addresses are accepted")
    return str(parsed.href)
