"""Reverse-image search: available works whose image looks like an upload or a catalog work."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, Field

from marketplace import imaging, uploads
from marketplace.api.blueprint import bp
from marketplace.api.catalog import ItemOut, tag
from marketplace.api.schemas import ErrorResponse
from marketplace.catalog import services, similar
from marketplace.db import MAX_ROW_ID, get_session
from marketplace.errors import APIError
from marketplace.extensions import limiter


class SimilarItemOut(ItemOut):
    distance: int = Field(description="Hamming distance between the 64-bit pHashes (0: alike)")


class SimilarOut(BaseModel):
    items: list[SimilarItemOut]
    phash: str = Field(description="The query's pHash, 16 hex digits")
    max_distance: int


_OPTIONS = {
    "max_distance": {
        "type": "integer",
        "minimum": 0,
        "maximum": similar.MAX_DISTANCE,
        "default": similar.DEFAULT_MAX_DISTANCE,
    },
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": similar.MAX_LIMIT,
        "default": similar.STRIP_SIZE,
    },
}
_WORK_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID, "description": "From /works"}
# Multipart fields are text: the same options as digit strings.
_FORM_OPTIONS = {
    "max_distance": {
        "type": "string",
        "enum": [str(n) for n in range(similar.MAX_DISTANCE + 1)],
        "default": str(similar.DEFAULT_MAX_DISTANCE),
    },
    "limit": {
        "type": "string",
        "enum": [str(n) for n in range(1, similar.MAX_LIMIT + 1)],
        "default": str(similar.STRIP_SIZE),
    },
}
_FORM_WORK_ID = {"type": "string", "pattern": "^[1-9][0-9]{0,17}$", "description": "From /works"}
_SIMILAR_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "work_id": _FORM_WORK_ID,
                    **_FORM_OPTIONS,
                },
                # An image or a work, never both: said in words and answered with a 422, not as
                # a oneOf, which fuzzers (schemathesis) misread when they mutate multipart bodies.
                "description": "An image or a work_id, not both (422 otherwise).",
                "additionalProperties": False,
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"work_id": _WORK_ID, **_OPTIONS},
                "required": ["work_id"],
                "additionalProperties": False,
            }
        },
    },
}


def _int_option(raw: object, name: str, low: int, high: int, default: int) -> int:
    """A bounded integer from JSON (26 or 26.0) or a form field (its digits); 400 otherwise."""
    if raw is None:
        return default
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():  # JSON Schema: 26.0 is an integer
        value = int(raw)
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and raw == str(int(raw)):
        value = int(raw)  # digits as the schema writes them: no sign, space or leading zero
    if value is None or not low <= value <= high:
        raise APIError(400, "invalid_request", f"{name} is a whole number from {low} to {high}.")
    return value


@bp.post(
    "/works/similar",
    tags=[tag],
    responses={
        200: SimilarOut,
        400: ErrorResponse,
        404: ErrorResponse,
        413: ErrorResponse,
        422: ErrorResponse,
    },
    openapi_extensions={"requestBody": _SIMILAR_BODY},
)
@limiter.shared_limit(similar.RATE_LIMIT, scope=similar.RATE_LIMIT_SCOPE)
def similar_works() -> dict[str, Any]:
    """Available works that look like an image (multipart `image`) or like a catalog work
    (`work_id`, as JSON or a form field), nearest first by pHash Hamming distance, within
    `max_distance`. Public; an uploaded image is not kept."""
    uploads.limit_request_to_one_image()
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields: dict[str, object] = dict(request.form.items())
        upload = request.files.get("image")
        unknown = (set(request.form) | set(request.files)) - {"image", "work_id", *_OPTIONS}
    elif request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise APIError(400, "invalid_request", "Send a JSON object with 'work_id'.")
        unknown = set(body) - {"work_id", *_OPTIONS}
        fields, upload = body, None
    else:
        raise APIError(
            400,
            "invalid_request",
            "Send an image as the multipart field 'image', or JSON with 'work_id'.",
        )
    if unknown:
        raise APIError(400, "invalid_request", f"Unknown fields: {', '.join(sorted(unknown))}.")
    if upload is None and "image" in fields:  # a text field, which the schema cannot tell apart
        raise APIError(
            422, "image_rejected", "Send the image as a file: a multipart part with a filename."
        )
    if upload is not None and "work_id" in fields:
        raise APIError(422, "invalid_request", "Send an image or a work_id, not both.")
    max_distance = _int_option(
        fields.get("max_distance"),
        "max_distance",
        0,
        similar.MAX_DISTANCE,
        similar.DEFAULT_MAX_DISTANCE,
    )
    limit = _int_option(fields.get("limit"), "limit", 1, similar.MAX_LIMIT, similar.STRIP_SIZE)
    session = get_session()
    if upload is not None:
        try:
            image = uploads.inspect_query_image(upload.read())
        except imaging.ImageRejected as exc:
            raise APIError(422, "image_rejected", imaging.rejection(upload.filename, exc)) from exc
        phash = image.phash
        found = similar.similar_items(session, phash, max_distance=max_distance, limit=limit)
    else:
        if fields.get("work_id") is None:
            raise APIError(
                422,
                "invalid_request",
                "Send an image as the multipart field 'image', or a 'work_id'.",
            )
        work_id = _int_option(fields["work_id"], "work_id", 1, 10**18, 0)
        try:
            if work_id > MAX_ROW_ID:  # well-formed, and no work has it
                raise services.ItemNotFound(f"No work {work_id} in the catalog.")
            item, phash = similar.item_query(session, work_id)
        except services.ItemNotFound as exc:
            raise APIError(404, "work_not_found", str(exc)) from exc
        except similar.NoImageHash as exc:
            raise APIError(422, "no_image", str(exc)) from exc
        found = similar.similar_items(
            session, phash, max_distance=max_distance, limit=limit, exclude_item_id=item.id
        )
    return SimilarOut(
        items=[
            SimilarItemOut(**ItemOut.of(hit.item).model_dump(), distance=hit.distance)
            for hit in found
        ],
        phash=imaging.format_phash(phash),
        max_distance=max_distance,
    ).model_dump(mode="json")
