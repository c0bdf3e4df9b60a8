"""Page cursors: the one codec every keyset-paged list uses (pages and the API alike).

A cursor is the position after which the next page starts, signed with the app's SECRET_KEY
(itsdangerous) and a salt naming the list it belongs to. A cursor we did not hand out, one
altered by a byte, or one taken from another list is simply invalid (a 400), so nothing a
client sends can reach the database as a number it chose.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from marketplace.db import MAX_ROW_ID

MAX_CURSOR_LENGTH = 500


class InvalidCursor(ValueError):
    """The cursor was not issued for this list (tampered, truncated or from elsewhere)."""

    def __init__(self, message: str = "This cursor was not issued for this list.") -> None:
        super().__init__(message)


def _serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt=f"cursor:{purpose}")


def encode(purpose: str, payload: dict[str, Any]) -> str:
    """An opaque, signed cursor for the list named `purpose` carrying `payload` (JSON values)."""
    return str(_serializer(purpose).dumps(payload))


def decode(purpose: str, cursor: str) -> dict[str, Any]:
    """The payload of a cursor issued by `encode(purpose, ...)`; InvalidCursor otherwise."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        payload = _serializer(purpose).loads(cursor)
    except (BadData, UnicodeError, ValueError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(payload, dict):
        raise InvalidCursor()
    return payload


def is_row_id(value: Any) -> TypeGuard[int]:
    """A value that can be an INTEGER primary key (not a bool, not beyond 32 bits)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def encode_after(purpose: str, last_id: int) -> str:
    """A cursor continuing an id-ordered list after the row `last_id`."""
    return encode(purpose, {"after": last_id})


def decode_after(purpose: str, cursor: str | None) -> int | None:
    """The id to continue after (None: the first page); InvalidCursor for a foreign cursor."""
    if cursor is None or cursor == "":
        return None
    after = decode(purpose, cursor).get("after")
    if not is_row_id(after):
        raise InvalidCursor()
    return after
