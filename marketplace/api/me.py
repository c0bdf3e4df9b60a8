"""GET /api/v1/me: which organization or artist, and which token, the caller is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace.api.auth import BEARER_SECURITY, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ErrorResponse

tag = Tag(name="account", description="The calling organization or artist, and token.")


class OrganizationOut(BaseModel):
    id: int
    name: str


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime


class ArtistOut(BaseModel):
    id: int
    display_name: str


class MeResponse(BaseModel):
    kind: str = Field(description="organization or artist")
    organization: OrganizationOut | None
    artist: ArtistOut | None
    token: TokenOut


@bp.get(
    "/me",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: MeResponse, 401: ErrorResponse},
)
@token_required
def me() -> dict[str, Any]:
    """The organization (buyer token) or the artist (artist token) the token acts for."""
    token = current_token()
    organization, artist = token.organization, token.created_by.artist
    return MeResponse(
        kind="organization" if organization else "artist",
        organization=OrganizationOut(id=organization.id, name=organization.name)
        if organization
        else None,
        artist=ArtistOut(id=artist.id, display_name=artist.display_name)
        if artist and not organization
        else None,
        token=TokenOut(
            id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at
        ),
    ).model_dump(mode="json")
