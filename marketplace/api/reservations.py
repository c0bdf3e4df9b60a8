"""TDM reservations on record: the public lookup, the evidence files, and loading a file."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace.api.auth import BEARER_SECURITY, current_artist, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.extensions import limiter
from marketplace.ledger.canonical import format_timestamp
from marketplace.optout.urls import BadUrl
from marketplace.reservations import services
from marketplace.reservations.models import ReservationFile, ReservationSource
from marketplace.reservations.parsers import ReservationFileError, ReservationKind

tag = Tag(
    name="reservations",
    description="Machine-readable TDM reservations sites publish (TDMRep, ai.txt, robots.txt), "
    "kept per domain.",
)


def _lookup_limit() -> str:
    return str(current_app.config["OPTOUT_CHECK_RATE_LIMIT"])


class FileOut(BaseModel):
    id: int
    domain: str
    kind: str = Field(description="tdmrep, ai.txt or robots")
    sha256: str = Field(description="SHA-256 of the file's bytes as loaded")
    size_bytes: int
    source: str = Field(description="upload, cli or fetch")
    source_url: str | None = Field(description="Where it was fetched from (fetched files)")
    loaded_at: str
    checked_at: str | None = Field(description="Last fetch that found the same bytes")
    rules: int = Field(description="How many rules were read from it")
    file_url: str = Field(description="The file's bytes, as evidence")


class LoadOut(FileOut):
    changed: bool = Field(description="false: the same bytes were already on record")
    skipped_lines: list[int] = Field(description="Lines that are not directives (not read)")


class HitOut(BaseModel):
    kind: str
    domain: str
    rule: str = Field(description="The pattern or line that matched")
    policy_url: str | None = Field(description="TDMRep tdm-policy, if the rule names one")
    file: FileOut


class LookupOut(BaseModel):
    reserved: bool
    hit: HitOut | None


def file_json(record: ReservationFile) -> dict[str, Any]:
    return {
        "id": record.id,
        "domain": record.domain,
        "kind": record.kind.value,
        "sha256": record.sha256,
        "size_bytes": len(record.body),
        "source": record.source.value,
        "source_url": record.source_url,
        "loaded_at": format_timestamp(record.loaded_at),
        "checked_at": format_timestamp(record.checked_at) if record.checked_at else None,
        "rules": len(record.rules),
        "file_url": f"/api/v1/reservations/files/{record.id}",
    }


class LookupQuery(ApiIn):
    url: str = Field(min_length=1, max_length=2048, description="An http(s) URL")


@bp.get(
    "/reservations",
    tags=[tag],
    responses={200: LookupOut, 422: ErrorResponse},
)
@limiter.limit(_lookup_limit, scope="reservations-lookup")
def reservations_lookup(query: LookupQuery) -> dict[str, Any]:
    """Does this URL fall under a reservation its site published (TDMRep first, then ai.txt,
    then robots.txt rules for AI crawlers)? The hit names the rule and the file. Public."""
    try:
        found = services.lookup(get_session(), query.url)
    except BadUrl as exc:
        raise APIError(422, "invalid_url", str(exc)) from exc
    if found.hit is None or found.file is None:
        return {"reserved": False, "hit": None}
    hit = found.hit
    return {
        "reserved": True,
        "hit": {
            "kind": hit.kind,
            "domain": hit.domain,
            "rule": hit.rule,
            "policy_url": hit.policy_url,
            "file": file_json(found.file),
        },
    }


class FilePath(ApiIn):
    file_id: int = Field(ge=1, le=MAX_ROW_ID)


_MIMETYPES = {
    ReservationKind.TDMREP: "application/json",
    ReservationKind.AI_TXT: "text/plain",
    ReservationKind.ROBOTS: "text/plain",
}


@bp.get(
    "/reservations/files/<id:file_id>",
    tags=[tag],
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        404: ErrorResponse,
    },
)
@limiter.limit(_lookup_limit, scope="reservations-lookup")
def reservation_file(path: FilePath) -> Response:
    """A file on record, byte for byte as loaded (its SHA-256 is in the lookup). Public: sites
    publish these files."""
    record = get_session().get(ReservationFile, path.file_id)
    if record is None:
        raise APIError(404, "file_not_found", f"No reservation file {path.file_id}.")
    response = Response(record.body, mimetype="application/octet-stream")
    response.headers["X-Reservation-Kind"] = record.kind.value
    response.headers["X-Content-SHA256"] = record.sha256
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{record.id}-{record.kind.value.replace(".", "-")}.txt"'
    )
    return response


_LOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "domain": {"type": "string", "minLength": 1, "maxLength": 255},
                    "kind": {"type": "string", "enum": [k.value for k in ReservationKind]},
                    "file": {"type": "string", "format": "binary"},
                },
                "required": ["domain", "kind", "file"],
                "additionalProperties": False,
            }
        }
    },
}


@bp.post(
    "/reservations",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={
        200: LoadOut,
        201: LoadOut,
        400: ErrorResponse,
        401: ErrorResponse,
        403: ErrorResponse,
        409: ErrorResponse,
        413: ErrorResponse,
        422: ErrorResponse,
    },
    openapi_extensions={"requestBody": _LOAD_BODY},
)
@token_required
def load_reservation() -> tuple[dict[str, Any], int]:
    """Put a site's tdmrep.json, ai.txt or robots.txt on record for its domain (multipart:
    `domain`, `kind`, `file`). Artists' tokens, as for opt-out domain rules; an artist
    replaces only a file they loaded (409 otherwise). 201 when loaded, 200 when the same bytes
    were already on record."""
    current_artist()
    if request.mimetype != "multipart/form-data":
        raise APIError(400, "invalid_request", "Send multipart form data: domain, kind, file.")
    unknown = (set(request.form) | set(request.files)) - {"domain", "kind", "file"}
    if unknown:
        raise APIError(400, "invalid_request", f"Unknown fields: {', '.join(sorted(unknown))}.")
    upload = request.files.get("file")
    domain, kind_text = request.form.get("domain", ""), request.form.get("kind", "")
    if upload is None:
        raise APIError(400, "file_missing", "Send the file as the multipart field 'file'.")
    if not domain.strip() or not kind_text.strip():
        raise APIError(400, "invalid_request", "Send the site's 'domain' and the file's 'kind'.")
    max_bytes = int(current_app.config["RESERVATIONS_MAX_FILE_BYTES"])
    body = upload.read(max_bytes + 1)
    try:
        kind = services.parse_kind(kind_text)
        with transaction() as session:
            result = services.load_file(
                session,
                domain,
                kind,
                body,
                source=ReservationSource.UPLOAD,
                max_bytes=max_bytes,
                loaded_by=current_token().created_by,
            )
            out = {
                **file_json(result.file),
                "changed": result.changed,
                "skipped_lines": list(result.skipped_lines),
            }
    except ReservationFileError as exc:
        raise APIError(400, "malformed_file", str(exc)) from exc
    except services.FileTooLarge as exc:
        raise APIError(413, "file_too_large", str(exc)) from exc
    except services.NotYours as exc:
        raise APIError(409, "reservation_on_record", str(exc)) from exc
    except services.LoadConflict as exc:
        raise APIError(409, "load_conflict", str(exc)) from exc
    except services.UnknownKind as exc:
        raise APIError(400, "invalid_kind", str(exc)) from exc
    except services.BadDomain as exc:
        raise APIError(422, "invalid_domain", str(exc)) from exc
    except services.ReservationError as exc:
        raise APIError(422, "invalid_request", str(exc)) from exc
    return out, 201 if result.changed else 200
