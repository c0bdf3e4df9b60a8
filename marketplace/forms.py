"""Form pieces every feature's pages share."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """A button that only carries the CSRF token (log out, resend, revoke)."""
