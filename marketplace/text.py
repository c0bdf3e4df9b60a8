"""The one rule for text that crosses our boundary: no control characters.

PostgreSQL cannot store NUL (U+0000) in text at all, and the other control characters (and
unpaired surrogates, which are not UTF-8) have no place in a title, a name, a filter or an
address: refused where they arrive, every form field, API field, query parameter and CSV cell is
checked by `control_character_problem`, so they never reach a service or the database.
Tab, line feed and carriage return stay allowed: descriptions have lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# C0 controls but TAB, LF and CR; DEL; C1 controls; lone surrogates.
_CLASS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
_CONTROL = re.compile(f"[{_CLASS}\\ud800-\\udfff]")
# The same rule for an OpenAPI document (ECMA-262 regex), so clients and fuzzers know it.
# Surrogates are left out there: ECMA engines read "\ud800-\udfff" as pairs, not a range.
JSON_SCHEMA_PATTERN = f"^[^{_CLASS}]*$"


class ControlCharacters(ValueError):
    """Text with a control character; the message names the character and says what to do."""


def control_character_problem(value: str) -> str | None:
    """A sentence naming the first control character in `value`, or None when it is clean."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (
        f"contains the control character U+{ord(found.group()):04X} at position "
        f"{found.start() + 1}; remove it and try again"
    )


def check_text(value: str) -> str:
    """`value` unchanged, or ControlCharacters (a ValueError, so pydantic and WTForms report it
    on the field)."""
    problem = control_character_problem(value)
    if problem is not None:
        raise ControlCharacters(problem)
    return value


def check_all(value: Any) -> Any:
    """check_text on every string inside `value` (lists, tuples and dict keys and values)."""
    if isinstance(value, str):
        return check_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            check_all(key)
            check_all(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_all(item)
    return value


def first_problem(values: Iterable[str]) -> str | None:
    """The first control-character problem among `values`, or None."""
    for value in values:
        problem = control_character_problem(value)
        if problem is not None:
            return problem
    return None
