"""The shared date parser: free-text dates and structured years, as a table."""

from __future__ import annotations

import json

import pytest

from marketplace.catalog.sources import get_adapter
from marketplace.catalog.sources.base import StockFields
from marketplace.catalog.sources.dates import (
    BadYear,
    choose_years,
    coerce_year,
    parse_date_text,
    year_of_iso_date,
)
from tests.catalog.sources_support import shared_data

EN = "\u2013"  # en dash
EM = "\u2014"  # em dash

DATE_TEXTS = [
    # plain years and ranges, short second years, dashes of every kind
    ("1838", (1838, 1838)),
    (f"c. 1615{EN}75", (1615, 1675)),
    (f"1826{EN}7, reprinted 1892", (1826, 1827)),
    ("1826-7", (1826, 1827)),
    (f"1799{EN}1800", (1799, 1800)),
    (f"1830{EM}41", (1830, 1841)),
    ("1899-05", (1899, 1905)),
    ("1628/29", (1628, 1629)),
    ("1786 or 1800", (1786, 1800)),
    ("c. 1629 or 1632", (1629, 1632)),
    ("1920 to 1925", (1920, 1925)),
    # circa and doubt change nothing
    ("c.1834", (1834, 1834)),
    ("ca. 1665", (1665, 1665)),
    ("circa 1700", (1700, 1700)),
    ("C. 1920-1924", (1920, 1924)),
    ("?1791", (1791, 1791)),
    (f"?c.1799{EN}1801", (1799, 1801)),
    ("1954?", (1954, 1954)),
    # later clauses widen only when they are bare dates
    (f"c.1803, c.1805{EN}10", (1803, 1810)),
    (f"1995{EN}6, 2007", (1995, 2007)),
    ("1988, 1991", (1988, 1991)),
    ("1976, printed 2003", (1976, 1976)),
    (f"1937{EN}8, cast 1963", (1937, 1938)),
    (f"1763, published 1800{EN}07", (1763, 1763)),
    (f"published 1820, reprinted 1978{EN}9", (1820, 1820)),
    ("first published 1846, reprinted 1993", (1846, 1846)),
    ("published 1843", (1843, 1843)),
    ("designed 1925, manufactured 1930", (1925, 1925)),
    ("1938 (produced 1940-41)", (1938, 1938)),
    ("1925 (designed) c. 1930 (manufactured)", (1925, 1930)),
    ("1952, probably printed later", (1952, 1952)),
    ("Project: 1920-1925; Drawn 1926", (1920, 1925)),
    ("c. 1340 with later 19th century mount", (1340, 1340)),
    # centuries, parts of centuries, decades
    ("16th century", (1500, 1599)),
    ("1st century", (1, 99)),
    ("9th century", (800, 899)),
    ("19th c.", (1800, 1899)),
    (f"16th{EN}17th century", (1500, 1699)),
    ("early 19th century", (1800, 1833)),
    ("mid 18th century", (1733, 1766)),
    ("late 19th century", (1866, 1899)),
    ("c. mid- to late-19th century", (1833, 1899)),
    ("early- to mid-19th century", (1800, 1866)),
    ("late 18th-early 19th century", (1766, 1833)),
    ("first half of the 18th century", (1700, 1749)),
    ("c. last half of the 18th century", (1750, 1799)),
    ("c. second half of the 17th century-early 18th century", (1650, 1733)),
    ("first quarter of the 20th century", (1900, 1924)),
    ("1380s", (1380, 1389)),
    ("c. 1920s-1930s", (1920, 1939)),
    ("1700s", (1700, 1799)),
    # BCE, with the era on one or both ends
    ("c. 1000 BCE", (-1000, -1000)),
    ("400-375 BC", (-400, -375)),
    ("c. 1391-1353 BC", (-1391, -1353)),
    ("1340-97 BCE", (-1340, -1297)),
    ("206 BCE-220 CE", (-206, 220)),
    ("Roman Period, 30 BCE- 325 CE", (-30, 325)),
    ("possibly Western Han Dynasty, 202 BCE-8 CE", (-202, 8)),
    ("1300-1150 B.C.E.", (-1300, -1150)),
    ("5th century BCE", (-500, -401)),
    ("c. 999 CE", (999, 999)),
    ("A.D. 1066", (1066, 1066)),
    # periods and dynasties: their span only when nothing finer is given
    ("26th Dynasty (664-525 BCE)", (-664, -525)),
    ("New Kingdom, 18th Dynasty (c. 1570-1320 BCE), 1450-1410 BCE", (-1450, -1410)),
    ("Shang Period (c. 1600-1045 BCE), 1300-1150 B.C.E.", (-1300, -1150)),
    ("Qianlong period (1736-1795)", (1736, 1795)),
    (f"Edo period (1615{EN}1868), 17th century", (1600, 1699)),
    ("Edo period (1615-1868), c. 1800-1820", (1800, 1820)),
    ("Northern Song Dynasty, 960-1127", (960, 1127)),
    # open ends
    ("before 1800", (None, 1800)),
    ("Before 1750", (None, 1750)),
    ("by 1890", (None, 1890)),
    ("1635 or earlier", (None, 1635)),
    ("after 1836", (1836, None)),
    ("after c.1830", (1830, None)),
    ("no earlier than 1850", (1850, None)),
    ("1900 or later", (1900, None)),
    # days and months are dropped
    ("22 Apr 1958", (1958, 1958)),
    ("May 12, 1890", (1890, 1890)),
    ("October 1950", (1950, 1950)),
    ("Autumn 1950", (1950, 1950)),
    ("6/15/1890", (1890, 1890)),
    ("9/1890", (1890, 1890)),
    ("1958-04-22", (1958, 1958)),
    # nothing to go on
    ("", (None, None)),
    (None, (None, None)),
    ("n.d.", (None, None)),
    ("date not known", (None, None)),
    ("not dated", (None, None)),
    ("no date", (None, None)),
    ("late Qing?", (None, None)),
    ("12 prints", (None, None)),
]


@pytest.mark.parametrize(("text", "expected"), DATE_TEXTS)
def test_parse_date_text(text, expected):
    assert parse_date_text(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1838, 1838),
        (-400, -400),
        (1838.0, 1838),
        ("1838", 1838),
        (" -50 ", -50),
        ("", None),
        (None, None),
    ],
)
def test_coerce_year(value, expected):
    assert coerce_year(value) == expected


@pytest.mark.parametrize(
    "value",
    ["c. 1800", "1800s", 1800.5, True, [1800], {"year": 1800}, "18000", 123456, float("nan")],
)
def test_coerce_year_refuses_what_is_not_a_year(value):
    with pytest.raises(BadYear):
        coerce_year(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1855-01-01", 1855),
        ("-0206-01-05", -206),
        ("0220-01-01", 220),
        ("1958", 1958),
        (None, None),
    ],
)
def test_year_of_iso_date(value, expected):
    assert year_of_iso_date(value) == expected


@pytest.mark.parametrize("value", ["sometime", "01/01/1855", 1855])
def test_year_of_iso_date_refuses_other_shapes(value):
    with pytest.raises(BadYear):
        year_of_iso_date(value)


def test_structured_years_win_over_the_text_and_are_put_in_order():
    assert choose_years(1865, 1880, "n.d.") == (1865, 1880)
    assert choose_years(None, None, "c. 1615\u201375") == (1615, 1675)
    assert choose_years(1880, 1865, "") == (1865, 1880)
    assert choose_years(1850, None, "1850-1860") == (1850, None)


@pytest.mark.parametrize(
    ("start", "end", "text", "expected"),
    [
        ("no date", "no date", "1997", (1997, 1997)),
        ("c.1997-9", None, "c. 1997\u201399", (1997, 1999)),
        ("71959-07-01", "1960-01-01", "July 1959", (1959, 1959)),
        ("about 1850", 1860, "n.d.", (None, 1860)),  # no text years: keep the readable one
        ("no date", True, "date not known", (None, None)),
    ],
)
def test_an_unreadable_structured_year_falls_back_to_the_text_then_to_no_years(
    start, end, text, expected
):
    assert choose_years(start, end, text) == expected


def test_an_open_access_record_is_never_lost_for_its_date(tmp_path):
    """A Cleveland record with a broken structured year still loads, with the text's years."""
    record = {
        "id": 9,
        "title": "Dated by text",
        "share_license_status": "CC0",
        "creation_date": "c. 1997\u201399",
        "creation_date_earliest": "c.1997-9",
        "creation_date_latest": "71959-07-01",
        "images": {"web": {"url": "https://cdn.example/9.jpg"}},
    }
    path = tmp_path / "dated.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    adapter = get_adapter("cleveland")
    (raw,) = list(adapter.read(path))
    fields = adapter.map(raw)
    assert isinstance(fields, StockFields)
    assert (fields.year_start, fields.year_end) == (1997, 1999)


def test_tate_date_text_agrees_with_tates_own_date_range():
    """Tate gives both a text and a parsed range: we agree on all but our documented choices."""
    disagreements = []
    with (shared_data() / "tate_artworks.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            date_range = record["dateRange"] or {}
            theirs = (date_range.get("startYear"), date_range.get("endYear"))
            if date_range.get("text") and parse_date_text(record["dateText"]) != theirs:
                disagreements.append(record["dateText"])
    # "after 1836" is open-ended for us; "1976, printed 2003" is 1976 for us (Tate: 1976-2003);
    # a few of Tate's ranges are plainly wrong ("1803\u20135" as 1803-1803, "1979\u201384" as 1984)
    assert len(disagreements) == 38
    assert all(text.startswith("after") or "," in text or EN in text for text in disagreements)
