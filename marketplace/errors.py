"""Error pages and the one JSON error shape of the API.

`{"error": {"code": ..., "message": ...}}`: a stable code for programs, a sentence for people.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "query_too_long",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class APIError(Exception):
    """Raise from API views (or map a feature's exception to it) to answer the error envelope."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if wants_json():
        message = exc.description or "Request failed."
        if status == 404:
            message = "Nothing here: check the URL and the id."
        if status == 413:
            limit = request.max_content_length
            message = (
                f"The request is larger than {limit:,} bytes, the most this endpoint accepts."
                if limit
                else "The request is larger than this endpoint accepts."
            )
        if status == 429 and not message.endswith("."):
            # A bare limit ("600 per 1 minute") from a limiter without a message of its own.
            message = f"Too many requests: the limit here is {message}. Try again later."
        response = error_response(status, _CODES.get(status, "error"), message)
        if status == 405 and exc.response is None:
            allowed = exc.get_headers()
            response.headers.extend([h for h in allowed if h[0] == "Allow"])
        if status == 429 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = "60"  # the limiter sets the exact wait if it knows
        return response
    template = f"errors/{status}.html" if status in (403, 404, 429) else "errors/generic.html"
    return render_template(template, status=status, description=exc.description), status


def _csrf_error(exc: CSRFError) -> Any:
    message = "The form expired or came from another site. Reload the page and try again."
    if wants_json():
        return error_response(400, "csrf_failed", message)
    return render_template("errors/generic.html", status=400, description=message), 400


def _api_error(exc: APIError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def _unhandled(exc: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_json():
        return error_response(500, "internal_error", "Something went wrong on our side.")
    return render_template(
        "errors/generic.html", status=500, description=InternalServerError.description
    ), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
