"""Request and response models shared by the API's resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from marketplace.text import check_all


class ApiIn(BaseModel):
    """The base of every request model (path, query, form and body): each string in it, however
    nested, is refused if it holds a control character (the shared rule in marketplace.text),
    before any service or the database sees it."""

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_control_characters(cls, value: Any) -> Any:
        return check_all(value)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.", examples=["not_found"])
    message: str = Field(description="A sentence for people.")
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody
