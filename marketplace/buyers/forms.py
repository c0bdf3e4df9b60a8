"""Forms of the organization settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class NewApiTokenForm(FlaskForm):
    name = StringField("Token name (what will use it)", validators=[DataRequired(), Length(max=80)])
