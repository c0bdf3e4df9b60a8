"""Request and response models shared by the API's resources."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from marketplace.text import JSON_SCHEMA_PATTERN, check_all


def _text_patterns(schema: dict[str, Any], model: type[Any] | None = None) -> None:
    """Say in the OpenAPI document what ApiIn enforces: every free-text string (one with no
    pattern, enum or format of its own) excludes control characters."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "format", "const"} & set(schema):
        schema["pattern"] = JSON_SCHEMA_PATTERN
    for key in ("properties", "$defs", "patternProperties"):
        for sub in (schema.get(key) or {}).values():
            _text_patterns(sub)
    for key in ("items", "additionalProperties", "not"):
        _text_patterns(schema.get(key))  # type: ignore[arg-type]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or ():
            _text_patterns(sub)


class ApiIn(BaseModel):
    """The base of every request model (path, query, form and body): each string in it, however
    nested, is refused if it holds a control character (the shared rule in marketplace.text),
    before any service or the database sees it; the OpenAPI document says so."""

    model_config = ConfigDict(json_schema_extra=_text_patterns)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_control_characters(cls, value: Any) -> Any:
        return check_all(value)


def _json_type_problem(annotation: Any, value: Any) -> str | None:
    """Why `value` is not of the JSON type `annotation` names (for ints and bools), or None."""
    if value is None:
        return None
    options = set(get_args(annotation)) or {annotation}
    if bool in options and str not in options and not isinstance(value, bool):
        return "must be true or false"
    if int in options and bool not in options and isinstance(value, bool | str | bytes):
        return "must be a JSON integer"
    return None


class JsonBody(ApiIn):
    """The base of JSON request bodies: booleans are true/false and integers are numbers, as
    the OpenAPI document says ("shared": 0 and "item_id": "5" or true are refused; pydantic's
    lax mode would turn them into True and 5)."""

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                problem = _json_type_problem(field.annotation, data.get(key))
                if problem is not None:
                    raise ValueError(f"{key} {problem}")
        return data


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.", examples=["not_found"])
    message: str = Field(description="A sentence for people.")
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody
