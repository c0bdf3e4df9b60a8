"""Artist pages."""

from __future__ import annotations

from flask import abort, render_template
from flask_login import current_user

from marketplace.artists import bp
from marketplace.security import role_required


@bp.route("/dashboard")
@role_required("artist")
def dashboard() -> str:
    artist = current_user.artist
    if artist is None:
        abort(404)
    return render_template("artists/dashboard.html", artist=artist)
