"""Forms of the buyers' pages."""

from __future__ import annotations

from babel import Locale
from wtforms import (
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, ValidationError

from marketplace import amounts
from marketplace.buyers.eligibility import INTENDED_USE_LABELS
from marketplace.buyers.services import OrderStateError
from marketplace.db import parse_row_id
from marketplace.forms import Form


def _row_id(value: object) -> int:
    """A collection id as the form posts it; WTForms reports the ValueError as a bad choice."""
    if isinstance(value, int):
        return value
    row_id = parse_row_id(str(value))
    if row_id is None:
        raise ValueError("not a collection id")
    return row_id


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class BundleForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    intended_uses = MultiCheckboxField(
        "Intended use (items whose terms do not permit all of it are left out)",
        choices=list(INTENDED_USE_LABELS.items()),
    )
    source = RadioField(
        "Build it from",
        choices=[
            ("collection", "A collection"),
            ("query", "A catalog search"),
            ("work_ids", "A list of work ids"),
        ],
        default="collection",
    )
    collection_id = SelectField("Collection", coerce=_row_id, choices=[], validate_choice=False)
    query = StringField(
        "Search (as in the catalog's address, e.g. q=harbour&license=public_domain)",
        validators=[Length(max=2000)],
    )

    def validate_intended_uses(self, field: MultiCheckboxField) -> None:
        # Not DataRequired: it would mark every checkbox `required` in the page.
        if not field.data:
            raise ValidationError("Declare at least one intended use.")

    work_ids = TextAreaField(
        "Work ids (as the catalog shows them), separated by commas, spaces or lines",
        validators=[Length(max=200_000)],
    )


class RefundForm(Form):
    amount = StringField("Amount (empty: everything not yet refunded)", validators=[Length(max=20)])
    reason = StringField("Reason", validators=[Length(max=200)])

    def amount_minor(self, currency: str, locale: Locale) -> int | None:
        """The amount typed, read in the admin's locale; None for "everything left"."""
        text = (self.amount.data or "").strip()
        if not text:
            return None
        try:
            return amounts.parse_amount(text, currency, locale)
        except amounts.AmountInvalid as exc:
            raise OrderStateError(str(exc)) from exc


class CheckoutForm(Form):
    quote_id = HiddenField(validators=[DataRequired(), Length(max=40)])
