"""Form pieces every feature's pages share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from babel import Locale
from flask import request
from flask_wtf import FlaskForm
from wtforms import Field, StringField
from wtforms.validators import ValidationError

from marketplace.amounts import locale_for
from marketplace.text import control_character_problem


def refuse_control_characters(form: Any, field: Field) -> None:
    """The shared control-character rule (marketplace.text) as a WTForms validator."""
    problem = control_character_problem(field.data) if isinstance(field.data, str) else None
    if problem is not None:
        raise ValidationError(f"This field {problem}.")


class Form(FlaskForm):
    """The base of every form: each text field (and every field type deriving from StringField:
    text areas, e-mail, password, hidden) refuses control characters before anything else
    reads it."""

    def validate(
        self, extra_validators: Mapping[str, Sequence[Callable[..., Any]]] | None = None
    ) -> bool:
        merged: dict[str, list[Callable[..., Any]]] = {
            name: list(validators) for name, validators in (extra_validators or {}).items()
        }
        for name, field in self._fields.items():
            if isinstance(field, StringField):
                merged.setdefault(name, []).insert(0, refuse_control_characters)
        return bool(super().validate(extra_validators=merged))


class ConfirmForm(Form):
    """A button that only carries the CSRF token (log out, resend, revoke)."""


def request_locale() -> Locale:
    """The visitor's locale for reading and writing amounts: Accept-Language, else en_US."""
    return locale_for(request.accept_languages.values())
