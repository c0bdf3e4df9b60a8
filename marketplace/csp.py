"""The Content-Security-Policy header: our own assets only, no inline script or style.

Other origins are admitted per directive, never by loosening the defaults: from configuration
(`CSP_SCRIPT_SRC`, `CSP_FRAME_SRC`, `CSP_CONNECT_SRC`, space-separated origins, e.g. for Stripe.js
or the local Stripe emulator) or from code with `allow(app, "script-src", origin)`, which an
extension calls in its `init_app` (payments adds Stripe's origins this way).
"""

from __future__ import annotations

from flask import Flask

BASE_POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "frame-src": ("'none'",),
    "worker-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}

# Config keys naming extra sources for one directive each.
CONFIG_KEYS = {
    "CSP_SCRIPT_SRC": "script-src",
    "CSP_FRAME_SRC": "frame-src",
    "CSP_CONNECT_SRC": "connect-src",
}

# The third-party API reference (Redoc) builds its styles at run time and renders in a worker:
# that page alone may use inline styles and blob: workers. It still runs no inline script.
DOCS_PATH = "/api/v1/redoc"
DOCS_EXTRA: dict[str, tuple[str, ...]] = {
    "style-src": ("'unsafe-inline'",),
    "worker-src": ("blob:",),
}

_EXTENSION = "marketplace.csp"


def init_app(app: Flask) -> None:
    extra: dict[str, list[str]] = {}
    for key, directive in CONFIG_KEYS.items():
        for source in str(app.config.get(key) or "").split():
            _add(extra, directive, source)
    app.extensions[_EXTENSION] = extra


def allow(app: Flask, directive: str, source: str) -> None:
    """Admit `source` (an origin such as `https://js.stripe.com`) for one directive."""
    if directive not in BASE_POLICY:
        raise ValueError(f"unknown CSP directive {directive!r}")
    _add(app.extensions[_EXTENSION], directive, source)


def _add(extra: dict[str, list[str]], directive: str, source: str) -> None:
    if not source or any(c in source for c in ';,"\r\n\t '):
        raise ValueError(f"not a CSP source: {source!r}")
    sources = extra.setdefault(directive, [])
    if source not in sources:
        sources.append(source)


def header_value(app: Flask, path: str) -> str:
    """The policy for a response to `path`."""
    extra: dict[str, list[str]] = app.extensions.get(_EXTENSION, {})
    parts = []
    for directive, base in BASE_POLICY.items():
        sources = [*base, *extra.get(directive, ())]
        if path == DOCS_PATH:
            sources += DOCS_EXTRA.get(directive, ())
        if len(sources) > 1 and "'none'" in sources:
            sources.remove("'none'")
        parts.append(f"{directive} {' '.join(dict.fromkeys(sources))}")
    return "; ".join(parts)
