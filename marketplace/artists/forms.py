"""Forms of the artist pages."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_wtf.file import FileField, MultipleFileField
from wtforms import BooleanField, Field, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from marketplace.amounts import AmountInvalid, format_amount, format_number, parse_amount
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import USE_FLAGS, USE_LABELS, TermsInvalid, TermsSpec
from marketplace.forms import Form, request_locale
from marketplace.security import BadToken, load_token, sign_token

PRICE_CONFIRMATION = "price-confirmation"
PRICE_CONFIRMATION_MAX_AGE = 24 * 3600  # a form left open overnight asks again


class TermsFields(Form):
    """The terms an artist picks: donate, license (price and uses) or not available.

    A typed price becomes a terms version only once the artist has seen it read back: the form
    answers "that is $2.50 per image" with a signed token of the amount, and a resubmission
    carrying the token of the same amount is the confirmation. `awaiting_confirmation` tells
    the view that nothing is wrong, only unconfirmed.
    """

    kind = RadioField(
        "How may AI developers use it?",
        choices=[
            SelectChoice("donate", "Donate it: CC0 1.0, free in datasets"),
            SelectChoice("license", "License it for AI training at my price"),
            SelectChoice("not_available", "Not available for training (opt-out registry)"),
        ],
        default="not_available",
    )
    price = StringField("Price per image per dataset sale", [Optional()])
    price_confirmation = HiddenField()
    confirm_override = BooleanField(
        "I hold the rights and want to offer it, even though the file's own metadata says "
        "“no AI training”"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = current_app.config
        currency = str(config["DEFAULT_CURRENCY"])
        locale = request_locale()
        low = format_amount(int(config["PRICE_MIN_MINOR"]), currency, locale)
        high = format_amount(int(config["PRICE_MAX_MINOR"]), currency, locale)
        self.price.label.text = (
            f"Price per image per dataset sale ({currency.upper()}, {low} to {high})"
        )
        self.price_placeholder = format_number(250, currency, locale)
        self.price_check: str | None = None  # "that is $2.50 per image", awaiting confirmation

    @property
    def awaiting_confirmation(self) -> bool:
        return self.price_check is not None

    @property
    def use_fields(self) -> list[Field]:
        """The permitted-use checkboxes, in USE_FLAGS order (the last one is a condition)."""
        return [self[flag] for flag in USE_FLAGS]

    def terms_spec(self) -> TermsSpec | None:
        """The chosen terms once valid and confirmed, else None with the reason on the form."""
        config = current_app.config
        currency = str(config["DEFAULT_CURRENCY"]).lower()
        locale = request_locale()
        kind = TermsKind(self.kind.data or "not_available")
        price = None
        if kind is TermsKind.LICENSE:
            try:
                price = parse_amount(self.price.data or "", currency, locale)
            except AmountInvalid as exc:
                self.price.errors = [*self.price.errors, str(exc)]
                return None
        spec = TermsSpec(
            kind=kind,
            price_minor=price,
            currency=currency,
            **{flag: bool(self[flag].data) for flag in USE_FLAGS},
        )
        try:
            spec = spec.normalized(
                min_price=int(config["PRICE_MIN_MINOR"]),
                max_price=int(config["PRICE_MAX_MINOR"]),
                currency=currency,
            )
        except TermsInvalid as exc:
            self.kind.errors = [*self.kind.errors, str(exc)]
            return None
        if price is not None and not self._confirmed(price, currency):
            self.price_confirmation.data = price_token(price, currency)
            self.price_check = price_said(self.price.data or "", price, currency)
            return None
        return spec

    def _confirmed(self, price: int, currency: str) -> bool:
        token = self.price_confirmation.data or ""
        try:
            seen = load_token(PRICE_CONFIRMATION, token, PRICE_CONFIRMATION_MAX_AGE)
        except BadToken:
            return False
        return seen == {"amount_minor": price, "currency": currency}

    def fill_from(self, spec: TermsSpec) -> None:
        """Show `spec`; its price counts as seen, so saving it unchanged needs no confirmation."""
        self.kind.data = spec.kind.value
        self.price.data = ""
        self.price_confirmation.data = ""
        if spec.price_minor is not None:
            self.price.data = format_number(spec.price_minor, spec.currency, request_locale())
            self.price_confirmation.data = price_token(spec.price_minor, spec.currency)
        for flag in USE_FLAGS:
            self[flag].data = getattr(spec, flag)


for _flag in USE_FLAGS:  # one checkbox per use flag, declared once in terms.py
    setattr(TermsFields, _flag, BooleanField(USE_LABELS[_flag]))


def price_token(amount_minor: int, currency: str) -> str:
    """The signed statement "the artist was shown this amount", which confirms it."""
    return sign_token(PRICE_CONFIRMATION, {"amount_minor": amount_minor, "currency": currency})


def price_said(typed: str, amount_minor: int, currency: str) -> str:
    """The amount read back in the artist's locale, with what to do to confirm it."""
    shown = format_amount(amount_minor, currency, request_locale())
    return (
        f"You typed “{typed.strip()[:40]}”: that is {shown} per image per dataset sale. "
        "Check it and submit again to confirm, or correct the price."
    )


class UploadForm(TermsFields):
    images = MultipleFileField("Images (JPEG, PNG, WebP or TIFF; up to 50 MB each)")
    metadata_csv = FileField(
        "Optional CSV with columns filename, title, description, tags (tags comma-separated)"
    )


class WorkDetailsForm(Form):
    title = StringField("Title", [DataRequired(), Length(max=200)])
    description = TextAreaField("Description", [Optional(), Length(max=5000)])
    tags = StringField("Tags (comma-separated)", [Optional(), Length(max=1000)])


class WorkTermsForm(TermsFields):
    pass


class BatchTermsForm(TermsFields):
    pass


class DefaultTermsForm(TermsFields):
    pass


class WithdrawForm(Form):
    """The second step of withdrawing consent: only the confirmation page's button sends it."""

    confirm = HiddenField(validators=[AnyOf(["withdraw"])])


class ProfileForm(Form):
    display_name = StringField("Public name", [DataRequired(), Length(max=120)])
    bio = TextAreaField("About you", [Optional(), Length(max=5000)])
    links = TextAreaField("Links (one per line)", [Optional(), Length(max=3500)])
    country = StringField("Country (two letters, e.g. FR)", [Optional(), Length(max=2)])
