"""Years from museums' date fields: free text ("c. 1615\u201375") and structured year values.

Conventions, shared by every adapter:

* Years are integers; negative means BCE with no year zero (-206 is 206 BCE, 8 is 8 CE).
* Circa and question marks are ignored: "c. 1615\u201375" and "?1791" give their stated years.
* Ranges: "1826\u20137" is 1826-1827, "1830\u201341" is 1830-1841; an en/em dash, "to", "or"
  and "/" all join a range ("1786 or 1800" is 1786-1800, "1628/29" is 1628-1629).
* The first clause that holds a date is the date. Later clauses (after "," or ";" or in
  parentheses) widen it only when they are bare dates ("c.1803, c.1805\u201310" is 1803-1810);
  a clause that starts with a word ("reprinted 1892", "cast 1963", "(produced 1940-41)") is
  about a later state of the object and is ignored, so "1826\u20137, reprinted 1892" is 1826-1827.
* Centuries: "16th century" is 1500-1599, "16th\u201317th century" 1500-1699, "5th century BCE"
  -500 to -401. Parts of a century: early = 00-33, mid = 33-66, late = 66-99, first half =
  00-49, second (last, latter) half = 50-99, quarters 00-24, 25-49, 50-74, 75-99.
* Decades: "1380s" is 1380-1389, but "1700s" is the century 1700-1799 (the Cleveland Museum's
  own reading of it).
* Open ends: "before 1800", "by 1800", "1635 or earlier" give (None, 1800/1635); "after
  1836", "no earlier than 1850", "1900 or later" give (1836/1850/1900, None). We do not guess
  how far "before" reaches.
* A dynasty's or period's own span ("Edo period (1615\u20131868)") is used only when nothing
  more precise is given ("Edo period (1615\u20131868), 17th century" is 1600-1699).
* No digits ("n.d.", "date not known", "late Qing?") gives (None, None). Day and month are
  dropped ("22 Apr 1958", "May 12, 1890", "6/15/1890", "1958-04-22" are all 1958).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from .base import Malformed

YearRange = tuple[int | None, int | None]

MAX_YEAR = 2100  # four-digit numbers past this are ids or typos, not years

_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ISO_DATE = re.compile(r"\b(\d{4})-\d{2}-\d{2}\b")
_NUMERIC_DATE = re.compile(r"\b\d{1,2}/(?:\d{1,2}/)?(\d{4})\b")
_DAY_BEFORE_MONTH = re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?={_MONTH}\b)")
_DAY_AFTER_MONTH = re.compile(rf"\b({_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?![\d/-])")
_CIRCA = re.compile(r"(?<![a-z.])(?:circa\b|ca\.|ca\b|c\.(?!\s?e\b|\s?e\.)|c(?=\d))\s*")
_CENTURY_ABBREVIATION = re.compile(r"(\d(?:st|nd|rd|th))\s*(?:cent\.?|c\.?)(?![a-z])")
_BCE = re.compile(r"(?<![a-z])b\.?\s?c\.?(?:\s?e\.?)?(?![a-z])")
_CE = re.compile(r"(?<![a-z])(?:c\.?\s?e\.?|a\.?\s?d\.?)(?![a-z])")
_CONTEXT = re.compile(r"\b(?:period|dynasty|reign|era|kingdom)\s*\(([^)]*)\)")
_WITH_TAIL = re.compile(r"\bwith\b.*$")
_CLAUSE_SPLIT = re.compile(r"[,;()]")
_OPEN_START = re.compile(r"^(?:before|by|until|no later than|not later than|not after)\b")
_OPEN_END = re.compile(r"^(?:after|since|no earlier than|not earlier than|not before)\b")
_OR_EARLIER = re.compile(r"\bor (?:earlier|before)\s*$")
_OR_LATER = re.compile(r"\bor (?:later|after)\s*$")
_TOKEN = re.compile(
    r"(?P<ord>\d{1,2})(?:st|nd|rd|th)\b"
    r"|(?P<num>\d{1,4})(?P<decade>s)?(?:\s*(?P<era>bce|ce)\b)?"
    r"|(?P<word>[a-z]+)"
    r"|(?P<join>[-/])"
)
_PARTS = {  # (first, last) year within a century
    "whole": (0, 99),
    "early": (0, 33),
    "mid": (33, 66),
    "late": (66, 99),
    "h1": (0, 49),
    "h2": (50, 99),
    "q1": (0, 24),
    "q2": (25, 49),
    "q3": (50, 74),
    "q4": (75, 99),
}
_PART_WORDS = {"early": "early", "mid": "mid", "middle": "mid", "late": "late"}
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 4, "latter": 4}


class BadYear(ValueError):
    """A structured year field holds something that is not a year."""


@functools.lru_cache(maxsize=8192)  # a collection repeats its date strings ("1851", "c. 1900")
def parse_date_text(text: str | None) -> YearRange:
    """(first year, last year) of a free-text date, either end None when unknown or open."""
    if not text:
        return None, None
    normal = _normalise(text)
    if not any(ch.isdigit() for ch in normal):
        return None, None
    context = _CONTEXT.findall(normal)
    main = _CONTEXT.sub(" ", normal)
    found = _parse_clauses(main)
    if found is None and context:
        found = _parse_clauses(context[-1])
    return found if found is not None else (None, None)


def coerce_year(value: object) -> int | None:
    """A structured year (int, integral float or digit string); None when empty.

    Raises BadYear for anything else ("c. 1800", 1800.5, true, 123456), so adapters can
    report it.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and abs(value) < 10_000:
            return int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,4}\s*", value):
        return int(value)
    raise BadYear(repr(value))


def year_of_iso_date(value: object) -> int | None:
    """The year of an ISO 8601 date such as "1855-01-01" or "-0206-01-05"; None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d{4})(?:-\d{2}(?:-\d{2})?)?(?:[T ][\d:.]+Z?)?\s*", value)
        if match:
            return int(match.group(1))
    raise BadYear(repr(value))


def choose_years(start: object, end: object, text: str | None) -> YearRange:
    """Structured years when the source gives readable ones, else the years of its date text.

    An unreadable structured value ("no date", "c.1997-9", 71959) never costs the record: the
    date text is read instead, then whatever structured year was readable, then no years. A
    reversed pair is put in order.
    """
    first, first_ok = _readable_year(start)
    last, last_ok = _readable_year(end)
    if not (first_ok and last_ok):
        from_text = parse_date_text(text)
        if from_text != (None, None):
            return from_text
    elif first is None and last is None:
        return parse_date_text(text)
    if first is not None and last is not None and first > last:
        first, last = last, first
    return first, last


def _readable_year(value: object) -> tuple[int | None, bool]:
    """(year, True) for a structured year or an empty value; (None, False) for anything else.

    Sources give years as numbers, digit strings or ISO dates ("1855-01-01").
    """
    for read in (coerce_year, year_of_iso_date):
        try:
            return read(value), True
        except BadYear:
            continue
    return None, False


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).lower()
    text = text.replace("?", " ")
    text = _ISO_DATE.sub(r"\1", text)
    text = _NUMERIC_DATE.sub(r"\1", text)
    text = _DAY_BEFORE_MONTH.sub(" ", text)
    text = _DAY_AFTER_MONTH.sub(r"\1 ", text)
    text = _CENTURY_ABBREVIATION.sub(r"\1 century", text)
    text = _CIRCA.sub(" ", text)
    text = _BCE.sub(" bce ", text)
    text = _CE.sub(" ce ", text)
    return re.sub(r"\s+", " ", text).strip()


def _parse_clauses(text: str) -> YearRange | None:
    found: YearRange | None = None
    for clause in _CLAUSE_SPLIT.split(text):
        clause = _WITH_TAIL.sub("", clause).strip()
        if found is not None and not clause[:1].isdigit():
            continue  # "reprinted 1892", "cast 1963": a later state of the object
        span = _parse_clause(clause)
        if span is None:
            continue
        found = span if found is None else _widen(found, span)
    return found


def _widen(a: YearRange, b: YearRange) -> YearRange:
    start = None if a[0] is None or b[0] is None else min(a[0], b[0])
    end = None if a[1] is None or b[1] is None else max(a[1], b[1])
    return start, end


def _parse_clause(clause: str) -> YearRange | None:
    spans: list[tuple[int, int]] = []
    is_century = "centur" in clause
    parts: list[str] = []  # "early", "h2", ... waiting for their century
    pending_ordinal: int | None = None  # "second" waiting for "half" or "quarter"
    last: tuple[int, int, bool] | None = None  # the previous year: value, digits, explicit era
    joined = False  # the previous token was "-", "/", "to", "or" or "and"
    tokens = list(_TOKEN.finditer(clause))
    for index, token in enumerate(tokens):
        word, ordinal, digits = token.group("word"), token.group("ord"), token.group("num")
        if token.group("join") is not None or word in ("to", "or", "and"):
            joined = True
        elif word is not None:
            if word in _PART_WORDS:
                parts.append(_PART_WORDS[word])
            elif word in _ORDINAL_WORDS:
                pending_ordinal = _ORDINAL_WORDS[word]
            elif word in ("half", "quarter") and pending_ordinal is not None:
                half = "h1" if pending_ordinal == 1 else "h2"
                parts.append(half if word == "half" else f"q{pending_ordinal}")
                pending_ordinal = None
        elif ordinal is not None:
            following = tokens[index + 1].group("word") if index + 1 < len(tokens) else None
            if is_century and following != "dynasty":
                spans.append(_century(int(ordinal), parts, _century_is_bce(tokens, index)))
            parts, joined = [], False
        elif digits is not None:
            year = _year(token, spans, last if joined else None)
            if year is not None:
                value = year[0]
                if token.group("decade"):
                    spans.append((value, value + (99 if value % 100 == 0 else 9)))
                else:
                    spans.append((value, value))
                last = year
            joined = False
    if not spans:
        return None
    start: int | None = min(s for s, _ in spans)
    end: int | None = max(e for _, e in spans)
    if _OPEN_START.search(clause) or _OR_EARLIER.search(clause):
        start = None
    elif _OPEN_END.search(clause) or _OR_LATER.search(clause):
        end = None
    return start, end


def _year(
    token: re.Match[str], spans: list[tuple[int, int]], previous: tuple[int, int, bool] | None
) -> tuple[int, int, bool] | None:
    """(signed value, digits, explicit era) of a number token, or None when it is no year.

    `previous` is the year this one is joined to by a dash, "to" or "or", if any; an era on the
    second year covers both ("1340-1197 BCE") and a short second year takes the first one's
    leading digits ("1826-7"). May flip the sign of the last span for a BCE range.
    """
    digits = token.group("num")
    era = token.group("era")
    bce = era == "bce"
    if previous is not None and not token.group("decade"):
        previous_value, previous_digits, previous_explicit = previous
        if bce and not previous_explicit and previous_value > 0 and spans:
            start, end = spans[-1]
            spans[-1] = (-end, -start)
            previous_value = -previous_value
        same_era = era is None or bce == (previous_value < 0)
        if len(digits) < previous_digits and same_era:
            return _expand_short(previous_value, int(digits), len(digits)), len(digits), True
    if len(digits) < 3 and era is None:
        return None  # a bare "12" is a day or a count, not a year
    value = int(digits)
    if not bce and value > MAX_YEAR:
        return None
    return (-value if bce else value), len(digits), era is not None


def _expand_short(full: int, short: int, digits: int) -> int:
    """The end of "1826-7" (1827), "1899-05" (1905) or, BCE, "1340-97" (-1297)."""
    magnitude = abs(full)
    scale: int = 10**digits
    candidate = magnitude - magnitude % scale + short
    if full >= 0:
        return candidate + scale if candidate < magnitude else candidate
    return -(candidate - scale if candidate > magnitude else candidate)


def _century_is_bce(tokens: list[re.Match[str]], index: int) -> bool:
    for token in tokens[index + 1 :]:
        word = token.group("word")
        if word in ("bce", "ce"):
            return word == "bce"
        if token.group("num") is not None:
            return token.group("era") == "bce"
    return False


def _century(number: int, parts: list[str], bce: bool) -> tuple[int, int]:
    first = _PARTS[parts[0] if parts else "whole"][0]
    last = _PARTS[parts[-1] if parts else "whole"][1]
    base = -(number * 100) if bce else (number - 1) * 100
    start, end = base + first, base + last
    if not bce and start == 0:
        start = 1
    return start, end


@dataclass(frozen=True)
class Basics:
    """What every record must have before its licence is even looked at."""

    title: str
    source_id: str
    date_text: str
    year_start: int | None
    year_end: int | None


def record_basics(
    line: int, *, title: str, source_id: str, date_text: str, start: object, end: object
) -> Basics | Malformed:
    """Title, id and years of a record (values already picked from the source's own fields),
    or why the record is malformed: "missing title" or "missing id". Years never make a record
    malformed (see `choose_years`)."""
    if not title:
        return Malformed(line, "missing title")
    if not source_id:
        return Malformed(line, "missing id")
    year_start, year_end = choose_years(start, end, date_text)
    return Basics(title, source_id, date_text, year_start, year_end)
