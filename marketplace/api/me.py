"""GET /api/v1/me: which organization and token the caller is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_openapi3 import Tag
from pydantic import BaseModel

from marketplace.api import bp
from marketplace.api.auth import BEARER_SECURITY, current_token, token_required
from marketplace.api.schemas import ErrorResponse

tag = Tag(name="account", description="The calling organization and token.")


class OrganizationOut(BaseModel):
    id: int
    name: str


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime


class MeResponse(BaseModel):
    organization: OrganizationOut
    token: TokenOut


@bp.get(
    "/me",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: MeResponse, 401: ErrorResponse},
)
@token_required
def me() -> dict[str, Any]:
    """The organization the token belongs to."""
    token = current_token()
    return MeResponse(
        organization=OrganizationOut(id=token.organization.id, name=token.organization.name),
        token=TokenOut(
            id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at
        ),
    ).model_dump(mode="json")
