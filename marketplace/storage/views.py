"""Signed download links of the local backend (S3 serves its own presigned URLs)."""

from __future__ import annotations

import mimetypes

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
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(data, mimetype=mime)
    response.headers["Content-Disposition"] = storage.attachment_header(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response
