"""Reading the files sites publish to reserve text and data mining: pure, no Flask, no SQL.

- TDMRep (W3C TDM Reservation Protocol, final community group report): `/.well-known/tdmrep.json`
  is a JSON array of rules `{"location": pattern, "tdm-reservation": 0 | 1, "tdm-policy": url}`;
  the first rule whose location matches a URL's path decides (spec: "the most specific match
  is the first in sequence"). Locations use the robots.txt pattern syntax (`*`, a final `$`).
- robots.txt (RFC 9309): groups of `User-agent` lines followed by `Allow` / `Disallow` rules;
  within the group that applies, the longest matching pattern decides, `Allow` on a tie.
- Spawning's `ai.txt`: the robots.txt grammar addressed to AI agents, with file-type rules
  such as `Disallow: *.jpg`, which match by the extension of the URL's path.

Each parser returns the rules in file order or raises ReservationFileError with a message for
the person who uploaded the file. Unknown lines in robots.txt and ai.txt are skipped, as
RFC 9309 asks (Spawning's own generator writes lone "/" lines), but a file with no directive
at all, or an HTML page, is refused: it is not what the site meant to publish there.
"""

from __future__ import annotations

import enum
import json
import re
import string
from dataclasses import dataclass, field

from marketplace.text import control_character_problem


class ReservationKind(enum.StrEnum):
    TDMREP = "tdmrep"
    AI_TXT = "ai.txt"
    ROBOTS = "robots"

    @property
    def path(self) -> str:
        """Where a site publishes this kind of file."""
        return _PATHS[self]


_PATHS = {
    ReservationKind.TDMREP: "/.well-known/tdmrep.json",
    ReservationKind.AI_TXT: "/ai.txt",
    ReservationKind.ROBOTS: "/robots.txt",
}


class ReservationFileError(ValueError):
    """The file cannot be read as its kind; the message says why, safe to show."""


@dataclass(frozen=True)
class ParsedRule:
    position: int  # order in the file, from 0
    line: int  # robots.txt / ai.txt: line number; TDMRep: rule number in the array (from 1)
    agent: str | None  # robots.txt / ai.txt: the user agent's product token, or *
    reserve: bool  # Disallow, or tdm-reservation 1
    pattern: str  # the path pattern as written
    policy_url: str | None = None  # TDMRep tdm-policy (evidence only)


@dataclass
class ParsedFile:
    kind: ReservationKind
    rules: list[ParsedRule] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)  # robots.txt / ai.txt lines not read


def parse(kind: ReservationKind, body: bytes) -> ParsedFile:
    if kind is ReservationKind.TDMREP:
        return parse_tdmrep(body)
    return parse_robots(body, kind=kind)


def _text(body: bytes, what: str) -> str:
    if b"\x00" in body:
        raise ReservationFileError(f"The {what} holds binary data (a NUL byte), not text.")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReservationFileError(
            f"The {what} is not UTF-8 text (byte {exc.start + 1} is not valid UTF-8)."
        ) from exc


# --- TDMRep ---------------------------------------------------------------------------------


def parse_tdmrep(body: bytes) -> ParsedFile:
    text = _text(body, "tdmrep.json")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReservationFileError(
            f"tdmrep.json is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    if not isinstance(document, list):
        raise ReservationFileError(
            "tdmrep.json must be a JSON array of rules: the brackets are required even for "
            "one rule."
        )
    parsed = ParsedFile(ReservationKind.TDMREP)
    for index, rule in enumerate(document):
        number = index + 1
        if not isinstance(rule, dict):
            raise ReservationFileError(f"Rule {number} is not a JSON object.")
        location = rule.get("location")
        if not isinstance(location, str) or not location.strip():
            raise ReservationFileError(f"Rule {number} has no location (a path pattern).")
        location = location.strip()
        if not location.startswith(("/", "*")):
            raise ReservationFileError(
                f"Rule {number}: the location {location[:100]!r} must be a path on the site, "
                "starting with / (or *)."
            )
        reservation = rule.get("tdm-reservation")
        # A JSON true/false would pass as 1/0 in Python; the protocol says 1 or 0.
        if isinstance(reservation, bool) or reservation not in (0, 1):
            raise ReservationFileError(
                f"Rule {number}: tdm-reservation must be 1 (reserved) or 0 (not reserved), "
                f"not {json.dumps(reservation)[:40]}."
            )
        policy = rule.get("tdm-policy")
        if policy is not None and (
            not isinstance(policy, str) or not policy.startswith(("https://", "http://"))
        ):
            raise ReservationFileError(f"Rule {number}: tdm-policy must be an http(s) URL.")
        if policy is not None and len(policy) > 2048:
            raise ReservationFileError(f"Rule {number}: tdm-policy is longer than 2048 chars.")
        if len(location) > 2048:
            raise ReservationFileError(f"Rule {number}: the location is longer than 2048 chars.")
        for name, value in (("location", location), ("tdm-policy", policy or "")):
            problem = control_character_problem(value)
            if problem is not None:
                raise ReservationFileError(f"Rule {number}: the {name}: {problem}")
        parsed.rules.append(
            ParsedRule(
                position=index,
                line=number,
                agent=None,
                reserve=reservation == 1,
                pattern=location,
                policy_url=policy,
            )
        )
    return parsed


# --- robots.txt and ai.txt ------------------------------------------------------------------

_USER_AGENT = {"user-agent", "useragent", "user agent", "user_agent"}
_ALLOW = {"allow"}
_DISALLOW = {"disallow", "dissallow", "dissalow", "disalow", "diasllow", "disallaw"}
# Read and ignored: they neither reserve nor end a group.
_OTHER = {"sitemap", "crawl-delay", "host", "request-rate", "visit-time", "clean-param", "noindex"}


def product_token(agent: str) -> str:
    """`GPTBot/1.1 (+https://openai.com/gptbot)` -> `GPTBot`: RFC 9309 matches the product
    token (case-insensitively, which the matcher does)."""
    token = agent.strip().split("/", 1)[0].split(None, 1)
    return token[0] if token else ""


def parse_robots(body: bytes, *, kind: ReservationKind = ReservationKind.ROBOTS) -> ParsedFile:
    what = "ai.txt" if kind is ReservationKind.AI_TXT else "robots.txt"
    text = _text(body, what)
    if text.lstrip().startswith("<"):
        raise ReservationFileError(
            f"The {what} looks like an HTML page (a site's error or login page?), not a {what}."
        )
    parsed = ParsedFile(kind)
    agents: list[str] = []
    in_rules = False  # the current group has had a rule line: a user-agent line starts anew
    directives = 0
    contentful = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        contentful += 1
        name, colon, value = line.partition(":")
        name = " ".join(name.lower().split())
        value = value.strip()
        if not colon:
            parsed.skipped_lines.append(number)
            continue
        if name in _USER_AGENT:
            directives += 1
            if in_rules:
                agents, in_rules = [], False
            token = "*" if value == "*" else product_token(value)
            if len(token) > 255:
                raise ReservationFileError(f"Line {number}: the user agent is over 255 chars.")
            if token:
                agents.append(token)
        elif name in _ALLOW or name in _DISALLOW:
            directives += 1
            in_rules = True
            if not agents:
                parsed.skipped_lines.append(number)  # a rule before any User-agent line
                continue
            if not value:
                continue  # "Disallow:" with nothing after it disallows nothing
            if len(value) > 2048:
                raise ReservationFileError(f"Line {number}: the pattern is over 2048 chars.")
            for agent in agents:
                parsed.rules.append(
                    ParsedRule(
                        position=len(parsed.rules),
                        line=number,
                        agent=agent,
                        reserve=name in _DISALLOW,
                        pattern=value,
                    )
                )
        elif name in _OTHER:
            directives += 1
        else:
            parsed.skipped_lines.append(number)
    if contentful and not directives:
        raise ReservationFileError(
            f"No User-agent, Allow or Disallow line found: this is not a {what}."
        )
    return parsed


# --- Patterns -------------------------------------------------------------------------------

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_NEEDS_ENCODING = re.compile(r"[^\x21-\x7e]")
_FILE_TYPE = re.compile(r"^/?\*\.([A-Za-z0-9][A-Za-z0-9_+-]*)\$?$")


def _fix_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _encode(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode())


def canonical(path: str) -> str:
    """RFC 9309 2.2.2: compare with unreserved characters unescaped, everything else outside
    printable ASCII percent-encoded (UTF-8), escapes in upper case. Applied to patterns and
    to URL paths alike."""
    if "%" in path:
        path = _ESCAPE.sub(_fix_escape, path)
    if _NEEDS_ENCODING.search(path):
        path = _NEEDS_ENCODING.sub(_encode, path)
    return path


def file_type(pattern: str) -> str | None:
    """ai.txt file-type rules (`*.jpg`, `/*.JPG$`): the extension, lower-cased; else None."""
    match = _FILE_TYPE.match(pattern)
    return match.group(1).lower() if match else None


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A robots.txt path pattern as a regex to `match` (anchored at the start) a canonical
    path-and-query: `*` is any run of characters, a final `$` ends the path."""
    anchored = pattern.endswith("$")
    body = canonical(pattern[:-1] if anchored else pattern)
    if not body.startswith(("/", "*")):
        body = "/" + body  # "Disallow: images" read as "/images", the reading that reserves
    regex = ".*".join(re.escape(part) for part in re.split(r"\*+", body))
    return re.compile(regex + ("$" if anchored else ""), re.DOTALL)


def path_extension(path: str) -> str | None:
    """The lower-cased extension of the last segment of a path (query and fragment ignored)."""
    path = path.split("?", 1)[0]
    segment = path.rsplit("/", 1)[-1]
    if "." not in segment:
        return None
    extension = segment.rsplit(".", 1)[1].lower()
    return extension or None
