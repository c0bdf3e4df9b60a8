"""JSON forms of the artists' resources, shared by the API and the pages' JSON views."""

from __future__ import annotations

from flask import url_for

from marketplace.artists.models import WorkTerms
from marketplace.artists.services import terms_standing
from marketplace.artists.terms import TermsSpec, licence_text
from marketplace.ledger.canonical import format_timestamp


def terms_json(terms: WorkTerms) -> dict[str, object]:
    standing = terms_standing(terms)
    current = standing.current
    return {
        "id": terms.id,
        "work_id": terms.work_id,
        "version": terms.version,
        "status": standing.status,
        "in_force": standing.in_force,
        "no_longer_in_force_since": format_timestamp(standing.since) if standing.since else None,
        "current_terms_id": current.id if current else None,
        "current_terms_url": url_for("artists.show_terms", terms_id=current.id, _external=True)
        if current
        else None,
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
