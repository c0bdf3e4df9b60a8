"""Forms of the account pages."""

from __future__ import annotations

from wtforms import BooleanField, EmailField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from marketplace.forms import Form


class SignUpForm(Form):
    role = RadioField(
        "I am signing up as",
        choices=[
            SelectChoice("artist", "An artist: I license or donate my works, or opt them out"),
            SelectChoice("buyer", "A buyer: my organization licenses training data"),
        ],
        validators=[DataRequired(message="Choose artist or buyer.")],
    )
    display_name = StringField(
        "Your name (shown publicly for artists)", validators=[DataRequired(), Length(max=120)]
    )
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password (at least 10 characters)", validators=[DataRequired(), Length(max=256)]
    )
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )
    organization_name = StringField(
        "Buyers: your organization's name (to create it)", validators=[Optional(), Length(max=120)]
    )
    join_code = StringField(
        "Buyers: or the join code of an existing organization",
        validators=[Optional(), Length(max=64)],
    )


class LoginForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me logged in on this device")


class ForgotPasswordForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(Form):
    password = PasswordField(
        "New password (at least 10 characters)", validators=[DataRequired(), Length(max=256)]
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
    )


class NewApiTokenForm(Form):
    name = StringField("Token name (what will use it)", validators=[DataRequired(), Length(max=80)])
