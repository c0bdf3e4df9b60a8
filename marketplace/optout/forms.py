"""Forms of the registry pages."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from marketplace.forms import Form


class OptOutImageForm(Form):
    image = FileField("Image (we keep only its fingerprints)", [FileRequired()])
    label = StringField("Note for yourself (optional)", [Optional(), Length(max=200)])
    keep_image = BooleanField("Also keep the image itself on file")


class OptOutAddressForm(Form):
    kind = RadioField(
        "What to opt out",
        choices=[
            SelectChoice("url", "This exact address"),
            SelectChoice("prefix", "Every address starting with this one"),
            SelectChoice("domain", "A whole domain and its subdomains"),
        ],
        default="url",
    )
    address = StringField("Address or domain", [DataRequired(), Length(max=2048)])
    label = StringField("Note for yourself (optional)", [Optional(), Length(max=200)])
