"""The uses a licence can permit are declared once (artists.terms.USE_FLAGS); every place that
shows, takes, stores or searches them follows that declaration."""

from __future__ import annotations

from marketplace.api.artist_works import TermsIn, TermsOut
from marketplace.artists.forms import TermsFields
from marketplace.artists.models import WorkTerms
from marketplace.artists.terms import (
    ALL_USES_MASK,
    PERMITTED_USES,
    USE_FLAGS,
    USE_LABELS,
    TermsSpec,
    uses_mask,
)


def test_every_flag_is_a_column_an_api_field_and_a_labelled_term() -> None:
    assert set(USE_FLAGS) == set(USE_LABELS)
    assert set(USE_FLAGS) <= {column.name for column in WorkTerms.__table__.columns}
    assert set(USE_FLAGS) <= set(TermsIn.model_fields)
    assert set(USE_FLAGS) <= set(TermsOut.model_fields)
    assert set(USE_FLAGS) <= set(TermsSpec.__dataclass_fields__)


def test_the_terms_form_has_one_checkbox_per_flag_in_order(app) -> None:
    with app.test_request_context():
        form = TermsFields(formdata=None)
        assert [field.name for field in form.use_fields] == list(USE_FLAGS)
        assert [field.label.text for field in form.use_fields] == [USE_LABELS[f] for f in USE_FLAGS]


def test_the_catalog_bit_set_covers_exactly_the_permitted_uses() -> None:
    assert uses_mask(PERMITTED_USES) == ALL_USES_MASK
    assert [uses_mask([use]) for use in PERMITTED_USES] == [1 << i for i in range(5)]


def test_the_api_takes_and_returns_each_flag(client, db) -> None:
    from tests import images
    from tests.api.test_artist_api import auth, post_work
    from tests.factories import make_api_token, make_artist

    token = make_api_token(db, make_artist(db))
    work = post_work(client, token, images.png(9)).get_json()
    for flag in PERMITTED_USES:
        body = {"kind": "license", "price_minor": 300, "non_generative_training": True, flag: True}
        terms = client.put(
            f"/api/v1/artist/works/{work['id']}/terms", json=body, headers=auth(token)
        ).get_json()
        assert terms[flag] is True, flag
