"""One spelling per address, so that rules and checks compare like with like.

URLs are parsed as browsers parse them (the WHATWG URL Standard, by the Ada parser through the
can_ada bindings, ~10x faster per URL than ada-url's cffi ones): a crawler
fetching "https://a.example\\@evil.com/" reaches a.example, so that is the host we check.
"https://WWW.Example.com:443/a/b?x=1#top" and "http://www.example.com/a/b?x=1" are the same
address to the registry: scheme, fragment and default ports are dropped, the host is
lower-cased and IDNA-encoded, an empty path is "/". Control characters are refused first
(the shared rule in marketplace.text), with a message naming the character.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import can_ada

from marketplace.text import control_character_problem

MAX_URL_LENGTH = 2048
# "mailto:ada@example.com", "data:...", "http:/typo": a scheme without "//", not "host:port".
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(?![0-9])")
_NOT_IN_HOST = re.compile(r"[ /\\@?#]")


class BadUrl(ValueError):
    pass


class NormalizedUrl(NamedTuple):  # a tuple: ten thousand of them per bulk check
    host: str
    key: str  # host + path + ?query


def normalize_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host or len(host) > 253 or _NOT_IN_HOST.search(host):
        raise BadUrl("not a valid host name")
    if host.isascii():  # what the idna codec does with ASCII (the parser's hosts), in C
        if "" in (labels := host.split(".")) or max(map(len, labels)) > 63:
            raise BadUrl("not a valid host name")
        return host
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadUrl("not a valid host name") from exc
    return encoded


def normalize_url(url: str) -> NormalizedUrl:
    """BadUrl unless `url` is an http(s) address (a bare "host/path" is taken as http)."""
    problem = control_character_problem(url)
    if problem is not None:
        raise BadUrl(problem)
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise BadUrl("give an http(s) URL of at most 2048 characters")
    if not _OTHER_SCHEME.match(url):
        url = "http://" + url
    try:
        parsed = can_ada.parse(url)
    except ValueError as exc:
        raise BadUrl("not a valid URL (as a browser would read it)") from exc
    if parsed.protocol not in ("http:", "https:") or not parsed.hostname:
        raise BadUrl("only http and https URLs can be checked")
    host = normalize_host(parsed.hostname)
    if parsed.port not in ("", "80", "443"):
        host = f"{host}:{parsed.port}"
    path = parsed.pathname or "/"
    search = parsed.search if parsed.search != "?" else ""
    return NormalizedUrl(host=host, key=f"{host}{path}{search}")


def host_suffixes(host: str) -> list[str]:
    """The host and every parent domain: a domain rule on any of them covers the host."""
    bare = host.partition(":")[0]
    suffixes = [bare]
    dot = bare.find(".")
    while dot >= 0:
        suffixes.append(bare[dot + 1 :])
        dot = bare.find(".", dot + 1)
    return suffixes
