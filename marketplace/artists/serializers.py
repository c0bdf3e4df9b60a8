"""JSON forms of the artists' resources, shared by the API and the pages' JSON views."""

from __future__ import annotations

from flask import url_for

from marketplace.artists.models import WorkTerms
from marketplace.artists.terms import TermsSpec, licence_text
from marketplace.ledger.canonical import format_timestamp


def terms_json(terms: WorkTerms) -> dict[str, object]:
    return {
        "id": terms.id,
        "work_id": terms.work_id,
        "version": terms.version,
        **TermsSpec.of(terms).to_json(),
        "overrides_file_signal": terms.overrides_file_signal,
        "created_at": format_timestamp(terms.created_at),
        "ledger_seq": terms.ledger_seq,
        "url": url_for("artists.show_terms", terms_id=terms.id, _external=True),
        "licence": licence_text(
            TermsSpec.of(terms),
            work_title=terms.work.title,
            artist_name=terms.work.artist.display_name,
            version=terms.version,
        ),
    }
