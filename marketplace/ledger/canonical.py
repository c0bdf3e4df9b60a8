"""The exact bytes of a ledger entry: RFC 8785 (JCS) JSON, with no floats allowed.

JCS fixes key order (UTF-16 code units), escaping and number form, so anyone can re-derive the
bytes from the parsed JSON. We also refuse floats outright: amounts are integers in minor units.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

ENTRY_VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonical(ValueError):
    """A value that has no single canonical JSON form under our rules."""


def _check(value: Any) -> bool:
    """Raise NotCanonical for what JCS cannot express under our rules.

    Returns whether Python's sorted-keys encoder gives the JCS bytes, which holds unless an
    object key has a character outside the Basic Multilingual Plane (JCS sorts keys by UTF-16
    code units, Python by code points; the two orders differ only there).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return True
        raise NotCanonical("an integer is outside the JSON-safe range (2**53 - 1)")
    if kind is float:
        raise NotCanonical("floats are not allowed; use integers (minor units)")
    if kind is dict or isinstance(value, Mapping):
        simple = True
        for key, item in value.items():
            if type(key) is not str:
                raise NotCanonical("object keys must be strings")
            if not key.isascii() and max(map(ord, key)) > 0xFFFF:
                simple = False
            if type(item) is not str:  # strings, the common case, need no further look
                simple = _check(item) and simple
        return simple
    if isinstance(value, list | tuple):
        simple = True
        for item in value:
            if type(item) is not str:
                simple = _check(item) and simple
        return simple
    if isinstance(value, int | str):  # subclasses such as IntEnum and StrEnum
        return _check(int(value) if isinstance(value, int) else str(value))
    raise NotCanonical(f"{type(value).__name__} is not a JSON value")


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _make_encoder() -> Callable[[Any], str]:
    """`json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode`.

    Its `encode` builds a new C encoder on every call; this builds the same one once (circular
    references need no check: `_check` has walked the value first), which halves the cost of a
    small object. Falls back to `encode` where the interpreter has no C encoder.
    """
    slow = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return slow
    try:
        fast = make(
            None, _refuse, json.encoder.encode_basestring, None, ":", ",", True, False, False
        )
    except TypeError:  # another interpreter's signature
        return slow
    join = "".join

    def encode(value: Any) -> str:
        return join(fast(value, 0))

    return encode


_ENCODE = _make_encoder()


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of `value`; NotCanonical for floats, huge ints and non-JSON types.

    For values whose keys are all in the BMP (all of ours), Python's C encoder with sorted keys,
    no ASCII escaping and compact separators writes exactly the JCS bytes, several times faster
    than the pure-Python `rfc8785` package; the tests hold the two equal. Other values go
    through `rfc8785` itself.
    """
    simple = _check(value)
    try:
        if simple:
            return _ENCODE(value).encode("utf-8")
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, TypeError) as exc:
        raise NotCanonical(f"no canonical form: {exc}") from exc


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z, the one spelling entries use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_bytes(
    *,
    log: str,
    seq: int,
    timestamp: datetime | str,
    kind: str,
    subject: Mapping[str, int],
    payload: Mapping[str, Any],
) -> bytes:
    """The leaf input: binds the entry to this log (origin) and to its position (seq).

    `timestamp` may be given already formatted (a batch shares one).
    """
    return canonical_json(
        {
            "v": ENTRY_VERSION,
            "log": log,
            "seq": seq,
            "timestamp": timestamp if isinstance(timestamp, str) else format_timestamp(timestamp),
            "kind": kind,
            "subject": dict(subject),
            "payload": dict(payload),
        }
    )


_NAMES: dict[str, bytes] = {}  # plain ASCII names seen in subjects, as '"name":'


def _int_object(value: Mapping[str, int]) -> bytes:
    """`canonical_json` of a subject (plain names to safe integers) without the general walk.

    Anything else (odd keys, non-integers) goes the general way, which accepts or refuses it.
    """
    parts = []
    for key, item in value.items():
        name = _NAMES.get(key) if type(key) is str else None
        if name is None:
            if not (type(key) is str and key.isascii() and key.isidentifier()):
                return canonical_json(dict(value))
            name = b'"%b":' % key.encode()
            if len(_NAMES) < 256:
                _NAMES[key] = name
        if not (type(item) is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER):
            return canonical_json(dict(value))
        parts.append(b"%b%d" % (name, item))
    if len(parts) == 1:
        return b"{%b}" % parts[0]
    parts.sort()  # ASCII names: byte order is JCS (UTF-16) order, and '"' sorts first
    return b"{%b}" % b",".join(parts)


EntryEncoder = Callable[[int, str, Mapping[str, int], Mapping[str, Any]], bytes]


def entry_encoder(*, log: str, timestamp: datetime | str) -> EntryEncoder:
    """`entry_bytes` for a batch sharing one log and timestamp: (seq, kind, subject, payload).

    The envelope's keys are fixed ASCII names, so its JCS form is a template: the shared parts
    are encoded once and only `subject` and `payload` go through `canonical_json` per entry (JCS
    is compositional: a member's canonical bytes do not depend on where it sits). The tests hold
    it equal to `entry_bytes`.
    """
    stamp = timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)
    log_json = canonical_json(log)
    end = b',"timestamp":%b,"v":%d}' % (canonical_json(stamp), ENTRY_VERSION)
    kinds: dict[str, bytes] = {}
    template = b'{"kind":%b,"log":%b,"payload":%b,"seq":%d,"subject":%b%b'

    def encode(
        seq: int, kind: str, subject: Mapping[str, int], payload: Mapping[str, Any]
    ) -> bytes:
        if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
            raise NotCanonical("seq must be an integer in the JSON-safe range")
        kind_json = kinds.get(kind)
        if kind_json is None:
            kind_json = kinds[kind] = canonical_json(kind)
        return template % (
            kind_json,
            log_json,
            canonical_json(payload if type(payload) is dict else dict(payload)),
            seq,
            _int_object(subject),
            end,
        )

    return encode
