"""Keep secrets in URLs out of the logs.

Reset, confirmation, download and share links carry their credential in the path
(`/password/reset/<token>`). Access logs (Werkzeug's dev server, gunicorn) print request
lines, so a filter on those loggers replaces every route's `<token>` part with `[redacted]`.
The routes are read from the app's URL map: a new route with a `<token>` is covered as well.
"""

from __future__ import annotations

import logging
import re

from flask import Flask

REDACTED = "[redacted]"
# Loggers that print request lines.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")
_SEGMENT = r"[^/?#\s\"]+"


def secret_path_pattern(app: Flask) -> re.Pattern[str] | None:
    """One regex matching every route path whose `<token>` argument is a credential."""
    alternatives: list[str] = []
    for rule in app.url_map.iter_rules():
        if "token" not in rule.arguments:
            continue
        parts = re.split(r"(<[^>]+>)", rule.rule)
        regex = ""
        for part in parts:
            if not part.startswith("<"):
                regex += re.escape(part)
            elif part[1:-1].split(":")[-1] == "token":
                regex += f"(?P<t{len(alternatives)}>{_SEGMENT})"
            else:
                regex += _SEGMENT
        alternatives.append(regex)
    if not alternatives:
        return None
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def redact(pattern: re.Pattern[str], text: str) -> str:
    def _replace(match: re.Match[str]) -> str:
        whole, start = match.group(0), match.start(0)
        for name, value in match.groupdict().items():
            if value is not None:
                s, e = match.span(name)
                return whole[: s - start] + REDACTED + whole[e - start :]
        return whole

    return pattern.sub(_replace, text)


class RedactSecretPaths(logging.Filter):
    """Rewrites a record's message with the tokens of secret paths replaced."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(self.pattern, message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def init_app(app: Flask) -> None:
    """Install the filter on the access loggers (once per logger; the newest app's routes)."""
    pattern = secret_path_pattern(app)
    if pattern is None:
        return
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactSecretPaths)]:
            logger.removeFilter(old)
        logger.addFilter(RedactSecretPaths(pattern))
