"""Catalog pages: search with facets, item details with provenance, collections."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import cursors, imaging, storage, uploads
from marketplace.amounts import format_number
from marketplace.artists.terms import (
    LICENCE_LOCALE,
    PERMITTED_USES,
    USE_LABELS,
    TermsSpec,
    format_money,
    summary,
    uses_mask,
)
from marketplace.catalog import search, services, similar
from marketplace.catalog.forms import CollectionForm, SimilarImageForm
from marketplace.catalog.models import CatalogItem, Collection
from marketplace.db import get_session, parse_row_id, transaction
from marketplace.extensions import limiter
from marketplace.forms import ConfirmForm
from marketplace.security import login_required_any

FACET_LABELS = {
    "license": "Licence",
    "source": "Source",
    "orientation": "Orientation",
    "has_image": "Image mirrored",
    "creator": "Creator",
    "medium": "Medium",
}
VALUE_LABELS = {
    "public_domain": "Public domain",
    "cc0": "CC0 (donated)",
    "licensed": "Licensed",
    "true": "Yes",
    "false": "Not yet",
    "artists": "Marketplace artists",
}

# Routes spell their full paths: /catalog/..., /collections/..., and shared links /c/<token>.
bp = Blueprint("catalog", __name__)


def _query_args() -> dict[str, list[str]]:
    """The search's own parameters: a shared link's tracking tags (utm_source, fbclid...) are
    not ours to refuse on a page (the API, a contract, still refuses unknown names)."""
    return {name: request.args.getlist(name) for name in request.args if name in search.FILTERS}


def _link(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    clean = {k: v for k, v in merged.items() if v not in (None, "", [], ())}
    return url_for("catalog.search_page") + ("?" + urlencode(clean, doseq=True) if clean else "")


# Filters whose inputs are on the page: a bad value is shown beside its field, in words.
FIELD_LABELS = {
    "year_from": "From year",
    "year_to": "To year",
    "min_width": "Min. width",
    "min_height": "Min. height",
    "price_min": "Min. price",
    "price_max": "Max. price",
    "sort": "Sort order",
}


def _query_keeping_the_rest(
    args: dict[str, list[str]],
) -> tuple[search.SearchQuery, search.SearchResult, dict[str, str]]:
    """Search without the parameters at fault, with a message for each of them: a bad filter
    must not wipe the page (results, facets and the other filters stay)."""
    errors: dict[str, str] = {}
    while True:
        try:
            query = search.parse_query(args)
            return query, search.search(get_session(), query), errors
        except search.InvalidSearch as exc:
            faulty = [name for name in exc.params if name in args]
            if not faulty:
                raise
            for name in faulty:
                label = FIELD_LABELS.get(name)
                errors[name] = str(exc).replace(name, label, 1) if label else str(exc)
                args = {k: v for k, v in args.items() if k != name}


@bp.route("/catalog")
def search_page() -> ResponseReturnValue:
    """Public: anyone may browse the catalog."""
    args = _query_args()
    try:
        query, result, errors = _query_keeping_the_rest(args)
    except search.InvalidSearch as exc:
        return render_template("catalog/search.html", error=str(exc), result=None, query=None), 400
    # Booleans as the page's own inputs spell them, so the chosen radio button is checked.
    params = {
        name: ("true" if value else "false") if isinstance(value, bool) else value
        for name, value in query.to_params().items()
    }
    collections = []
    if current_user.is_authenticated:
        collections = [c for c, _ in services.list_collections(get_session(), current_user)]
    return render_template(
        "catalog/search.html",
        error=None,
        query=query,
        params=params,
        query_string=urlencode(params, doseq=True),
        result=result,
        link=_link,
        facet_labels=FACET_LABELS,
        value_labels=VALUE_LABELS,
        price=_price,
        collections=collections,
        confirm=ConfirmForm(),
        use_labels=[(use, USE_LABELS[use]) for use in PERMITTED_USES],
        currency=str(current_app.config["DEFAULT_CURRENCY"]).upper(),
        amount_text=_amount_text,
        field_errors={k: v for k, v in errors.items() if k in FIELD_LABELS},
        other_errors=[v for k, v in errors.items() if k not in FIELD_LABELS],
        typed={name: (args.get(name) or [""])[0] for name in errors},
        similar_form=SimilarImageForm(),
    ), (400 if errors else 200)


@bp.route("/catalog/similar", methods=["POST"])
@limiter.shared_limit(similar.RATE_LIMIT, scope=similar.RATE_LIMIT_SCOPE)
def similar_by_image() -> ResponseReturnValue:
    """Public, like the search it sits beside: works that look like an uploaded image. The
    image is hashed and dropped, never stored."""
    uploads.limit_request_to_one_image()
    form = SimilarImageForm()
    found: list[similar.SimilarItem] | None = None
    if form.validate_on_submit():
        upload = form.image.data
        try:
            image = uploads.inspect_query_image(upload.read())
        except imaging.ImageRejected as exc:
            form.image.errors.append(imaging.rejection(upload.filename, exc))
        else:
            found = similar.similar_items(get_session(), image.phash, limit=similar.MAX_LIMIT)
    status = 200 if found is not None else 400
    return render_template("catalog/similar.html", form=form, found=found, price=_price), status


def _amount_text(amount_minor: int) -> str:
    """A price filter's value as the filter reads it back (English, no currency sign)."""
    currency = str(current_app.config["DEFAULT_CURRENCY"])
    return format_number(amount_minor, currency, LICENCE_LOCALE)


def _price(item: CatalogItem) -> str:
    return format_money(item.price_minor, item.currency) if item.price_minor else "Free"


@bp.route("/catalog/items/<id:item_id>")
def item_page(item_id: int) -> ResponseReturnValue:
    """Public: an available item with its licence, price and provenance."""
    session = get_session()
    try:
        detail = services.item_detail(session, item_id)
    except services.ItemNotFound:
        abort(404)
    item, work, record, terms, entries = (
        detail.item,
        detail.work,
        detail.record,
        detail.terms,
        detail.entries,
    )
    collections = []
    if current_user.is_authenticated:
        collections = [c for c, _ in services.list_collections(session, current_user)]
    try:
        # Never wait for a first index here: the page shows no strip until it is ready.
        alike = similar.similar_to_item(session, item.id, wait=False)
    except (similar.NoImageHash, similar.IndexNotReady):
        alike = []
    return render_template(
        "catalog/item.html",
        similar=alike,
        price_of=_price,
        item=item,
        work=work,
        record=record,
        terms=terms,
        terms_summary=summary(TermsSpec.of(terms)) if terms else None,
        entries=entries,
        price=_price(item),
        collections=collections,
        confirm=ConfirmForm(),
        value_labels=VALUE_LABELS,
        permitted=[
            (USE_LABELS[use], bool(item.permitted_uses & uses_mask([use])))
            for use in PERMITTED_USES
        ],
        attribution_required=bool(terms and terms.attribution_required),
    )


@bp.route("/catalog/items/<id:item_id>/<any(thumb, preview):name>.webp")
def item_image(item_id: int, name: str) -> Response:
    """Public: the thumbnail or preview of an available item."""
    session = get_session()
    item = session.get(CatalogItem, item_id)
    key = (
        services.item_image_key(get_session(), item, name)
        if item is not None and item.available
        else None
    )
    if key is None:
        abort(404)
    try:
        data = storage.get(key)
    except storage.ObjectNotFound:
        abort(404)
    response = Response(data, mimetype="image/webp")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# --- Collections -----------------------------------------------------------------------------


def _collection(collection_id: int) -> Collection:
    try:
        return services.get_collection(get_session(), current_user, collection_id)
    except services.CollectionNotFound:
        abort(404)


@bp.route("/collections", methods=["GET", "POST"])
@login_required_any
def collections() -> ResponseReturnValue:
    form = CollectionForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            with transaction() as session:
                collection = services.create_collection(session, current_user, form.name.data or "")
            flash(f"Collection “{collection.name}” created.", "success")
            return redirect(url_for("catalog.collection_page", collection_id=collection.id))
        status = 422
    return render_template(
        "catalog/collections.html",
        collections=services.list_collections(get_session(), current_user),
        form=form,
    ), status


@bp.route("/collections/<id:collection_id>")
@login_required_any
def collection_page(collection_id: int) -> ResponseReturnValue:
    return _render_collection(_collection(collection_id), shared=False)


COLLECTION_PAGE = 48


def _render_collection(collection: Collection, *, shared: bool) -> ResponseReturnValue:
    """The owner's page (with tools and job status) or the read-only shared page."""
    try:
        after = cursors.decode_after(services.COLLECTION_CURSOR, request.args.get("cursor"))
    except cursors.InvalidCursor as exc:
        abort(400, description=f"{exc} Start again from the collection's first page.")
    rows = services.collection_items(
        get_session(), collection, after=after, limit=COLLECTION_PAGE + 1
    )
    items = rows[:COLLECTION_PAGE]
    more = len(rows) > COLLECTION_PAGE and items
    return render_template(
        "catalog/collection.html",
        collection=collection,
        items=items,
        jobs=[] if shared else services.recent_jobs(get_session(), collection),
        next_cursor=cursors.encode_after(services.COLLECTION_CURSOR, items[-1].id)
        if more
        else None,
        confirm=None if shared else ConfirmForm(),
        rename=None if shared else CollectionForm(formdata=None, obj=collection),
        price=_price,
        shared=shared,
    )


@bp.route("/collections/<id:collection_id>/rename", methods=["POST"])
@login_required_any
def rename_collection(collection_id: int) -> ResponseReturnValue:
    collection = _collection(collection_id)
    form = CollectionForm()
    if form.validate_on_submit():
        with transaction() as session:
            services.rename_collection(session, collection, form.name.data or "")
        flash("Renamed.", "success")
    else:
        for error in form.name.errors:
            flash(f"Not renamed: {error}", "error")
    return redirect(url_for("catalog.collection_page", collection_id=collection.id))


@bp.route("/collections/<id:collection_id>/delete", methods=["POST"])
@login_required_any
def delete_collection(collection_id: int) -> ResponseReturnValue:
    collection = _collection(collection_id)
    if ConfirmForm().validate_on_submit():
        with transaction() as session:
            services.delete_collection(session, collection)
        flash("Collection deleted.", "info")
    return redirect(url_for("catalog.collections"))


@bp.route("/collections/<id:collection_id>/share", methods=["POST"])
@login_required_any
def share_collection(collection_id: int) -> ResponseReturnValue:
    collection = _collection(collection_id)
    if ConfirmForm().validate_on_submit():
        shared = request.form.get("shared") == "1"
        with transaction() as session:
            services.set_sharing(session, collection, shared)
        flash("Anyone with the link can now view it." if shared else "No longer shared.", "info")
    return redirect(url_for("catalog.collection_page", collection_id=collection.id))


def _form_id(name: str) -> int:
    row_id = parse_row_id(request.form.get(name))
    if row_id is None:
        abort(400)
    return row_id


@bp.route("/collections/add-item", methods=["POST"])
@login_required_any
def add_to_collection() -> ResponseReturnValue:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    collection = _collection(_form_id("collection_id"))
    item_id = _form_id("item_id")
    try:
        with transaction() as session:
            added = services.add_item(session, collection, item_id)
    except services.ItemNotFound:
        abort(404)
    flash(
        f"Added to “{collection.name}”." if added else f"Already in “{collection.name}”.",
        "success",
    )
    return redirect(url_for("catalog.item_page", item_id=item_id))


@bp.route("/collections/<id:collection_id>/items/<id:item_id>/remove", methods=["POST"])
@login_required_any
def remove_from_collection(collection_id: int, item_id: int) -> ResponseReturnValue:
    collection = _collection(collection_id)
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                services.remove_item(session, collection, item_id)
        except services.ItemNotFound:
            abort(404)
        flash("Removed.", "info")
    return redirect(url_for("catalog.collection_page", collection_id=collection.id))


@bp.route("/collections/add-search", methods=["POST"])
@login_required_any
def add_search_to_collection() -> ResponseReturnValue:
    """Every result of the search in the form's hidden fields, as a job."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    collection = _collection(_form_id("collection_id"))
    args = {
        k: request.form.getlist(k) for k in request.form if k not in ("csrf_token", "collection_id")
    }
    try:
        query = search.parse_query(args)
    except search.InvalidSearch as exc:
        flash(str(exc), "error")
        return redirect(url_for("catalog.search_page"))
    with transaction() as session:
        job = services.start_add_by_query(session, collection, query)
    flash(f"Adding every result to “{collection.name}” (job {job.id}).", "info")
    return redirect(url_for("catalog.collection_page", collection_id=collection.id))


@bp.route("/collections/<id:collection_id>/jobs/<id:job_id>/retry", methods=["POST"])
@login_required_any
def retry_collection_job(collection_id: int, job_id: int) -> ResponseReturnValue:
    """Queue a failed add-by-query job again."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    collection = _collection(collection_id)
    try:
        with transaction() as session:
            job = services.retry_job(session, collection, job_id)
    except services.CollectionNotFound:
        abort(404)
    except services.JobNotRetryable as exc:
        flash(str(exc), "error")
    else:
        flash(f"Job {job.id} queued again.", "info")
    return redirect(url_for("catalog.collection_page", collection_id=collection.id))


@bp.route("/c/<token>")
def shared_collection(token: str) -> ResponseReturnValue:
    """Public to whoever holds the unguessable link."""
    try:
        collection = services.shared_collection(get_session(), token)
    except services.CollectionNotFound:
        abort(404)
    return _render_collection(collection, shared=True)
