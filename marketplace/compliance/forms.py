"""The compliance pages' upload form."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import SelectMultipleField, StringField, widgets
from wtforms.validators import Length, Optional

from marketplace.buyers.eligibility import INTENDED_USE_LABELS
from marketplace.forms import Form


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CheckForm(Form):
    manifest = FileField(
        "Manifest (CSV, JSON lines, Parquet, or a WebDataset .tar shard)",
        validators=[FileRequired("Choose a manifest file.")],
    )
    intended_uses = MultiCheckboxField(
        "Intended use (a work is licensable only if its terms permit all of it)",
        choices=list(INTENDED_USE_LABELS.items()),
        default=["generative_training"],
    )
    url_column = StringField(
        "URL column (leave empty to recognise url, URL, image_url…)",
        validators=[Optional(), Length(max=200)],
    )
    caption_column = StringField("Caption column", validators=[Optional(), Length(max=200)])
    sha256_column = StringField("SHA-256 column", validators=[Optional(), Length(max=200)])
    phash_column = StringField("pHash column", validators=[Optional(), Length(max=200)])

    def columns(self) -> dict[str, str]:
        return {
            "url": self.url_column.data or "",
            "caption": self.caption_column.data or "",
            "sha256": self.sha256_column.data or "",
            "phash": self.phash_column.data or "",
        }
