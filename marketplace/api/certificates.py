"""Certificates in the API: an order's certificate (JSON, PDF) and the key that signs them."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, url_for
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace import storage
from marketplace.api.auth import BEARER_SECURITY, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse
from marketplace.buyers import services as buyers
from marketplace.certificates import services as certificates
from marketplace.certificates.pdf import render_pdf
from marketplace.db import MAX_ROW_ID, get_session
from marketplace.errors import APIError
from marketplace.ledger.verify import SIGNATURE_CONTEXT

tag = Tag(name="certificates", description="Provenance certificates of orders, and their key.")
_AUTH: dict[str, Any] = {"security": BEARER_SECURITY, "tags": [tag]}
_ERRORS: dict[str | int, Any] = {
    401: ErrorResponse,
    403: ErrorResponse,
    404: ErrorResponse,
    410: ErrorResponse,
}


class CertificatePath(ApiIn):
    order_id: int = Field(ge=1, le=MAX_ROW_ID)


class CertificateKeyResponse(BaseModel):
    certificate_key: str = Field(
        description="C2SP note verifier key (name+hexkeyid+base64(0x01||pk)) of certificates"
    )
    key_id: str = Field(description="Its 4-byte key ID in hex, as the PDF prints it")
    signature_context: str = Field(
        description="Signed: this line, a newline, then the canonical JSON without signature"
    )


def _certificate(order_id: int) -> bytes:
    """The stored JSON of an order of the token's organization (404 otherwise, or not issued)."""
    token = current_token()
    if token.organization_id is None:
        raise APIError(403, "buyer_token_required", "Use an API token of a buyer organization.")
    session = get_session()
    try:
        buyers.get_order(session, token.created_by, order_id)
        return certificates.certificate_bytes(session, order_id)
    except buyers.NotFound as exc:
        raise APIError(404, "not_found", "No such order.") from exc
    except certificates.CertificateNotFound as exc:
        raise APIError(404, "certificate_not_issued", str(exc)) from exc
    except certificates.LicenceRevoked as exc:
        raise APIError(410, "licence_revoked", str(exc)) from exc


@bp.get("/orders/<id:order_id>/certificate", responses={200: None, **_ERRORS}, **_AUTH)
@token_required
def order_certificate(path: CertificatePath) -> Response:
    """The order's provenance certificate: canonical JSON, as issued (verify it offline)."""
    return Response(_certificate(path.order_id), mimetype="application/json")


@bp.get("/orders/<id:order_id>/certificate.pdf", responses={200: None, **_ERRORS}, **_AUTH)
@token_required
def order_certificate_pdf(path: CertificatePath) -> Response:
    """The certificate as a PDF: a one-page summary and, for smaller orders, the items."""
    data = _certificate(path.order_id)
    pdf = render_pdf(
        json.loads(data),
        items_max=int(current_app.config["CERTIFICATE_PDF_ITEMS_MAX"]),
        json_url=url_for("api.order_certificate", order_id=path.order_id, _external=True),
    )
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": storage.attachment_header(f"certificate-{path.order_id}.pdf")
        },
    )


@bp.get("/certificates/public-key", tags=[tag], responses={200: CertificateKeyResponse})
def certificate_public_key() -> dict[str, Any]:
    """The key that signs certificates. Public: pin it with the verifier's --certificate-key."""
    key = certificates.public_key()
    return CertificateKeyResponse(
        certificate_key=key,
        key_id=key.split("+")[1],
        signature_context=SIGNATURE_CONTEXT.decode().strip(),
    ).model_dump()
