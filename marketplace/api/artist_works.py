"""An artist's works through the API: upload, list, edit, terms versions, withdraw consent.

Another artist's work is 404 here, like an absent one: answers never confirm that an id exists.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from flask import url_for
from flask_openapi3 import FileStorage, Tag
from pydantic import BaseModel, BeforeValidator, Field, create_model
from sqlalchemy import select

from marketplace import cursors, imaging
from marketplace.api.auth import BEARER_SECURITY, current_artist, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse, JsonBody
from marketplace.artists import services
from marketplace.artists.models import TermsKind, Work, WorkTerms
from marketplace.artists.serializers import terms_json
from marketplace.artists.terms import USE_FLAGS, USE_LABELS, TermsInvalid, TermsSpec
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp

tag = Tag(name="artist works", description="An artist's own works and their licence terms.")

_ID = Field(ge=1, le=MAX_ROW_ID)
WORKS_CURSOR = "artist-works"


if TYPE_CHECKING:

    class _UseFlagsIn(JsonBody): ...

    class _UseFlagsOut(BaseModel): ...

else:  # one boolean per artists.terms.USE_FLAGS: declared there once, not restated here
    _UseFlagsIn = create_model(
        "UseFlagsIn",
        __base__=JsonBody,
        **{flag: (bool, Field(default=False, description=USE_LABELS[flag])) for flag in USE_FLAGS},
    )
    _UseFlagsOut = create_model(
        "UseFlagsOut", **{flag: (bool, Field(description=USE_LABELS[flag])) for flag in USE_FLAGS}
    )


class TermsIn(_UseFlagsIn):
    kind: TermsKind
    price_minor: int | None = Field(default=None, ge=0, le=10**9)
    currency: str = Field(
        default="",
        pattern="^([a-zA-Z]{3})?$",
        description="The marketplace's currency (DEFAULT_CURRENCY) when left out; no other",
    )
    confirm_override: bool = Field(
        default=False,
        description="Offer the work although its file says 'no AI training' (rights holder).",
    )

    def spec(self) -> TermsSpec:
        return TermsSpec(
            kind=self.kind,
            price_minor=self.price_minor,
            currency=self.currency.lower(),
            **{flag: bool(getattr(self, flag)) for flag in USE_FLAGS},
        )


class TermsOut(_UseFlagsOut):
    id: int
    work_id: int
    version: int
    status: Literal["current", "superseded", "withdrawn"] = Field(
        description="superseded: a later version replaced it; withdrawn: the artist withdrew "
        "consent. Either way it no longer applies to new sales."
    )
    in_force: bool
    no_longer_in_force_since: str | None
    current_terms_id: int | None
    current_terms_url: str | None
    kind: str
    price_minor: int | None
    currency: str
    overrides_file_signal: bool
    created_at: str
    ledger_seq: int
    url: str
    licence: str


class WorkOut(BaseModel):
    id: int
    title: str
    description: str
    tags: list[str]
    format: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    phash: str
    status: str
    review_reason: str
    file_prohibits_training: bool
    embedded_consent: dict[str, Any]
    created_at: str
    current_terms: TermsOut | None
    thumbnail_url: str | None
    preview_url: str | None


class WorkList(BaseModel):
    items: list[WorkOut]
    next_cursor: str | None


class WorkPath(ApiIn):
    work_id: int = _ID


class TermsPath(ApiIn):
    terms_id: int = _ID


class ListQuery(ApiIn):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class WorkPatch(JsonBody):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=30)


def _as_text(value: Any) -> Any:
    """Multipart fields arrive JSON-decoded (flask-openapi3): a title "1984" is text here."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


FormText = Annotated[str, BeforeValidator(_as_text)]


def _json_object(value: Any) -> Any:
    """A multipart field holding JSON: "null" is no value (flask-openapi3 passes it through as
    text), and other text is parsed so the model, not a TypeError, judges it."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError("must be a JSON object") from exc
    return value


class UploadForm(ApiIn):
    image: FileStorage
    title: FormText = Field(default="", max_length=200)
    description: FormText = Field(default="", max_length=5000)
    tags: FormText = Field(default="", max_length=1000, description="Comma-separated")
    terms: Annotated[TermsIn | None, BeforeValidator(_json_object)] = Field(
        default=None, description="Terms as a JSON object; default: the artist's default terms"
    )


def work_json(work: Work) -> dict[str, Any]:
    ready = work.derivatives_ready
    return {
        "id": work.id,
        "title": work.title,
        "description": work.description,
        "tags": work.tag_list,
        "format": work.format,
        "width": work.width,
        "height": work.height,
        "size_bytes": work.size_bytes,
        "sha256": work.sha256,
        "phash": imaging.format_phash(imaging.from_signed64(work.phash)),
        "status": work.status.value,
        "review_reason": work.review_reason,
        "file_prohibits_training": work.file_prohibits_training,
        "embedded_consent": work.embedded_consent,
        "created_at": format_timestamp(work.created_at),
        "current_terms": terms_json(work.current_terms) if work.current_terms else None,
        "thumbnail_url": url_for(
            "artists.derivative", work_id=work.id, name="thumb", _external=True
        )
        if ready
        else None,
        "preview_url": url_for(
            "artists.derivative", work_id=work.id, name="preview", _external=True
        )
        if ready
        else None,
    }


def _own_work(work_id: int) -> Work:
    try:
        return services.get_own_work(get_session(), current_artist(), work_id)
    except services.WorkNotFound as exc:
        raise APIError(404, "work_not_found", str(exc)) from exc


def _rule_error(exc: Exception, filename: str = "") -> APIError:
    if isinstance(exc, services.ConsentConfirmationRequired):
        return APIError(409, "consent_confirmation_required", str(exc), {"reasons": exc.reasons})
    if isinstance(exc, imaging.ImageRejected):
        return APIError(422, "image_rejected", imaging.rejection(filename, exc))
    if isinstance(exc, services.DuplicateUpload):
        return APIError(409, "already_uploaded", str(exc), {"work_id": exc.work_id})
    return APIError(422, "invalid_terms" if isinstance(exc, TermsInvalid) else "invalid", str(exc))


_RULE_ERRORS = (
    services.ConsentConfirmationRequired,
    services.DuplicateUpload,
    imaging.ImageRejected,
    TermsInvalid,
    services.ArtistError,
)


@bp.get(
    "/artist/works",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: WorkList, 401: ErrorResponse, 403: ErrorResponse, 422: ErrorResponse},
)
@token_required
def list_my_works(query: ListQuery) -> dict[str, Any]:
    """The calling artist's works, newest first, by cursor."""
    artist = current_artist()
    after = cursors.decode_after(WORKS_CURSOR, query.cursor)
    stmt = select(Work).where(Work.artist_id == artist.id).order_by(Work.id.desc())
    if after is not None:
        stmt = stmt.where(Work.id < after)
    works = get_session().scalars(stmt.limit(query.limit + 1)).all()
    page = works[: query.limit]
    more = len(works) > query.limit
    return {
        "items": [work_json(w) for w in page],
        "next_cursor": cursors.encode_after(WORKS_CURSOR, page[-1].id) if more and page else None,
    }


@bp.post(
    "/artist/works",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={
        201: WorkOut,
        401: ErrorResponse,
        403: ErrorResponse,
        409: ErrorResponse,
        413: ErrorResponse,
        422: ErrorResponse,
    },
)
@token_required
def upload_my_work(form: UploadForm) -> tuple[dict[str, Any], int]:
    """Upload one work (multipart); terms default to the artist's default terms."""
    artist = current_artist()
    spec = form.terms.spec() if form.terms else None
    try:
        with transaction() as session:
            work = services.register_work(
                session,
                artist,
                current_token().created_by,
                form.image.read(),
                filename=form.image.filename or "",
                title=form.title,
                description=form.description,
                tags=form.tags,
                terms=spec,
                confirm_override=bool(form.terms and form.terms.confirm_override),
            )
    except _RULE_ERRORS as exc:
        raise _rule_error(exc, form.image.filename or "") from exc
    return work_json(work), 201


@bp.get(
    "/artist/works/<id:work_id>",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: WorkOut, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse},
)
@token_required
def get_my_work(path: WorkPath) -> dict[str, Any]:
    """One of the calling artist's works."""
    return work_json(_own_work(path.work_id))


@bp.patch(
    "/artist/works/<id:work_id>",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={
        200: WorkOut,
        401: ErrorResponse,
        403: ErrorResponse,
        404: ErrorResponse,
        422: ErrorResponse,
    },
)
@token_required
def edit_my_work(path: WorkPath, body: WorkPatch) -> dict[str, Any]:
    """Change a work's title, description or tags."""
    work = _own_work(path.work_id)
    try:
        with transaction() as session:
            services.update_work_details(
                session,
                work,
                title=body.title if body.title is not None else work.title,
                description=body.description if body.description is not None else work.description,
                tags=",".join(body.tags) if body.tags is not None else work.tags,
            )
    except services.ArtistError as exc:
        raise APIError(422, "invalid", str(exc)) from exc
    return work_json(work)


@bp.put(
    "/artist/works/<id:work_id>/terms",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={
        200: TermsOut,
        401: ErrorResponse,
        403: ErrorResponse,
        404: ErrorResponse,
        409: ErrorResponse,
        422: ErrorResponse,
    },
)
@token_required
def set_my_work_terms(path: WorkPath, body: TermsIn) -> dict[str, Any]:
    """Set the work's terms: a new immutable version (the same terms again change nothing)."""
    work = _own_work(path.work_id)
    try:
        with transaction() as session:
            terms = services.set_terms(
                session,
                work,
                current_token().created_by,
                body.spec(),
                confirm_override=body.confirm_override,
            )
    except _RULE_ERRORS as exc:
        raise _rule_error(exc) from exc
    return terms_json(terms)


@bp.post(
    "/artist/works/<id:work_id>/withdraw",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: WorkOut, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse},
)
@token_required
def withdraw_my_work(path: WorkPath) -> dict[str, Any]:
    """Withdraw consent: out of every future sale now; past sales stay valid."""
    work = _own_work(path.work_id)
    with transaction() as session:
        services.withdraw_consent(session, work, current_token().created_by)
    return work_json(work)


@bp.get("/terms/<id:terms_id>", tags=[tag], responses={200: TermsOut, 404: ErrorResponse})
def get_terms(path: TermsPath) -> dict[str, Any]:
    """One immutable terms version, machine-readable. Public."""
    terms = get_session().get(WorkTerms, path.terms_id)
    if terms is None:
        raise APIError(404, "terms_not_found", f"No terms {path.terms_id}.")
    return terms_json(terms)
