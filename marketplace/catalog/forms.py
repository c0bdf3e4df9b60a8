"""Forms of the catalog pages."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import DataRequired, Length

from marketplace.forms import Form


class CollectionForm(Form):
    name = StringField("Collection name", [DataRequired(), Length(max=120)])
