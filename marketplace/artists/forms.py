"""Forms of the artist pages."""

from __future__ import annotations

from flask_wtf.file import FileField, MultipleFileField
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from marketplace.artists.models import TermsKind
from marketplace.artists.terms import USE_LABELS, TermsSpec, format_money, parse_money
from marketplace.forms import Form


class TermsFields(Form):
    """The terms an artist picks: donate, license (price and uses) or not available."""

    kind = RadioField(
        "How may AI developers use it?",
        choices=[
            SelectChoice("donate", "Donate it: CC0 1.0, free in datasets"),
            SelectChoice("license", "License it for AI training at my price"),
            SelectChoice("not_available", "Not available for training (opt-out registry)"),
        ],
        default="not_available",
    )
    price = StringField("Price per image per dataset sale (USD, 0.05 to 1,000.00)", [Optional()])
    generative_training = BooleanField(USE_LABELS["generative_training"])
    non_generative_training = BooleanField(USE_LABELS["non_generative_training"])
    commercial_use = BooleanField(USE_LABELS["commercial_use"])
    fine_tuning = BooleanField(USE_LABELS["fine_tuning"])
    style_imitation = BooleanField(USE_LABELS["style_imitation"])
    attribution_required = BooleanField(USE_LABELS["attribution_required"])
    confirm_override = BooleanField(
        "I hold the rights and want to offer it, even though the file's own metadata says "
        "“no AI training”"
    )

    def terms_spec(self, currency: str = "usd") -> TermsSpec | None:
        """The chosen terms, or None with an error on the price field."""
        kind = TermsKind(self.kind.data or "not_available")
        price = None
        if kind is TermsKind.LICENSE:
            try:
                price = parse_money(self.price.data or "")
            except ValueError:
                self.price.errors = [*self.price.errors, "Give a price such as 2.50."]
                return None
        return TermsSpec(
            kind=kind,
            price_minor=price,
            currency=currency,
            generative_training=bool(self.generative_training.data),
            non_generative_training=bool(self.non_generative_training.data),
            commercial_use=bool(self.commercial_use.data),
            fine_tuning=bool(self.fine_tuning.data),
            style_imitation=bool(self.style_imitation.data),
            attribution_required=bool(self.attribution_required.data),
        )

    def fill_from(self, spec: TermsSpec) -> None:
        self.kind.data = spec.kind.value
        self.price.data = (
            format_money(spec.price_minor, spec.currency).lstrip("$") if spec.price_minor else ""
        )
        for flag in USE_LABELS:
            getattr(self, flag).data = getattr(spec, flag)


class UploadForm(TermsFields):
    images = MultipleFileField("Images (JPEG, PNG, WebP or TIFF; up to 50 MB each)")
    metadata_csv = FileField(
        "Optional CSV with columns filename, title, description, tags (tags comma-separated)"
    )
    use_default_terms = BooleanField("Use my default terms", default=True)


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


class ProfileForm(Form):
    display_name = StringField("Public name", [DataRequired(), Length(max=120)])
    bio = TextAreaField("About you", [Optional(), Length(max=5000)])
    links = TextAreaField("Links (one per line)", [Optional(), Length(max=3500)])
    country = StringField("Country (two letters, e.g. FR)", [Optional(), Length(max=2)])
