"""One spelling per address, so that rules and checks compare like with like.

"https://WWW.Example.com:443/a/b?x=1#top" and "http://www.example.com/a/b?x=1" are the same
address to the registry: scheme, fragment and default ports are dropped, the host is
lower-cased and IDNA-encoded, an empty path is "/".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
# "mailto:ada@example.com", "data:...", "http:/typo": a scheme without "//", not "host:port".
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(?![0-9])")


class BadUrl(ValueError):
    pass


@dataclass(frozen=True)
class NormalizedUrl:
    host: str
    key: str  # host + path + ?query


def normalize_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host or len(host) > 253 or any(c in host for c in " /\\@?#"):
        raise BadUrl("not a valid host name")
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadUrl("not a valid host name") from exc
    return encoded


def normalize_url(url: str) -> NormalizedUrl:
    """BadUrl unless `url` is an http(s) address (a bare "host/path" is taken as http)."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise BadUrl("give an http(s) URL of at most 2048 characters")
    if "://" not in url:
        if _OTHER_SCHEME.match(url):
            raise BadUrl("only http and https URLs can be checked")
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadUrl("not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadUrl("only http and https URLs can be checked")
    host = normalize_host(parts.hostname)
    if port not in (None, 80, 443):
        host = f"{host}:{port}"
    path = parts.path or "/"
    key = f"{host}{path}" + (f"?{parts.query}" if parts.query else "")
    return NormalizedUrl(host=host, key=key)


def host_suffixes(host: str) -> list[str]:
    """The host and every parent domain: a domain rule on any of them covers the host."""
    bare = host.split(":", 1)[0]
    labels = bare.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]
