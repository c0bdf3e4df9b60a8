"""The /verify page's upload form."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired

from marketplace.forms import Form


class VerifyForm(Form):
    certificate = FileField("Certificate (certificate.json)", [FileRequired("Choose a file.")])
