"""The admin page's form: load a site's published reservation file."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from marketplace.forms import Form
from marketplace.reservations.parsers import ReservationKind


class LoadReservationForm(Form):
    domain = StringField("Site (domain)", [DataRequired(), Length(max=255)])
    kind = RadioField(
        "File",
        choices=[
            SelectChoice(ReservationKind.TDMREP.value, "TDMRep: /.well-known/tdmrep.json"),
            SelectChoice(ReservationKind.AI_TXT.value, "ai.txt"),
            SelectChoice(ReservationKind.ROBOTS.value, "robots.txt (rules for AI crawlers)"),
        ],
        default=ReservationKind.TDMREP.value,
    )
    file = FileField("The file, as the site publishes it", [FileRequired()])
