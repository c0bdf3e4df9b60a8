"""Forms of the claim pages and the admin's claim decisions."""

from __future__ import annotations

from flask_wtf.file import MultipleFileField
from wtforms import EmailField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from marketplace.forms import Form
from marketplace.governance.models import CLAIM_KIND_LABELS
from marketplace.governance.services import MAX_REASON, MAX_STATEMENT


class ClaimForm(Form):
    kind = RadioField(
        "What is wrong",
        choices=[SelectChoice(kind.value, label) for kind, label in CLAIM_KIND_LABELS.items()],
        validators=[DataRequired("Choose what the claim is about.")],
    )
    name = StringField("Your name", [DataRequired("Give your name."), Length(max=200)])
    email = EmailField(
        "Your email (we send a link to follow the claim)",
        [DataRequired("Give an email address."), Length(max=254)],
    )
    statement = TextAreaField(
        "Explain the claim", [DataRequired("Explain the claim."), Length(max=MAX_STATEMENT)]
    )
    links = TextAreaField("Links to evidence (one a line, optional)", [Optional()])
    evidence = MultipleFileField("Files of evidence (images, PDF or text; optional)")


class DecisionForm(Form):
    reason = TextAreaField(
        "Reason (sent to the claimant and the artist)",
        [DataRequired("Give the reason for the decision."), Length(max=MAX_REASON)],
    )


class CounterNoticeForm(Form):
    text = TextAreaField(
        "Your answer (once)", [DataRequired("Write your answer."), Length(max=MAX_STATEMENT)]
    )
