"""Keyset pagination: the cursor is an opaque encoding of the last id seen (never OFFSET)."""

from __future__ import annotations

import base64
import binascii
import json

from marketplace.errors import APIError


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue after; 400 invalid_cursor for anything we did not hand out."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise APIError(400, "invalid_cursor", "This cursor was not issued by this API.") from exc
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise APIError(400, "invalid_cursor", "This cursor was not issued by this API.")
    return after
