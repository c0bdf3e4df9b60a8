"""Certificate pages: an order's certificate (JSON, PDF) for its buyers, and the public /verify."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from marketplace import storage
from marketplace.buyers import services as buyers
from marketplace.certificates import services
from marketplace.certificates.forms import VerifyForm
from marketplace.certificates.pdf import render_pdf
from marketplace.db import get_session
from marketplace.extensions import limiter
from marketplace.ledger import services as ledger
from marketplace.ledger import verify as verifier
from marketplace.security import role_required

log = logging.getLogger(__name__)

bp = Blueprint("certificates", __name__)


def _certificate_bytes(order_id: int) -> bytes:
    """The certificate of an order the user may see; 404 for others' orders and when none."""
    session = get_session()
    try:
        buyers.get_order(session, current_user, order_id)
        return services.certificate_bytes(session, order_id)
    except (buyers.NotFound, services.CertificateNotFound):
        abort(404)
    except services.LicenceRevoked as exc:
        abort(410, str(exc))


def json_response(data: bytes, order_id: int) -> Response:
    return Response(
        data,
        mimetype="application/json",
        headers={"Content-Disposition": storage.attachment_header(f"certificate-{order_id}.json")},
    )


def pdf_response(data: bytes, order_id: int, json_url: str) -> Response:
    document = json.loads(data)
    pdf = render_pdf(
        document,
        items_max=int(current_app.config["CERTIFICATE_PDF_ITEMS_MAX"]),
        json_url=json_url,
    )
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": storage.attachment_header(f"certificate-{order_id}.pdf")},
    )


@bp.route("/orders/<id:order_id>/certificate.json")
@role_required("buyer", "admin")
def certificate_json(order_id: int) -> ResponseReturnValue:
    return json_response(_certificate_bytes(order_id), order_id)


@bp.route("/orders/<id:order_id>/certificate.pdf")
@role_required("buyer", "admin")
def certificate_pdf(order_id: int) -> ResponseReturnValue:
    data = _certificate_bytes(order_id)
    url = url_for("certificates.certificate_json", order_id=order_id, _external=True)
    return pdf_response(data, order_id, url)


def _keys() -> dict[str, str]:
    return {"log": ledger.identity().verifier_key, "certificate": services.public_key()}


def _read_upload(form: VerifyForm) -> tuple[dict[str, Any] | None, str | None]:
    """The uploaded JSON object, or None and a sentence saying why not."""
    limit = int(current_app.config["VERIFY_UPLOAD_MAX_BYTES"])
    data = form.certificate.data.read(limit + 1)
    if len(data) > limit:
        return None, f"The file is larger than {limit:,} bytes; check it offline instead."
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "The file is not JSON: upload the certificate.json of an order."
    if not isinstance(document, dict) or document.get("format") != verifier.CERTIFICATE_FORMAT:
        return None, "The file is JSON but not a certificate (format marketplace-certificate/1)."
    return document, None


# Public: anyone holding a certificate may check it, with our published keys pinned. Checking
# a large certificate takes CPU, so uploads are throttled per address.
@bp.route("/verify", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def verify_page() -> ResponseReturnValue:
    form = VerifyForm()
    result = None
    document = None
    status = 200
    if form.validate_on_submit():
        document, problem = _read_upload(form)
        if problem:
            form.certificate.errors.append(problem)
            status = 400
        else:
            assert document is not None
            keys = _keys()
            result = verifier.verify_certificate(
                document, key=keys["log"], certificate_key=keys["certificate"]
            )
            log.info("certificate checked on /verify: %s", "valid" if result.ok else "invalid")
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "certificates/verify.html",
            form=form,
            result=result,
            certificate=document if result is not None else None,
            keys=_keys(),
        ),
        status,
    )


# Public: the standalone verifier is this module's own source, one file, with the platform's
# two public keys written in as its pinned defaults (so a forged file's own keys never count).
@bp.route("/verify/verifier.py")
def verifier_source() -> Response:
    source = pinned_verifier_source(_keys())
    return Response(
        source,
        mimetype="text/x-python",
        headers={"Content-Disposition": storage.attachment_header("verifier.py")},
    )


def pinned_verifier_source(keys: dict[str, str]) -> bytes:
    """verify.py with PINNED_LOG_KEY and PINNED_CERTIFICATE_KEY set to `keys`."""
    source = Path(verifier.__file__).read_text("utf-8")
    for name, key in (
        ("PINNED_LOG_KEY", keys["log"]),
        ("PINNED_CERTIFICATE_KEY", keys["certificate"]),
    ):
        unset = f"{name}: str | None = None\n"
        if source.count(unset) != 1:
            raise RuntimeError(f"verify.py no longer declares {name} once")
        source = source.replace(unset, f"{name}: str | None = {key!r}\n")
    return source.encode("utf-8")
