"""The catalog API: search with facets and cursors, one work, and collections."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from flask import url_for
from flask_openapi3 import Tag
from pydantic import BaseModel, ConfigDict, Field

from marketplace import cursors
from marketplace.api.auth import BEARER_SECURITY, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse, JsonBody
from marketplace.artists.serializers import terms_json
from marketplace.artists.terms import PERMITTED_USES, uses_mask
from marketplace.catalog import search, services
from marketplace.catalog.models import (
    CatalogItem,
    CatalogLicense,
    Collection,
    CollectionJob,
    Orientation,
)
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp
from marketplace.text import JSON_SCHEMA_PATTERN

tag = Tag(name="catalog", description="Search artists' works and public-domain stock.")
collections_tag = Tag(name="collections", description="Saved works, shareable by link.")

_ID = Field(ge=1, le=MAX_ROW_ID)


def _choices(values: Iterable[str]) -> Any:
    """One value of `values`, or several separated by commas (as the catalog page's links)."""
    one = "|".join(re.escape(v) for v in values)
    return Field(pattern=f"^({one})(,({one}))*$")


Licenses = Annotated[str, _choices(v.value for v in CatalogLicense)]
Orientations = Annotated[str, _choices(v.value for v in Orientation)]
Uses = Annotated[str, _choices(PERMITTED_USES)]
# One source per value (repeat the parameter): not empty, no commas, no control characters.
SourceName = Annotated[
    str, Field(pattern=JSON_SCHEMA_PATTERN.replace("[^", "[^,", 1).replace("]*$", "]+$"))
]
_MAX_VALUES = Field(default=None, max_length=search.MAX_VALUES)
_YEAR = Field(default=None, ge=search.YEARS[0], le=search.YEARS[1])
_PIXELS = Field(default=None, ge=0, le=search.MAX_PIXELS_FILTER)
_NAME = Field(default=None, max_length=search.MAX_NAME_FILTER)
_PRICE = Field(
    default=None,
    pattern=r"^\d{1,7}(\.\d{1,2})?$",
    description="e.g. 1.50, in the marketplace's currency",
)


class SearchFilters(ApiIn):
    """What a search matches (its bounds are search.py's own), without paging."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, description="Words, matched in full text")
    license: list[Licenses] | None = _MAX_VALUES
    source: list[SourceName] | None = Field(
        default=None, max_length=search.MAX_VALUES, description="Museum adapter or 'artists'"
    )
    creator: str | None = _NAME
    medium: str | None = _NAME
    year_from: int | None = _YEAR
    year_to: int | None = _YEAR
    min_width: int | None = _PIXELS
    min_height: int | None = _PIXELS
    orientation: list[Orientations] | None = _MAX_VALUES
    price_min: str | None = _PRICE
    price_max: str | None = _PRICE
    has_image: bool | None = None
    uses: list[Uses] | None = Field(
        default=None,
        max_length=search.MAX_VALUES,
        description="Permitted uses every result must allow (repeat or comma-separate): "
        + ", ".join(PERMITTED_USES),
    )
    sort: Literal[search.SORTS] | None = None  # type: ignore[valid-type]

    def to_query(self) -> search.SearchQuery:
        """The validated parameters as the search module's query (InvalidSearch as it says)."""
        args: dict[str, list[str]] = {}
        for name, value in self.model_dump(exclude_none=True).items():
            values = value if isinstance(value, list) else [value]
            args[name] = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        return search.parse_query(args)


class SearchQueryIn(SearchFilters):
    """The search parameters of GET /works: filters, a page size and a cursor."""

    limit: int | None = Field(default=None, ge=1, le=search.MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=cursors.MAX_CURSOR_LENGTH)


class SavedSearchIn(JsonBody, SearchFilters):
    """Search filters sent as JSON (adding a whole search to a collection)."""


class ItemOut(BaseModel):
    id: int
    kind: str = Field(description="work (an artist's) or stock (public domain)")
    title: str
    creator: str
    institution: str
    source: str
    medium: str
    year_start: int | None
    year_end: int | None
    width: int | None
    height: int | None
    orientation: str
    license: str
    price_minor: int
    currency: str
    permitted_uses: list[str] = Field(
        description="What the item's terms allow, among " + ", ".join(PERMITTED_USES)
    )
    has_image: bool
    available: bool = Field(
        description="false once withdrawn (by its artist or its museum): kept in collections, "
        "but not offered, searched or bundled"
    )
    thumbnail_url: str | None
    preview_url: str | None
    url: str

    @classmethod
    def of(cls, item: CatalogItem) -> ItemOut:
        """The one serialization of a catalog item (search results, collections, details)."""
        return ItemOut(**_item_fields(item))


def _item_fields(item: CatalogItem) -> dict[str, Any]:
    def image(name: str) -> str | None:
        if not item.has_image or not item.available:
            return None
        return url_for("catalog.item_image", item_id=item.id, name=name, _external=True)

    return {
        "id": item.id,
        "kind": "work" if item.work_id is not None else "stock",
        "title": item.title,
        "creator": item.creator,
        "institution": item.institution,
        "source": item.source,
        "medium": item.medium,
        "year_start": item.year_start,
        "year_end": item.year_end,
        "width": item.width,
        "height": item.height,
        "orientation": item.orientation.value,
        "license": item.license.value,
        "price_minor": item.price_minor,
        "currency": item.currency,
        "permitted_uses": [use for use in PERMITTED_USES if item.permitted_uses & uses_mask([use])],
        "has_image": item.has_image,
        "available": item.available,
        "thumbnail_url": image("thumb"),
        "preview_url": image("preview"),
        "url": url_for("catalog.item_page", item_id=item.id, _external=True),
    }


class FacetValue(BaseModel):
    value: str
    count: int


class SearchOut(BaseModel):
    items: list[ItemOut]
    total: int
    total_exact: bool
    facets: dict[str, list[FacetValue]]
    facets_exact: bool
    next_cursor: str | None
    previous_cursor: str | None


class ItemDetailOut(ItemOut):
    description: str
    tags: str
    terms: dict[str, Any] | None
    source_record: dict[str, Any] | None
    ledger_entries: list[int]

    @classmethod
    def of_detail(cls, detail: services.ItemDetail) -> ItemDetailOut:
        stock = detail.record
        record = None
        if stock is not None:
            record = {
                "source": stock.source,
                "source_id": stock.source_id,
                "page_url": stock.page_url,
                "date_text": stock.date_text,
                "dimensions": stock.dimensions,
                "rights_statement": stock.rights_statement,
                "rights_uri": stock.rights_uri,
                "raw": stock.raw,
            }
        return cls(
            **_item_fields(detail.item),
            description=detail.item.description,
            tags=detail.item.tags,
            terms=terms_json(detail.terms) if detail.terms is not None else None,
            source_record=record,
            ledger_entries=[entry.seq for entry in detail.entries],
        )


class ItemPath(ApiIn):
    item_id: int = _ID


@bp.get("/works", tags=[tag], responses={200: SearchOut, 400: ErrorResponse, 422: ErrorResponse})
def search_works(query: SearchQueryIn) -> dict[str, Any]:
    """Search every available work: full text, filters, facet counts, a next-page cursor.
    Public."""
    try:
        parsed = query.to_query()
        result = search.search(get_session(), parsed)
    except search.InvalidSearchCursor as exc:
        raise APIError(422, "invalid_cursor", f"The {exc}.") from exc
    except search.InvalidSearch as exc:
        raise APIError(400, "invalid_search", str(exc)) from exc
    return SearchOut(
        items=[ItemOut.of(i) for i in result.items],
        total=result.total,
        total_exact=result.total_exact,
        facets={f.name: [FacetValue(value=v, count=n) for v, n in f.values] for f in result.facets},
        facets_exact=result.facets_exact,
        next_cursor=result.next_cursor,
        previous_cursor=result.previous_cursor,
    ).model_dump(mode="json")


@bp.get("/works/<id:item_id>", tags=[tag], responses={200: ItemDetailOut, 404: ErrorResponse})
def get_work(path: ItemPath) -> dict[str, Any]:
    """One available work with its terms (artists' works) or source record (stock). Public."""
    try:
        detail = services.item_detail(get_session(), path.item_id)
    except services.ItemNotFound as exc:
        raise APIError(404, "work_not_found", str(exc)) from exc
    return ItemDetailOut.of_detail(detail).model_dump(mode="json")


# --- Collections -----------------------------------------------------------------------------


class CollectionIn(JsonBody):
    name: str = Field(min_length=1, max_length=120)


class CollectionPatch(JsonBody):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    shared: bool | None = Field(default=None, description="true: make a new share link")


class CollectionOut(BaseModel):
    id: int
    name: str
    item_count: int
    share_url: str | None
    created_at: str

    @classmethod
    def of(cls, collection: Collection, count: int | None = None) -> CollectionOut:
        """The collection; its items are counted unless the caller knows `count`."""
        if count is None:
            count = services.count_items(get_session(), collection)
        share_url = None
        if collection.share_token:
            share_url = url_for(
                "catalog.shared_collection", token=collection.share_token, _external=True
            )
        return cls(
            id=collection.id,
            name=collection.name,
            item_count=count,
            share_url=share_url,
            created_at=format_timestamp(collection.created_at),
        )


class CollectionList(BaseModel):
    items: list[CollectionOut]


class CollectionPath(ApiIn):
    collection_id: int = _ID


class CollectionItemPath(ApiIn):
    collection_id: int = _ID
    item_id: int = _ID


class AddItemIn(JsonBody):
    item_id: int = _ID


class ItemsQuery(ApiIn):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class AddQueryIn(JsonBody):
    query: SavedSearchIn = Field(
        description='Search filters as for GET /works, e.g. {"q": "harbour", '
        '"license": ["public_domain"]}'
    )


class JobOut(BaseModel):
    id: int
    status: str
    added: int
    matched: int
    capped: bool
    error: str
    created_at: str
    finished_at: str | None

    @classmethod
    def of(cls, job: CollectionJob) -> JobOut:
        return cls(
            id=job.id,
            status=job.status.value,
            added=job.added,
            matched=job.matched,
            capped=job.capped,
            error=job.error,
            created_at=format_timestamp(job.created_at),
            finished_at=format_timestamp(job.finished_at) if job.finished_at else None,
        )


class JobPath(ApiIn):
    collection_id: int = _ID
    job_id: int = _ID


def _owner() -> Any:
    """Collections act for the token's organization, or for the artist holding it."""
    return current_token().created_by


def _collection(collection_id: int) -> Collection:
    try:
        return services.get_collection(get_session(), _owner(), collection_id)
    except services.CollectionNotFound as exc:
        raise APIError(404, "collection_not_found", str(exc)) from exc


_AUTH: dict[str, Any] = {"security": BEARER_SECURITY, "tags": [collections_tag]}


@bp.get("/collections", responses={200: CollectionList, 401: ErrorResponse}, **_AUTH)
@token_required
def list_collections() -> dict[str, Any]:
    """Your collections (a buyer token: the organization's)."""
    rows = services.list_collections(get_session(), _owner())
    return CollectionList(items=[CollectionOut.of(c, n) for c, n in rows]).model_dump(mode="json")


@bp.post(
    "/collections", responses={201: CollectionOut, 401: ErrorResponse, 422: ErrorResponse}, **_AUTH
)
@token_required
def create_collection(body: CollectionIn) -> tuple[dict[str, Any], int]:
    """A new, private collection."""
    try:
        with transaction() as session:
            collection = services.create_collection(session, _owner(), body.name)
    except services.CatalogError as exc:
        raise APIError(422, "invalid", str(exc)) from exc
    return CollectionOut.of(collection, 0).model_dump(mode="json"), 201


@bp.get(
    "/collections/<id:collection_id>",
    responses={200: CollectionOut, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def get_collection(path: CollectionPath) -> dict[str, Any]:
    """One collection (another organization's is 404)."""
    return CollectionOut.of(_collection(path.collection_id)).model_dump(mode="json")


@bp.patch(
    "/collections/<id:collection_id>",
    responses={200: CollectionOut, 401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse},
    **_AUTH,
)
@token_required
def update_collection(path: CollectionPath, body: CollectionPatch) -> dict[str, Any]:
    """Rename, share by link (a new unguessable link each time) or stop sharing."""
    collection = _collection(path.collection_id)
    try:
        with transaction() as session:
            if body.name is not None:
                services.rename_collection(session, collection, body.name)
            if body.shared is not None:
                services.set_sharing(session, collection, body.shared)
    except services.CatalogError as exc:
        raise APIError(422, "invalid", str(exc)) from exc
    return CollectionOut.of(collection).model_dump(mode="json")


@bp.delete(
    "/collections/<id:collection_id>",
    responses={204: None, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def delete_collection(path: CollectionPath) -> tuple[str, int]:
    """Delete a collection (the works stay in the catalog)."""
    collection = _collection(path.collection_id)
    with transaction() as session:
        services.delete_collection(session, collection)
    return "", 204


@bp.get(
    "/collections/<id:collection_id>/items",
    responses={200: ItemPage, 401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse},
    **_AUTH,
)
@token_required
def list_collection_items(path: CollectionPath, query: ItemsQuery) -> dict[str, Any]:
    """The collection's works, by cursor."""
    collection = _collection(path.collection_id)
    after = cursors.decode_after(services.COLLECTION_CURSOR, query.cursor)
    items = services.collection_items(get_session(), collection, after=after, limit=query.limit + 1)
    page = items[: query.limit]
    more = len(items) > query.limit and page
    next_cursor = cursors.encode_after(services.COLLECTION_CURSOR, page[-1].id) if more else None
    return ItemPage(items=[ItemOut.of(i) for i in page], next_cursor=next_cursor).model_dump(
        mode="json"
    )


@bp.post(
    "/collections/<id:collection_id>/items",
    responses={201: CollectionOut, 200: CollectionOut, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def add_collection_item(path: CollectionPath, body: AddItemIn) -> tuple[dict[str, Any], int]:
    """Add one work (201; 200 if it was already there)."""
    collection = _collection(path.collection_id)
    try:
        with transaction() as session:
            added = services.add_item(session, collection, body.item_id)
    except services.ItemNotFound as exc:
        raise APIError(404, "work_not_found", str(exc)) from exc
    return CollectionOut.of(collection).model_dump(mode="json"), 201 if added else 200


@bp.delete(
    "/collections/<id:collection_id>/items/<id:item_id>",
    responses={204: None, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def remove_collection_item(path: CollectionItemPath) -> tuple[str, int]:
    """Remove one work from the collection."""
    collection = _collection(path.collection_id)
    try:
        with transaction() as session:
            services.remove_item(session, collection, path.item_id)
    except services.ItemNotFound as exc:
        raise APIError(404, "not_in_collection", str(exc)) from exc
    return "", 204


@bp.post(
    "/collections/<id:collection_id>/add-by-query",
    responses={202: JobOut, 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def add_by_query(path: CollectionPath, body: AddQueryIn) -> tuple[dict[str, Any], int]:
    """Add every result of a search (up to the cap) as a job; poll the job for its status."""
    collection = _collection(path.collection_id)
    try:
        query = body.query.to_query()
    except search.InvalidSearch as exc:
        raise APIError(400, "invalid_search", str(exc)) from exc
    with transaction() as session:
        job = services.start_add_by_query(session, collection, query)
    get_session().refresh(job)
    return JobOut.of(job).model_dump(mode="json"), 202


@bp.get(
    "/collections/<id:collection_id>/jobs/<id:job_id>",
    responses={200: JobOut, 401: ErrorResponse, 404: ErrorResponse},
    **_AUTH,
)
@token_required
def get_collection_job(path: JobPath) -> dict[str, Any]:
    """The status of an add-by-query job."""
    collection = _collection(path.collection_id)
    try:
        job = services.get_job(get_session(), collection, path.job_id)
    except services.CollectionNotFound as exc:
        raise APIError(404, "job_not_found", str(exc)) from exc
    return JobOut.of(job).model_dump(mode="json")


@bp.post(
    "/collections/<id:collection_id>/jobs/<id:job_id>/retry",
    responses={202: JobOut, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse},
    **_AUTH,
)
@token_required
def retry_collection_job(path: JobPath) -> tuple[dict[str, Any], int]:
    """Queue a failed add-by-query job again (items it already added are not added twice)."""
    collection = _collection(path.collection_id)
    try:
        with transaction() as session:
            job = services.retry_job(session, collection, path.job_id)
    except services.CollectionNotFound as exc:
        raise APIError(404, "job_not_found", str(exc)) from exc
    except services.JobNotRetryable as exc:
        raise APIError(409, "job_not_retryable", str(exc)) from exc
    get_session().refresh(job)
    return JobOut.of(job).model_dump(mode="json"), 202
