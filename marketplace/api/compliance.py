"""The compliance API: upload a manifest, follow its check, download its rows."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import current_app, redirect, request
from flask_openapi3 import Tag
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from marketplace.api.auth import BEARER_SECURITY, current_organization, token_required
from marketplace.api.blueprint import bp
from marketplace.api.bundles import _buyer
from marketplace.api.schemas import ApiIn, ErrorResponse
from marketplace.buyers.eligibility import INTENDED_USES
from marketplace.compliance import services
from marketplace.compliance.models import CheckStatus, ComplianceCheck
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp

tag = Tag(
    name="compliance",
    description="Check a dataset you hold against the opt-out registry, reservations and the "
    "catalog: each row opted out, reserved, licensable, public domain or unknown.",
)
_AUTH: dict[str, Any] = {"security": BEARER_SECURITY, "tags": [tag]}
_ERRORS: dict[str | int, Any] = {401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse}
_FIELDS = {"manifest", "intended_uses", "url_column", "caption_column", "sha256_column"}
_FIELDS |= {"phash_column"}
_COLUMN = {"type": "string", "maxLength": 200}
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "manifest": {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV, JSON lines, Parquet or a WebDataset tar shard",
                    },
                    "intended_uses": {
                        "type": "string",
                        "description": "Comma-separated, from: "
                        + ", ".join(INTENDED_USES)
                        + " (default generative_training)",
                    },
                    "url_column": _COLUMN,
                    "caption_column": _COLUMN,
                    "sha256_column": _COLUMN,
                    "phash_column": _COLUMN,
                },
                "required": ["manifest"],
                "additionalProperties": False,
            }
        }
    },
}


class CheckPath(ApiIn):
    check_id: int = Field(ge=1, le=MAX_ROW_ID)


class CheckOut(BaseModel):
    id: int
    status: str = Field(description="queued, running, done or failed")
    error: str
    filename: str
    format: str = Field(description="csv, jsonl, parquet or webdataset")
    size_bytes: int
    sha256: str = Field(description="Of the uploaded file")
    columns: dict[str, str] = Field(description="Our field -> the file's column")
    intended_uses: list[str]
    progress: float = Field(description="Share of the file read, 0 to 1")
    rows_done: int
    created_at: str
    finished_at: str | None
    summary: dict[str, Any] | None = Field(
        description="Once done: rows, counts per class, examples, problems (row numbers "
        "from 1, a header not counted), duplicates, skipped"
    )
    rows_url: str | None = Field(description="Once done: /rows.csv of this check")


def check_json(check: ComplianceCheck) -> dict[str, Any]:
    state = services.state_of(check)
    done = check.status is CheckStatus.DONE
    return CheckOut(
        id=check.id,
        status=state.status,
        error=state.error,
        filename=check.filename,
        format=check.format,
        size_bytes=check.size_bytes,
        sha256=check.sha256,
        columns=check.columns,
        intended_uses=check.intended_uses,
        progress=check.progress,
        rows_done=check.rows_done,
        created_at=format_timestamp(check.created_at),
        finished_at=format_timestamp(check.finished_at) if check.finished_at else None,
        summary=check.summary if done else None,
        rows_url=f"/api/v1/compliance/checks/{check.id}/rows.csv" if done else None,
    ).model_dump(mode="json")


def _get(check_id: int) -> ComplianceCheck:
    try:
        return services.get_check(get_session(), current_organization(), check_id)
    except services.CheckNotFound as exc:
        raise APIError(404, "not_found", str(exc)) from exc


@bp.post(
    "/compliance/checks",
    responses={
        202: CheckOut,
        400: ErrorResponse,
        413: ErrorResponse,
        422: ErrorResponse,
        **_ERRORS,
    },
    openapi_extensions={"requestBody": _UPLOAD_BODY},
    **_AUTH,
)
@token_required
def create_check() -> tuple[dict[str, Any], int]:
    """Upload a manifest (multipart `manifest`) and queue its check; 202 with the check.
    A file that is no manifest, has no URL column or no rows is a 422 and nothing is kept."""
    organization = current_organization()
    user = _buyer()
    request.max_content_length = int(current_app.config["COMPLIANCE_UPLOAD_MAX_BYTES"])
    if request.mimetype != "multipart/form-data":
        raise APIError(
            400, "invalid_request", "Send the manifest as the multipart field 'manifest'."
        )
    unknown = (set(request.form) | set(request.files)) - _FIELDS
    if unknown:
        raise APIError(400, "invalid_request", f"Unknown fields: {', '.join(sorted(unknown))}.")
    upload = request.files.get("manifest")
    if upload is None:
        raise APIError(
            422 if "manifest" in request.form else 400,
            "invalid_request",
            "Send the manifest as a file: a multipart part named 'manifest' with a filename.",
        )
    columns = {
        name: str(request.form.get(f"{name}_column", ""))
        for name in ("url", "caption", "sha256", "phash")
    }
    if any(len(value) > 200 for value in columns.values()):
        raise APIError(400, "invalid_request", "Column names are at most 200 characters.")
    with tempfile.TemporaryDirectory(prefix="manifest-") as folder:
        path = Path(folder) / "manifest"
        upload.save(path)
        try:
            with transaction() as session:
                check = services.create_check(
                    session,
                    user,
                    organization,
                    services.Upload(path, upload.filename or "manifest"),
                    columns=columns,
                    intended_uses=request.form.getlist("intended_uses"),
                )
        except services.ComplianceError as exc:
            raise APIError(422, "invalid_manifest", str(exc)) from exc
    get_session().refresh(check)
    return check_json(check), 202


@bp.get("/compliance/checks/<id:check_id>", responses={200: CheckOut, **_ERRORS}, **_AUTH)
@token_required
def get_check(path: CheckPath) -> dict[str, Any]:
    """A check of your organization: status, progress, and once done its summary (another
    organization's check is 404)."""
    return check_json(_get(path.check_id))


@bp.get(
    "/compliance/checks/<id:check_id>/rows.csv",
    responses={302: None, 409: ErrorResponse, **_ERRORS},
    **_AUTH,
)
@token_required
def check_rows(path: CheckPath) -> Response:
    """Every row with its class, evidence (a JSON array) and problem: a redirect to a signed,
    expiring CSV download. 409 until the check is done."""
    check = _get(path.check_id)
    try:
        return redirect(services.rows_url(check))
    except services.ComplianceError as exc:
        raise APIError(409, "check_not_done", str(exc)) from exc
