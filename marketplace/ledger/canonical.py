"""The exact bytes of a ledger entry: RFC 8785 (JCS) JSON, with no floats allowed.

JCS fixes key order (UTF-16 code units), escaping and number form, so anyone can re-derive the
bytes from the parsed JSON. We also refuse floats outright: amounts are integers in minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

ENTRY_VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonical(ValueError):
    """A value that has no single canonical JSON form under our rules."""


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonical(f"{path}: integer outside the JSON-safe range")
        return
    if isinstance(value, float):
        raise NotCanonical(f"{path}: floats are not allowed; use integers (minor units)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: object keys must be strings")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NotCanonical(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of `value`; NotCanonical for floats, huge ints and non-JSON types."""
    _check(value, "$")
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise NotCanonical(str(exc)) from exc


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z, the one spelling entries use."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_bytes(
    *,
    log: str,
    seq: int,
    timestamp: datetime,
    kind: str,
    subject: Mapping[str, int],
    payload: Mapping[str, Any],
) -> bytes:
    """The leaf input: binds the entry to this log (origin) and to its position (seq)."""
    return canonical_json(
        {
            "v": ENTRY_VERSION,
            "log": log,
            "seq": seq,
            "timestamp": format_timestamp(timestamp),
            "kind": kind,
            "subject": dict(subject),
            "payload": dict(payload),
        }
    )
