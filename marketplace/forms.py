"""Form pieces every feature's pages share."""

from __future__ import annotations

from babel import Locale
from flask import request
from flask_wtf import FlaskForm

from marketplace.amounts import locale_for


class ConfirmForm(FlaskForm):
    """A button that only carries the CSRF token (log out, resend, revoke)."""


def request_locale() -> Locale:
    """The visitor's locale for reading and writing amounts: Accept-Language, else en_US."""
    return locale_for(request.accept_languages.values())
