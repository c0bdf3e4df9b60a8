"""The /api/v1 blueprint every API module adds its routes to (`routes.py` imports them all)."""

from __future__ import annotations

from flask_openapi3 import APIBlueprint

from marketplace.api.schemas import ErrorResponse

bp = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    abp_responses={400: ErrorResponse, 429: ErrorResponse},
)
