"""Tidy the display strings museums export: whitespace, Unicode form, stray HTML, mis-decodings.

Only what we show is tidied; `raw` keeps each record exactly as read.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# C1 control characters are Windows-1252 bytes decoded as Latin-1 upstream (CMOA has
# "Franti\x9aek" for "Franti\u0161ek" and "\x92" for a right quote): map them back.
_C1_REPAIR = {
    code: bytes([code]).decode("cp1252", errors="ignore") or None for code in range(0x80, 0xA0)
}
_TAG = re.compile(r"<[^>]*>")
_DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII: str.isdigit also takes "²", which int() refuses
_BREAK = re.compile(r"<br\s*/?>|</p>", re.IGNORECASE)


def clean(value: object) -> str:
    """A one-line display string: NFC, C1 controls repaired, runs of whitespace made one space.

    Anything that is not a string or a number (None, lists, objects) gives "".
    """
    if isinstance(value, str) and value.isascii():  # the common case: no C1, already NFC
        return " ".join(value.split())
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    text = unicodedata.normalize("NFC", str(value).translate(_C1_REPAIR))
    return " ".join(text.split())


def clean_html(value: object) -> str:
    """`clean` for text that may hold HTML (<em>, <br>, entities), with the markup removed."""
    if not isinstance(value, str):
        return ""
    return clean(html.unescape(_TAG.sub("", _BREAK.sub(" ", value))))


def first_text(*values: object) -> str:
    """The first value that cleans to a non-empty string, or ""."""
    for value in values:
        text = clean(value)
        if text:
            return text
    return ""


def unique(values: Iterable[str], *, fold_case: bool = True) -> tuple[str, ...]:
    """Non-empty values in first-seen order, without repeats (ignoring case unless told)."""
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        key = value.casefold() if fold_case else value
        if value and key not in seen:
            seen.add(key)
            kept.append(value)
    return tuple(kept)


def dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def as_list(value: Any) -> list[Any]:
    """A JSON array as a list; anything else (None, a string, an object) as []."""
    return value if isinstance(value, list) else []


def positive_int(value: object) -> int | None:
    """A positive whole number from an int or a digit string (sources give sizes as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
        return number if number > 0 else None
    return None
