"""Amounts typed by people, read and written in their own locale (Babel's CLDR data).

Pure: Babel and the standard library. A price decides what a buyer pays and what a terms
version records, so reading one never guesses: text the locale's rules do not read as exactly
one amount is refused with a sentence saying how to write it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers
from babel.numbers import (
    NumberFormatError,
    format_currency,
    format_decimal,
    get_currency_name,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)

FALLBACK_LOCALE = "en_US"
# Spaces people type where a locale groups digits with a (narrow) no-break space.
_SPACES = (" ", "\u00a0", "\u202f", "\u2009")


class AmountInvalid(ValueError):
    """Text that is not one unambiguous amount; the message says how to write it."""


def locale_for(preferred: Iterable[str], default: str = FALLBACK_LOCALE) -> Locale:
    """The best locale Babel knows for an Accept-Language list (best first), else `default`."""
    try:
        fallback = Locale.parse(default)
    except (ValueError, UnknownLocaleError):
        fallback = Locale.parse(FALLBACK_LOCALE)
    wanted = [tag.replace("_", "-") for tag in preferred if tag and tag != "*"]
    found = Locale.negotiate(wanted, _available(), sep="-") if wanted else None
    return found or fallback


def _available() -> list[str]:
    return [identifier.replace("_", "-") for identifier in locale_identifiers()]


def minor_digits(currency: str) -> int:
    """How many decimals the currency has (USD 2, JPY 0), per CLDR."""
    return int(get_currency_precision(currency.upper()))


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_digits(currency))


def format_amount(amount_minor: int, currency: str, locale: Locale | str) -> str:
    """The amount as the locale writes money: $2.50, 2,50 $, 2,50 $US."""
    return str(format_currency(to_decimal(amount_minor, currency), currency.upper(), locale=locale))


def format_number(amount_minor: int, currency: str, locale: Locale | str) -> str:
    """The amount without a currency sign, as `parse_amount` reads it back: 1,000.00 or 2,50."""
    digits = minor_digits(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return str(format_decimal(to_decimal(amount_minor, currency), format=pattern, locale=locale))


def example_amounts(currency: str, locale: Locale | str) -> str:
    """Two amounts written as `locale` reads them, for hints: '2.50 or 1,000.00'."""
    scale = 10 ** minor_digits(currency)
    small = format_number(scale * 5 // 2, currency, locale)
    large = format_number(scale * 1000, currency, locale)
    return f"{small} or {large}"


def parse_amount(text: str, currency: str, locale: Locale | str) -> int:
    """`text` in minor units of `currency`, read with `locale`'s separators.

    The currency's own symbol or code may surround the number; any other letter or sign is
    refused, as is text the locale reads only by guessing (``2,50`` in en_US), more decimals
    than the currency has, and anything but a plain non-negative number (no exponents, NaN).
    Raises AmountInvalid with a sentence that says how to write the amount.
    """
    loc = Locale.parse(locale)
    code = currency.upper()
    how = f"Write the amount in {code} as {example_amounts(currency, loc)}."
    cleaned = _without_currency(text.strip(), code, loc)
    if not cleaned:
        raise AmountInvalid(f"Give an amount. {how}")
    decimal_mark, group_mark = get_decimal_symbol(loc), get_group_symbol(loc)
    if group_mark in _SPACES:
        for space in _SPACES:
            cleaned = cleaned.replace(space, group_mark)
    allowed = set("0123456789") | {decimal_mark, group_mark}
    if not set(cleaned) <= allowed:
        raise AmountInvalid(
            f"“{_shown(text)}” is not a plain amount: prices are in {code} "
            f"({get_currency_name(code, locale=loc)}); write only the number. {how}"
        )
    try:
        value = parse_decimal(cleaned, loc, strict=True)
    except NumberFormatError as exc:
        raise AmountInvalid(
            f"“{_shown(text)}” could be read more than one way. Here “{decimal_mark}” marks the "
            f"decimals and “{group_mark.strip() or 'a space'}” only separates thousands. {how}"
        ) from exc
    places = -int(value.as_tuple().exponent)  # finite: only digits and marks got this far
    if places > minor_digits(code):
        raise AmountInvalid(f"{code} amounts have at most {minor_digits(code)} decimals. {how}")
    return int(value.scaleb(minor_digits(code)))


def _without_currency(text: str, code: str, locale: Locale) -> str:
    """The text without the currency's own symbol or code at either end."""
    marks = {code, get_currency_symbol(code, locale=locale), get_currency_symbol(code, "en")}
    for mark in sorted(marks, key=len, reverse=True):
        if text.upper().startswith(mark.upper()):
            return text[len(mark) :].strip()
        if text.upper().endswith(mark.upper()):
            return text[: -len(mark)].strip()
    return text


def _shown(text: str) -> str:
    """User text fit to repeat in a message: printable and short."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text.strip())
    return printable if len(printable) <= 40 else printable[:39] + "…"
