"""/admin/reservations: load a site's reservation file (replacing any on record) and see the
files on record. Administrators only; artists load through the API, operators by the CLI."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace.db import get_session, transaction
from marketplace.reservations import services
from marketplace.reservations.forms import LoadReservationForm
from marketplace.reservations.models import ReservationSource
from marketplace.reservations.parsers import ReservationFileError, ReservationKind
from marketplace.security import role_required

bp = Blueprint("reservations", __name__, url_prefix="/admin/reservations")


def _render(form: LoadReservationForm | None = None, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "reservations/admin.html",
        form=form or LoadReservationForm(formdata=None),
        files=services.list_recent(get_session()),
        live_fetch=bool(current_app.config["RESERVATIONS_LIVE_FETCH"]),
    ), status


@bp.route("")
@role_required("admin")
def index() -> ResponseReturnValue:
    return _render()


@bp.route("/load", methods=["POST"])
@role_required("admin")
def load() -> ResponseReturnValue:
    form = LoadReservationForm()
    if not form.validate_on_submit():
        return _render(form, 422)
    max_bytes = int(current_app.config["RESERVATIONS_MAX_FILE_BYTES"])
    try:
        with transaction() as session:
            result = services.load_file(
                session,
                form.domain.data or "",
                ReservationKind(form.kind.data),
                form.file.data.read(max_bytes + 1),
                source=ReservationSource.ADMIN,
                max_bytes=max_bytes,
                loaded_by=current_user,
            )
            domain, kind = result.file.domain, result.file.kind.value
    except services.BadDomain as exc:
        form.domain.errors = [str(exc)]
        return _render(form, 422)
    except (ReservationFileError, services.ReservationError) as exc:
        form.file.errors = [str(exc)]
        return _render(form, 422)
    if result.changed:
        flash(f"The {kind} file for {domain} is on record.", "success")
    else:
        flash(f"The same {kind} file for {domain} was already on record.", "info")
    return redirect(url_for("reservations.index"))
