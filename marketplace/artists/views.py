"""Artist pages: dashboard, uploads, works and their terms, profile; public terms and images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.datastructures import FileStorage

from marketplace import imaging, storage
from marketplace.amounts import AmountInvalid, format_amount, parse_amount
from marketplace.artists import services
from marketplace.artists.forms import (
    BatchTermsForm,
    DefaultTermsForm,
    ProfileForm,
    UploadForm,
    WithdrawForm,
    WorkDetailsForm,
    WorkTermsForm,
    price_said,
    price_token,
)
from marketplace.artists.models import Artist, Work, WorkStatus, WorkTerms
from marketplace.artists.serializers import terms_json
from marketplace.artists.terms import TermsInvalid, TermsSpec, licence_text, summary
from marketplace.db import get_session, parse_row_id, transaction
from marketplace.forms import ConfirmForm, request_locale
from marketplace.security import role_required
from marketplace.storage import keys

# Routes spell their full paths: /artists/..., and the public /terms/<id> and /works/<id>/...
bp = Blueprint("artists", __name__)


def _artist() -> Artist:
    artist: Artist | None = current_user.artist
    if artist is None:
        abort(404)
    return artist


def _own_work(work_id: int) -> Work:
    """The current artist's work: 404 if absent or another artist's (ids are not confirmed)."""
    try:
        return services.get_own_work(get_session(), _artist(), work_id)
    except services.WorkNotFound:
        abort(404)


@bp.route("/artists/dashboard")
@role_required("artist")
def dashboard() -> ResponseReturnValue:
    form = BatchTermsForm(formdata=None)
    form.fill_from(services.default_terms(_artist()))
    return _dashboard(form)


def _dashboard(
    batch_form: BatchTermsForm, selected: Sequence[int] = (), status: int = 200
) -> ResponseReturnValue:
    artist = _artist()
    session = get_session()
    return render_template(
        "artists/dashboard.html",
        artist=artist,
        works=services.list_works(session, artist),
        counts=services.count_works(session, artist),
        batch_form=batch_form,
        selected=set(selected),
        default_summary=summary(services.default_terms(artist)),
        summary=summary,
        TermsSpec=TermsSpec,
    ), status


@bp.route("/artists/price-check")
@role_required("artist")
def check_price() -> ResponseReturnValue:
    """How a typed price reads in the artist's locale, with the token that confirms it (the
    terms forms' script shows this before submitting; without the script the form does)."""
    typed = request.args.get("price", "")[:100]
    currency = str(current_app.config["DEFAULT_CURRENCY"]).lower()
    try:
        amount = parse_amount(typed, currency, request_locale())
    except AmountInvalid as exc:
        return jsonify({"ok": False, "message": str(exc)})
    return jsonify(
        {
            "ok": True,
            "amount_minor": amount,
            "currency": currency,
            "display": format_amount(amount, currency, request_locale()),
            "message": price_said(typed, amount, currency),
            "token": price_token(amount, currency),
        }
    )


def _read(upload: FileStorage) -> bytes:
    return upload.read() if upload and upload.filename else b""


@bp.route("/artists/works/new", methods=["GET", "POST"])
@role_required("artist")
def upload_works() -> ResponseReturnValue:
    artist = _artist()
    form = UploadForm()
    default = services.default_terms(artist)
    if request.method == "GET":
        form.fill_from(default)
        return _upload_page(form, default)
    if not form.validate_on_submit():
        return _upload_page(form, default, 422)
    # The terms shown are the terms recorded: the form starts from the defaults, and a post
    # that names no terms at all (a script, an old form) means the defaults.
    terms = form.terms_spec() if form.kind.raw_data else default
    if terms is None:
        return _upload_page(form, default, 200 if form.awaiting_confirmation else 422)
    files = [(f.filename or "upload", f.read()) for f in request.files.getlist("images") if f]
    files = [(name, data) for name, data in files if name]
    if not files:
        form.images.errors = ["Choose at least one image."]
        return _upload_page(form, default, 422)
    csv_data = _read(request.files.get("metadata_csv"))  # type: ignore[arg-type]
    try:
        results, notes = services.upload_batch(
            artist.id,
            current_user.id,
            files,
            metadata_csv=csv_data or None,
            terms=terms,
            confirm_override=bool(form.confirm_override.data),
        )
    except services.MetadataUnreadable as exc:
        form.metadata_csv.errors = [str(exc)]
        return _upload_page(form, default, 422)
    ok = [r for r in results if r.work_id]
    if ok:
        flash(f"{len(ok)} of {len(results)} files uploaded. Thumbnails appear shortly.", "success")
    status = 200 if ok else 422
    return render_template(
        "artists/upload_results.html", results=results, notes=notes, form=form
    ), status


def _upload_page(form: UploadForm, default: TermsSpec, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "artists/upload.html", form=form, default_summary=summary(default)
    ), status


@bp.route("/artists/works/<id:work_id>", methods=["GET", "POST"])
@role_required("artist")
def show_work(work_id: int) -> ResponseReturnValue:
    work = _own_work(work_id)
    details = WorkDetailsForm(obj=work) if request.method == "GET" else WorkDetailsForm()
    status = 200
    if request.method == "POST":
        if details.validate_on_submit():
            try:
                with transaction() as session:
                    services.update_work_details(
                        session,
                        work,
                        title=details.title.data or "",
                        description=details.description.data or "",
                        tags=details.tags.data or "",
                    )
            except services.ArtistError as exc:
                details.title.errors = [str(exc)]
                status = 422
            else:
                flash("Saved.", "success")
                return redirect(url_for("artists.show_work", work_id=work.id))
        else:
            status = 422
    return _render_work(work, details=details, status=status)


def _render_work(
    work: Work,
    *,
    details: WorkDetailsForm | None = None,
    terms_form: WorkTermsForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    if terms_form is None:
        terms_form = WorkTermsForm(formdata=None)
        if work.current_terms:
            terms_form.fill_from(TermsSpec.of(work.current_terms))
    return render_template(
        "artists/work.html",
        work=work,
        details=details or WorkDetailsForm(obj=work, formdata=None),
        terms_form=terms_form,
        confirm=ConfirmForm(),
        entries=services.provenance(get_session(), work),
        summary=summary,
        TermsSpec=TermsSpec,
    ), status


@bp.route("/artists/works/<id:work_id>/terms", methods=["POST"])
@role_required("artist")
def set_work_terms(work_id: int) -> ResponseReturnValue:
    work = _own_work(work_id)
    form = WorkTermsForm()
    spec = form.terms_spec() if form.validate_on_submit() else None
    if spec is None:
        return _render_work(
            work, terms_form=form, status=200 if form.awaiting_confirmation else 422
        )
    try:
        with transaction() as session:
            terms = services.set_terms(
                session, work, current_user, spec, confirm_override=bool(form.confirm_override.data)
            )
    except services.ConsentConfirmationRequired as exc:
        form.confirm_override.errors = [str(exc)]
        return _render_work(work, terms_form=form, status=422)
    except TermsInvalid as exc:
        form.kind.errors = [str(exc)]
        return _render_work(work, terms_form=form, status=422)
    flash(f"Terms saved as version {terms.version}: {summary(TermsSpec.of(terms))}.", "success")
    return redirect(url_for("artists.show_work", work_id=work.id))


@bp.route("/artists/works/terms", methods=["POST"])
@role_required("artist")
def set_batch_terms() -> ResponseReturnValue:
    artist = _artist()
    form = BatchTermsForm()
    ids = [i for i in map(parse_row_id, request.form.getlist("work_ids")) if i is not None]
    spec = form.terms_spec() if form.validate_on_submit() else None
    if spec is None:
        return _dashboard(form, ids, 200 if form.awaiting_confirmation else 422)
    try:
        with transaction() as session:
            versions = services.apply_terms_to_works(
                session,
                artist,
                current_user,
                ids,
                spec,
                confirm_override=bool(form.confirm_override.data),
            )
    except services.WorkNotFound:
        abort(404)
    except (services.ArtistError, TermsInvalid) as exc:
        flash(str(exc), "error")
        return redirect(url_for("artists.dashboard")), 303
    flash(f"Terms set on {len(versions)} works: {summary(spec)}.", "success")
    return redirect(url_for("artists.dashboard"))


@bp.route("/artists/works/<id:work_id>/withdraw", methods=["GET", "POST"])
@role_required("artist")
def withdraw_work(work_id: int) -> ResponseReturnValue:
    """Withdrawing consent takes two steps: this page says what it does, its button does it. A
    post without the confirmation (an old form, a stray click) only shows the page."""
    work = _own_work(work_id)
    form = WithdrawForm()
    if request.method == "POST" and form.validate_on_submit():
        with transaction() as session:
            services.withdraw_consent(session, work, current_user)
        flash("Consent withdrawn: the work is out of every future sale.", "info")
        return redirect(url_for("artists.show_work", work_id=work.id))
    if work.status is WorkStatus.WITHDRAWN:
        return redirect(url_for("artists.show_work", work_id=work.id))
    return render_template("artists/withdraw.html", work=work, form=WithdrawForm(formdata=None))


@bp.route("/artists/works/<id:work_id>/original")
@role_required("artist")
def download_original(work_id: int) -> ResponseReturnValue:
    work = _own_work(work_id)
    # Named and typed by the format sniffed at upload: a PNG uploaded as x.html is x.png.
    stem = PurePath(work.original_filename).stem or f"work-{work.id}"
    name = f"{stem}.{imaging.EXTENSIONS[work.format]}"
    return redirect(storage.download_url(keys.work_original(work.id), name, content_type=work.mime))


@bp.route("/artists/defaults", methods=["GET", "POST"])
@role_required("artist")
def default_terms() -> ResponseReturnValue:
    artist = _artist()
    form = DefaultTermsForm()
    if request.method == "GET":
        form.fill_from(services.default_terms(artist))
    elif form.validate_on_submit() and (spec := form.terms_spec()) is not None:
        try:
            with transaction() as session:
                services.set_default_terms(session, artist, spec)
        except TermsInvalid as exc:
            form.kind.errors = [str(exc)]
        else:
            flash(f"Default terms saved: {summary(spec)}.", "success")
            return redirect(url_for("artists.dashboard"))
    status = 422 if request.method == "POST" and not form.awaiting_confirmation else 200
    return render_template("artists/defaults.html", form=form), status


@bp.route("/artists/profile", methods=["GET", "POST"])
@role_required("artist")
def edit_profile() -> ResponseReturnValue:
    artist = _artist()
    form = ProfileForm(obj=artist) if request.method == "GET" else ProfileForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            with transaction() as session:
                services.update_profile(
                    session,
                    artist,
                    display_name=form.display_name.data or "",
                    bio=form.bio.data or "",
                    links=form.links.data or "",
                    country=form.country.data or "",
                )
        except services.ArtistError as exc:
            form.links.errors = [str(exc)]
        else:
            flash("Profile saved.", "success")
            return redirect(url_for("artists.public_profile", artist_id=artist.id))
    status = 422 if request.method == "POST" else 200
    return render_template("artists/profile_form.html", form=form), status


# --- Public pages ----------------------------------------------------------------------------


@bp.route("/artists/<id:artist_id>")
def public_profile(artist_id: int) -> ResponseReturnValue:
    """Public: the artist and the works they offer for licensing or donation."""
    session = get_session()
    artist = session.get(Artist, artist_id)
    if artist is None:
        abort(404)
    return render_template(
        "artists/public_profile.html",
        artist=artist,
        works=services.public_works(session, artist),
        summary=summary,
        TermsSpec=TermsSpec,
    )


def _terms(terms_id: int) -> WorkTerms:
    terms = get_session().get(WorkTerms, terms_id)
    if terms is None:
        abort(404)
    return terms


@bp.route("/terms/<id:terms_id>")
def show_terms(terms_id: int) -> ResponseReturnValue:
    """Public: the human-readable licence of one immutable terms version."""
    terms = _terms(terms_id)
    spec = TermsSpec.of(terms)
    text = licence_text(
        spec,
        work_title=terms.work.title,
        artist_name=terms.work.artist.display_name,
        version=terms.version,
    )
    return render_template(
        "artists/terms.html",
        terms=terms,
        spec=spec,
        text=text,
        standing=services.terms_standing(terms),
    )


@bp.route("/terms/<id:terms_id>.json")
def show_terms_json(terms_id: int) -> Response:
    """Public: the machine-readable form of one terms version."""
    return jsonify(terms_json(_terms(terms_id)))


def _visible(work: Work) -> bool:
    """Derivatives are public for works on offer; owners and admins always see theirs."""
    if work.is_available:
        return True
    if not current_user.is_authenticated:
        return False
    if current_user.role == "admin":
        return True
    artist = current_user.artist
    return artist is not None and artist.id == work.artist_id


@bp.route("/works/<id:work_id>/<any(thumb, preview):name>.webp")
def derivative(work_id: int, name: str) -> ResponseReturnValue:
    """Public for works on offer (previews of priced works are watermarked)."""
    work = get_session().get(Work, work_id)
    if work is None or not work.derivatives_ready or not _visible(work):
        abort(404)
    try:
        data = storage.get(keys.work_derivative(work.id, work.derivatives_version, name))
    except storage.ObjectNotFound:
        abort(404)
    response = Response(data, mimetype="image/webp")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
