"""Bearer API tokens: who is calling, and whose data they may see.

A buyer's token acts for its organization; an artist's token acts for that artist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request
from flask_openapi3 import validate_request

from marketplace.accounts import services as accounts
from marketplace.accounts.models import ApiToken, Organization
from marketplace.artists.models import Artist
from marketplace.db import transaction
from marketplace.errors import APIError

F = TypeVar("F", bound=Callable[..., Any])

BEARER_SECURITY: list[dict[str, list[Any]]] = [{"bearerAuth": []}]
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (mkt_...) made in an organization's or an artist's settings.",
    }
}


def _unauthorized(code: str, message: str) -> APIError:
    return APIError(401, code, message)


def token_required(view: F) -> F:
    """The caller must send `Authorization: Bearer <token>` of an active token.

    Authentication comes first: the request's path, query and body are validated against the
    view's models only after the token is accepted (flask-openapi3's delayed validation), so an
    anonymous caller learns nothing about the route's schema and always gets 401."""
    validated = validate_request()(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            raise _unauthorized(
                "missing_token", "Send an API token: Authorization: Bearer <token>."
            )
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("invalid_token", "Use the Bearer scheme with an API token.")
        with transaction() as session:
            token = accounts.authenticate_api_token(session, value.strip())
        if token is None:
            raise _unauthorized("invalid_token", "This API token is unknown or revoked.")
        g.api_token = token
        return validated(*args, **kwargs)

    return cast(F, wrapper)


def current_token() -> ApiToken:
    token: ApiToken = g.api_token
    return token


def current_organization() -> Organization:
    """The calling organization; 403 for an artist's token."""
    organization = current_token().organization
    if organization is None:
        raise APIError(403, "buyer_token_required", "Use a buyer organization's API token.")
    return organization


def current_artist() -> Artist:
    """The calling artist; 403 for an organization's token."""
    token = current_token()
    artist = token.created_by.artist
    if token.organization_id is not None or artist is None:
        raise APIError(403, "artist_token_required", "Use an artist's own API token.")
    return artist
