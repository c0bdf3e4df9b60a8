"""Signed download links of the local backend (S3 serves its own presigned URLs)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from marketplace import storage
from marketplace.security import BadToken, load_token

bp = Blueprint("storage", __name__, url_prefix="/storage")


@bp.route("/download/<token>")
def download(token: str) -> Response:
    """Public: the signed, expiring token is the credential. Range requests (206/416, If-Range)
    are answered, so a large download can resume."""
    default_age = int(current_app.config["DOWNLOAD_URL_MAX_AGE"])
    try:
        # The age limit travels inside the signed payload (package links live longer than
        # others); older tokens without it keep the default.
        unverified = load_token(storage.DOWNLOAD_PURPOSE, token, 10 * 365 * 24 * 3600)
        max_age = int(unverified.get("max_age") or default_age)
        payload = load_token(storage.DOWNLOAD_PURPOSE, token, max_age)
        key, name = str(payload["key"]), str(payload.get("name") or "download")
        store = storage.backend()
        if not isinstance(store, storage.LocalBackend):
            abort(404)
        path = store.local_path(storage.check_key(key))
        if not path.is_file():
            abort(404)
    except (BadToken, KeyError, ValueError, TypeError):
        abort(404)
    # The type the link was made with (known from the bytes); a name like x.html decides nothing.
    mime = str(payload.get("type") or "application/octet-stream")
    try:
        response = send_file(path, mimetype=mime, conditional=True, etag=True, max_age=None)
    except RequestedRangeNotSatisfiable:
        # Werkzeug's own 416 would go through the app's error page and lose this header.
        response = Response(status=416)
        response.headers["Content-Range"] = f"bytes */{path.stat().st_size}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = storage.attachment_header(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response
