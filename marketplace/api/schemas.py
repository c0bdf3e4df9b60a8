"""Request and response models shared by the API's resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.", examples=["not_found"])
    message: str = Field(description="A sentence for people.")
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody
