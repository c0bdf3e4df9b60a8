"""/api/v1: JSON views over the same services the pages use, described by OpenAPI 3.1."""

from flask_openapi3 import APIBlueprint

from marketplace.api.schemas import ErrorResponse

bp = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    abp_responses={400: ErrorResponse, 429: ErrorResponse},
)

from marketplace.api import artist_works, catalog, ledger, me, optout  # noqa: E402, F401
