"""Amounts people type are read by their own locale's rules, or refused with how to write them."""

from __future__ import annotations

import pytest

from marketplace.amounts import (
    AmountInvalid,
    format_amount,
    locale_for,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("2.50", "en_US", 250),
        ("2.5", "en_US", 250),
        ("12", "en_US", 1200),
        ("1,000.00", "en_US", 100_000),
        ("$3", "en_US", 300),
        ("USD 4.20", "en_US", 420),
        ("2,50", "de_DE", 250),
        ("1.000,00", "de_DE", 100_000),
        ("3 $", "de_DE", 300),
        ("1 000,50", "fr_FR", 100_050),  # an ordinary space where French groups with U+202F
        ("1\u202f000,50", "fr_FR", 100_050),
    ],
)
def test_amounts_read_by_the_locale_s_rules(text: str, locale: str, minor: int) -> None:
    assert parse_amount(text, "usd", locale) == minor


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("2,50", "en_US"),  # the price that became $250.00
        ("1,5", "en_US"),
        ("2.50", "de_DE"),
        ("1,000.00", "de_DE"),
        ("€3", "en_US"),  # another currency's sign
        ("3 EUR", "en_US"),
        ("-2", "en_US"),
        ("1E3", "en_US"),
        ("NaN", "en_US"),
        ("2.505", "en_US"),  # a dollar has cents, not tenths of cents
        ("", "en_US"),
        ("  ", "en_US"),
        ("two", "en_US"),
        ("2\x0050", "en_US"),
    ],
)
def test_ambiguous_or_foreign_amounts_are_refused(text: str, locale: str) -> None:
    with pytest.raises(AmountInvalid):
        parse_amount(text, "usd", locale)


def test_a_refusal_says_how_to_write_the_amount_in_that_locale() -> None:
    with pytest.raises(AmountInvalid) as english:
        parse_amount("2,50", "usd", "en_US")
    assert str(english.value) == (
        "“2,50” could be read more than one way. Here “.” marks the decimals and “,” only "
        "separates thousands. Write the amount in USD as 2.50 or 1,000.00."
    )
    with pytest.raises(AmountInvalid) as german:
        parse_amount("2.50", "usd", "de_DE")
    assert "Write the amount in USD as 2,50 or 1.000,00." in str(german.value)


def test_currencies_keep_their_own_number_of_decimals() -> None:
    assert parse_amount("250", "jpy", "ja_JP") == 250
    with pytest.raises(AmountInvalid):
        parse_amount("2.5", "jpy", "ja_JP")
    assert format_amount(250, "jpy", "en_US") == "¥250"


def test_amounts_are_written_back_in_the_reader_s_locale() -> None:
    assert format_amount(250, "usd", "en_US") == "$2.50"
    assert format_amount(250, "usd", "de_DE") == "2,50\xa0$"
    assert format_amount(100_000, "usd", "en_US") == "$1,000.00"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (["de-DE", "en"], "de_DE"),
        (["fr"], "fr"),
        (["en-GB"], "en_GB"),
        ([], "en_US"),
        (["*"], "en_US"),
        (["xx-YY"], "en_US"),
    ],
)
def test_the_locale_follows_accept_language_with_a_default(
    accept: list[str], expected: str
) -> None:
    assert str(locale_for(accept, "en_US")) == expected
