"""The public opt-out check API (no login, rate-limited) and artists' own registrations."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace import imaging, uploads
from marketplace.api.auth import BEARER_SECURITY, current_artist, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse, JsonBody
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.extensions import limiter
from marketplace.ledger.canonical import format_timestamp
from marketplace.optout import services
from marketplace.optout.models import OptOutRule, RuleKind

tag = Tag(name="opt-out", description="The public “Do Not Train” registry.")


def _check_limit() -> str:
    return str(current_app.config["OPTOUT_CHECK_RATE_LIMIT"])


# A bulk URL check takes one check from the client's budget per this many URLs, so the
# largest bulk check (10,000 URLs) costs 100 of the default 120 per minute.
BULK_URLS_PER_CHECK = 100


def _budget_message() -> str:
    return (
        "Too many opt-out checks from your address: the URL, image and bulk checks share "
        f"a budget of {_check_limit()}, and a bulk check counts one check per "
        f"{BULK_URLS_PER_CHECK} URLs. "
        "Wait until Retry-After has passed, then try again."
    )


def _url_lines(text: str) -> list[str]:
    """The URLs of a text/plain bulk check: one a line, as `str.splitlines` splits (so the
    budget counts exactly the lines checked, whatever the line separators)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _bulk_cost() -> int:
    """What a bulk check takes from the budget: one check per BULK_URLS_PER_CHECK URLs sent
    (at least one), counted before the body is judged; a request over the size limit is
    refused as too large and costs one."""
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        count = len(body) if isinstance(body, list) else 1
    else:
        text = request.get_data().decode("utf-8-sig", errors="replace")
        count = len(_url_lines(text))
    if count > services.MAX_BULK_URLS:
        return 1  # refused whole as too large (413), checking nothing
    return max(1, -(-count // BULK_URLS_PER_CHECK))


# One budget per client across the three public checks (a shared scope), so a client cannot
# spend it on GET and then carry on with POST or the bulk check.
_check_budget = limiter.shared_limit(
    _check_limit, scope="optout-check", error_message=_budget_message
)
_bulk_budget = limiter.shared_limit(
    _check_limit, scope="optout-check", error_message=_budget_message, cost=_bulk_cost
)


class MatchOut(BaseModel):
    kind: str = Field(description="sha256, phash, url, prefix or domain")
    distance: int = Field(description="Hamming distance for phash; 0 otherwise")
    registered_at: str


class CheckOut(BaseModel):
    opted_out: bool | None = Field(description="null when the input could not be checked")
    matches: list[MatchOut]
    error: str | None = None


class BulkItemOut(CheckOut):
    url: str


class BulkOut(BaseModel):
    results: list[BulkItemOut]


class UrlQuery(ApiIn):
    url: str = Field(min_length=1, max_length=2048, description="An http(s) URL")


@bp.get(
    "/optout/check",
    tags=[tag],
    responses={200: CheckOut, 422: ErrorResponse},
)
@_check_budget
def optout_check_url(query: UrlQuery) -> dict[str, Any]:
    """Is this URL opted out (exactly, by prefix or by domain)? Public."""
    result = services.check_url(get_session(), query.url)
    if result.error:
        raise APIError(422, "invalid_url", result.error)
    return result.to_json()


_CHECK_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"image": {"type": "string", "format": "binary"}},
                "required": ["image"],
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                    "phash": {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"},
                },
                "minProperties": 1,
                "additionalProperties": False,
            }
        },
    },
}


@bp.post(
    "/optout/check",
    tags=[tag],
    responses={200: CheckOut, 400: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse},
    openapi_extensions={"requestBody": _CHECK_BODY},
)
@_check_budget
def optout_check_image() -> dict[str, Any]:
    """Is this image opted out? Send the image (multipart `image`) or its hashes (JSON:
    `sha256` hex and/or `phash` as 16 hex digits). Public; the image is not kept."""
    uploads.limit_request_to_one_image()
    config = current_app.config
    sha256, phash = None, None
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise APIError(400, "image_missing", "Send the image as the multipart field 'image'.")
        try:
            image = uploads.inspect_query_image(upload.read())
        except imaging.ImageRejected as exc:
            raise APIError(422, "image_rejected", imaging.rejection(upload.filename, exc)) from exc
        sha256, phash = image.sha256, image.phash
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not ({"sha256", "phash"} & set(body)):
            raise APIError(
                400, "invalid_request", "Send an image, or JSON with 'sha256' and/or 'phash'."
            )
        unknown = set(body) - {"sha256", "phash"}
        if unknown:
            raise APIError(400, "invalid_request", f"Unknown fields: {', '.join(sorted(unknown))}.")
        if any(not isinstance(value, str) for value in body.values()):
            raise APIError(400, "invalid_request", "sha256 and phash are strings of hex digits.")
        raw_sha, raw_phash = body.get("sha256"), body.get("phash")
        if raw_sha is not None:
            if not isinstance(raw_sha, str) or len(raw_sha) != 64 or not _is_hex(raw_sha):
                raise APIError(400, "invalid_request", "sha256 is 64 hexadecimal digits.")
            sha256 = raw_sha.lower()
        if raw_phash is not None:
            try:
                phash = imaging.parse_phash(raw_phash if isinstance(raw_phash, str) else "")
            except ValueError as exc:
                raise APIError(400, "invalid_request", str(exc)) from exc
    result = services.check_image(
        get_session(),
        sha256=sha256,
        phash=phash,
        max_distance=int(config["OPTOUT_PHASH_DISTANCE"]),
    )
    return result.to_json()


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


_URLS_BODY = {
    "required": True,
    "description": "Up to 10,000 URLs: plain text, one per line, or a JSON list of strings.",
    "content": {
        # At least one line with something on it besides spaces and control characters.
        "text/plain": {
            "schema": {"type": "string", "pattern": "[^\\s\\u0000-\\u001f\\u007f-\\u009f]"}
        },
        "application/json": {
            "schema": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 10000,
            }
        },
    },
}


@bp.post(
    "/optout/check/urls",
    tags=[tag],
    responses={200: BulkOut, 400: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse},
    openapi_extensions={"requestBody": _URLS_BODY},
)
@_bulk_budget
def optout_check_urls() -> dict[str, Any]:
    """One result per URL, in input order, for crawlers and dataset builders. Public."""
    if request.mimetype == "application/json":
        urls = request.get_json(silent=True)
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise APIError(400, "invalid_request", "Send a JSON list of URL strings.")
    elif request.mimetype in ("text/plain", ""):
        try:
            # utf-8-sig: a URL list saved by Windows tools starts with a byte order mark.
            text = request.get_data(as_text=False).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise APIError(400, "invalid_request", "The body is not UTF-8 text.") from exc
        urls = _url_lines(text)
    else:
        raise APIError(415, "unsupported_media_type", "Send text/plain or application/json.")
    if not urls:
        raise APIError(
            400, "no_urls", "Send the URLs to check: one per line, or a JSON list of strings."
        )
    if len(urls) > services.MAX_BULK_URLS:
        raise APIError(
            413, "too_many_urls", f"Send at most {services.MAX_BULK_URLS} URLs per request."
        )
    results = services.check_urls(get_session(), urls)
    return {"results": [{"url": url, **r.to_json()} for url, r in zip(urls, results, strict=True)]}


@bp.get(
    "/optout/snapshot",
    tags=[tag],
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
@limiter.shared_limit(services.SNAPSHOT_RATE_LIMIT, scope=services.SNAPSHOT_RATE_LIMIT_SCOPE)
def optout_snapshot() -> Response:
    """The whole registry as JSON lines (a header line, then one rule per line): hashes and
    URL rules only, no personal data. Public."""
    lines = services.snapshot_stream(int(current_app.config["OPTOUT_PHASH_DISTANCE"]))
    return Response(lines, mimetype="application/x-ndjson")


# --- An artist's own registrations ---------------------------------------------------------


class RuleIn(JsonBody):
    kind: str = Field(pattern="^(url|prefix|domain)$")
    address: str = Field(min_length=1, max_length=2048)
    label: str = Field(default="", max_length=200)


class RuleOut(BaseModel):
    id: int
    kind: str
    value: str
    label: str
    work_id: int | None
    registered_at: str
    ledger_seq: int


class RuleList(BaseModel):
    items: list[RuleOut]


class RulePath(ApiIn):
    rule_id: int = Field(ge=1, le=MAX_ROW_ID)


def rule_json(rule: OptOutRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "kind": rule.kind.value,
        "value": rule.value,
        "label": rule.label,
        "work_id": rule.work_id,
        "registered_at": format_timestamp(rule.created_at),
        "ledger_seq": rule.ledger_seq,
    }


@bp.get(
    "/artist/optouts",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: RuleList, 401: ErrorResponse, 403: ErrorResponse},
)
@token_required
def list_my_optouts() -> dict[str, Any]:
    """The calling artist's opt-outs."""
    current_artist()
    rules = services.list_rules(get_session(), current_token().created_by)
    return {"items": [rule_json(r) for r in rules]}


@bp.post(
    "/artist/optouts",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={201: RuleOut, 401: ErrorResponse, 403: ErrorResponse, 422: ErrorResponse},
)
@token_required
def add_my_optout(body: RuleIn) -> tuple[dict[str, Any], int]:
    """Opt out a URL, a URL prefix or a whole domain."""
    current_artist()
    try:
        with transaction() as session:
            rule = services.register_address(
                session,
                current_token().created_by,
                RuleKind(body.kind),
                body.address,
                label=body.label,
            )
    except services.OptOutError as exc:
        raise APIError(422, "invalid_address", str(exc)) from exc
    return rule_json(rule), 201


@bp.delete(
    "/artist/optouts/<id:rule_id>",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={
        200: RuleOut,
        401: ErrorResponse,
        403: ErrorResponse,
        404: ErrorResponse,
        422: ErrorResponse,
    },
)
@token_required
def remove_my_optout(path: RulePath) -> dict[str, Any]:
    """Withdraw one of the calling artist's opt-outs."""
    current_artist()
    try:
        with transaction() as session:
            rule = services.remove_rule(session, current_token().created_by, path.rule_id)
    except services.RuleNotFound as exc:
        raise APIError(404, "optout_not_found", str(exc)) from exc
    except services.OptOutError as exc:
        raise APIError(422, "follows_work_terms", str(exc)) from exc
    return rule_json(rule)
