"""Forms of the catalog pages."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from marketplace.forms import Form


class CollectionForm(Form):
    name = StringField("Collection name", [DataRequired(), Length(max=120)])


class SimilarImageForm(Form):
    """Find works that look like an image; the image is read, hashed and dropped."""

    image = FileField(
        "Find similar works by image (JPEG, PNG, WebP or TIFF)",
        [FileRequired("Choose an image to compare.")],
    )
