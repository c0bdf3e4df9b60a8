"""Readable ledger entry pages, and the exact bytes and proof behind each one.

All public, as the ledger is: /api/v1/ledger/entries/<seq> serves the same facts as JSON.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, render_template

from marketplace.db import get_session
from marketplace.ledger.kinds import kind_label
from marketplace.provenance import services

bp = Blueprint("provenance", __name__)
bp.add_app_template_filter(kind_label, "kind_label")


@bp.route("/ledger/entries/<int(min=0, max=9223372036854775807):seq>")
def entry(seq: int) -> str:
    """Public: what entry `seq` records, in words, and how to verify it."""
    try:
        page = services.describe_entry(get_session(), seq)
    except services.EntryNotFound:
        abort(404)
    return render_template("provenance/entry.html", page=page)


@bp.route("/ledger/entries/<int(min=0, max=9223372036854775807):seq>/entry.json")
def entry_bytes(seq: int) -> Response:
    """Public: the exact signed bytes of the entry (its leaf hash is SHA-256(0x00 || bytes))."""
    try:
        data = services.entry_bytes(get_session(), seq)
    except services.EntryNotFound:
        abort(404)
    response = Response(data, mimetype="application/json")
    response.headers["Content-Disposition"] = f'inline; filename="ledger-entry-{seq}.json"'
    return response


@bp.route("/ledger/entries/<int(min=0, max=9223372036854775807):seq>/proof.json")
def entry_proof(seq: int) -> Response:
    """Public: a proof bundle for `python -m marketplace.ledger.verify`, checked offline."""
    try:
        page = services.describe_entry(get_session(), seq)
    except services.EntryNotFound:
        abort(404)
    response = Response(json.dumps(page.bundle, indent=2) + "\n", mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="ledger-proof-{seq}.json"'
    return response
