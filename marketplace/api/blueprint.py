"""The /api/v1 blueprint every API module adds its routes to (`routes.py` imports them all)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint

from marketplace import cursors
from marketplace.api.schemas import ErrorResponse
from marketplace.errors import error_response

bp = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    abp_responses={400: ErrorResponse, 414: ErrorResponse, 429: ErrorResponse},
)


@bp.errorhandler(cursors.InvalidCursor)
def _invalid_cursor(exc: cursors.InvalidCursor) -> Response:
    """A cursor we did not hand out (or altered) breaks the rule that cursors are ours: 422,
    whichever list it was sent to (any string is well-formed; only a signature tells)."""
    return error_response(422, "invalid_cursor", f"{exc} Start again without a cursor.")
