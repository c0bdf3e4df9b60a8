"""Licence terms as values: what an artist chose, checked, and said in words and in JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from marketplace.amounts import format_amount, parse_amount
from marketplace.artists.models import TermsKind

if TYPE_CHECKING:
    from marketplace.artists.models import WorkTerms

# The one declaration of what a licence can permit and require; forms, models' JSON, the API
# and the catalog filter are derived from these names.
PERMITTED_USES = (
    "generative_training",
    "non_generative_training",
    "commercial_use",
    "fine_tuning",
    "style_imitation",
)
CONDITIONS = ("attribution_required",)
USE_FLAGS = PERMITTED_USES + CONDITIONS
ALL_USES_MASK = (1 << len(PERMITTED_USES)) - 1  # public domain and CC0 permit everything


def uses_mask(uses: Iterable[str]) -> int:
    """Permitted uses as the bit set the catalog stores and filters on (bit i: PERMITTED_USES[i]).
    ValueError for a name that is not a permitted use."""
    mask = 0
    for use in uses:
        mask |= 1 << PERMITTED_USES.index(use)
    return mask


USE_LABELS = {
    "generative_training": "Training generative models",
    "non_generative_training": "Training non-generative / analytic models",
    "commercial_use": "Commercial use of the trained model",
    "fine_tuning": "Fine-tuning",
    "style_imitation": "Prompting with the artist's name or imitating their style",
    "attribution_required": "Attribution required",
}
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"
LICENCE_LOCALE = "en_US"  # licences and summaries are published in English


class TermsInvalid(ValueError):
    """Terms that break a rule; the message is safe to show."""


@dataclass(frozen=True)
class TermsSpec:
    kind: TermsKind
    price_minor: int | None = None
    currency: str = ""  # empty: the marketplace's DEFAULT_CURRENCY
    generative_training: bool = False
    non_generative_training: bool = False
    commercial_use: bool = False
    fine_tuning: bool = False
    style_imitation: bool = False
    attribution_required: bool = False

    def normalized(self, *, min_price: int, max_price: int, currency: str) -> TermsSpec:
        """The canonical form of these terms; TermsInvalid if they break a rule.

        CC0 waives every right (so no attribution can be required); "not available" permits
        nothing; a licence has a price within bounds and permits some kind of training. Every
        price is in the marketplace's `currency` (an empty currency means that one).
        """
        currency = currency.lower()
        if self.currency and self.currency.lower() != currency:
            raise TermsInvalid(f"Prices on this marketplace are in {currency.upper()}.")
        if self.kind is TermsKind.DONATE:
            return TermsSpec(
                TermsKind.DONATE, None, currency, **dict.fromkeys(PERMITTED_USES, True)
            )
        if self.kind is TermsKind.NOT_AVAILABLE:
            return TermsSpec(TermsKind.NOT_AVAILABLE, None, currency)
        price = self.price_minor
        if not isinstance(price, int) or isinstance(price, bool):
            raise TermsInvalid("A licence needs a price per image.")
        if not min_price <= price <= max_price:
            raise TermsInvalid(
                f"The price must be between {format_money(min_price, currency)} and "
                f"{format_money(max_price, currency)} per image."
            )
        if not (self.generative_training or self.non_generative_training):
            raise TermsInvalid(
                "Permit at least one kind of training (generative or non-generative)."
            )
        return replace(self, currency=currency)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TermsSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["kind"] = TermsKind(values.get("kind", TermsKind.NOT_AVAILABLE))
        return cls(**values)

    @property
    def permitted(self) -> tuple[str, ...]:
        """The uses these terms allow, in PERMITTED_USES order (none when not available)."""
        return tuple(use for use in PERMITTED_USES if getattr(self, use))

    @classmethod
    def of(cls, terms: WorkTerms) -> TermsSpec:
        return cls(
            kind=terms.kind,
            price_minor=terms.price_minor,
            currency=terms.currency,
            **{flag: bool(getattr(terms, flag)) for flag in USE_FLAGS},
        )


def format_money(amount_minor: int, currency: str) -> str:
    """Money in published texts (licences, summaries), which are English: $2.50, €1,000.00."""
    return format_amount(amount_minor, currency, LICENCE_LOCALE)


def parse_money(text: str, currency: str) -> int:
    """An amount written the English way ('2.50', '1,000.00') in minor units: for URL filters,
    which are shared between people of any locale. AmountInvalid (a ValueError) otherwise."""
    return parse_amount(text, currency, LICENCE_LOCALE)


def summary(spec: TermsSpec) -> str:
    if spec.kind is TermsKind.DONATE:
        return "Donated (CC0 1.0)"
    if spec.kind is TermsKind.NOT_AVAILABLE:
        return "Not available for training"
    return f"Licensed, {format_money(spec.price_minor or 0, spec.currency)} per image"


def licence_text(spec: TermsSpec, *, work_title: str, artist_name: str, version: int) -> str:
    """The human-readable licence for one terms version (what the terms URL shows)."""
    head = f"“{work_title}” by {artist_name} — terms version {version}"
    if spec.kind is TermsKind.DONATE:
        return (
            f"{head}\n\nThe artist dedicates this work to the public domain under the Creative "
            f"Commons CC0 1.0 Universal dedication ({CC0_URL}). You may copy, modify and use it, "
            "including for training any kind of AI model, for any purpose, without asking "
            "permission or giving credit."
        )
    if spec.kind is TermsKind.NOT_AVAILABLE:
        return (
            f"{head}\n\nThe artist does NOT consent to the use of this work for training, "
            "fine-tuning or evaluating AI or machine-learning models, or for text and data "
            "mining. The work is listed in the marketplace's public opt-out registry."
        )
    allowed = [USE_LABELS[f] for f in PERMITTED_USES if getattr(spec, f)]
    refused = [USE_LABELS[f] for f in PERMITTED_USES if not getattr(spec, f)]
    lines = [
        head,
        "",
        "The artist licenses this work for AI training to a buyer who includes it in a dataset "
        "purchased through the marketplace, at "
        f"{format_money(spec.price_minor or 0, spec.currency)} per image per dataset sale, "
        "under these conditions.",
        "",
        "Permitted:",
        *(f"  - {item}" for item in allowed),
        "Not permitted:",
        *(f"  - {item}" for item in refused or ["(nothing else is restricted)"]),
        "",
        "Attribution: "
        + (
            f"credit “{artist_name}” wherever the dataset's sources are listed."
            if spec.attribution_required
            else "not required."
        ),
        "",
        "No other rights are granted: the licence does not transfer copyright, and it covers "
        "only the copy delivered in the purchased dataset.",
    ]
    return "\n".join(lines)
