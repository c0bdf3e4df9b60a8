"""Signed download links of the local backend (S3 serves its own presigned URLs)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app

from marketplace import storage
from marketplace.security import BadToken, load_token

bp = Blueprint("storage", __name__, url_prefix="/storage")


@bp.route("/download/<token>")
def download(token: str) -> Response:
    """Public: the signed, expiring token is the credential."""
    try:
        payload = load_token(
            storage.DOWNLOAD_PURPOSE, token, int(current_app.config["DOWNLOAD_URL_MAX_AGE"])
        )
        key, name = str(payload["key"]), str(payload.get("name") or "download")
        data = storage.get(storage.check_key(key))
    except (BadToken, KeyError, ValueError):
        abort(404)
    # The type the link was made with (known from the bytes); a name like x.html decides nothing.
    mime = str(payload.get("type") or "application/octet-stream")
    response = Response(data, mimetype=mime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = storage.attachment_header(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response
