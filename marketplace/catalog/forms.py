"""Forms of the catalog pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class CollectionForm(FlaskForm):
    name = StringField("Collection name", [DataRequired(), Length(max=120)])
