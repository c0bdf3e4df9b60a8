"""A terms version that is no longer in force says so at the top, and points to the current one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.artists.models import Work, WorkTerms
from tests import images
from tests.artists.test_works import post_terms, upload
from tests.factories import make_artist


@pytest.fixture
def work(client, db, login) -> Work:
    login(make_artist(db, display_name="Ada Okafor"))
    upload(
        client,
        (images.png(40), "harbour.png"),
        kind="license",
        price="250",
        generative_training="y",
    )
    return db.scalar(select(Work))


def versions(db) -> list[WorkTerms]:
    return list(db.scalars(select(WorkTerms).order_by(WorkTerms.version)))


def test_the_current_version_reads_as_in_force(client, work):
    (current,) = (work.current_terms,)
    page = client.get(f"/terms/{current.id}").get_data(as_text=True)
    assert "no longer in force" not in page
    body = client.get(f"/terms/{current.id}.json").get_json()
    assert (body["status"], body["in_force"], body["no_longer_in_force_since"]) == (
        "current",
        True,
        None,
    )
    assert body["current_terms_id"] == current.id


def test_a_superseded_version_says_so_and_links_the_current_one(client, db, work):
    post_terms(client, f"/artists/works/{work.id}/terms", {"kind": "donate"})
    old, new = versions(db)
    page = client.get(f"/terms/{old.id}").get_data(as_text=True)
    banner = page.index("These terms are no longer in force.")
    assert banner < page.index("licenses this work")  # at the top, before the licence text
    assert f'href="/terms/{new.id}">See the current terms (version 2)</a>' in page
    for body in (
        client.get(f"/terms/{old.id}.json").get_json(),
        client.get(f"/api/v1/terms/{old.id}").get_json(),
    ):
        assert (body["status"], body["in_force"]) == ("superseded", False)
        assert body["current_terms_id"] == new.id
        assert body["current_terms_url"] == f"http://localhost/terms/{new.id}"
        assert body["no_longer_in_force_since"] is not None
    assert client.get(f"/terms/{new.id}.json").get_json()["status"] == "current"


def test_a_withdrawn_work_s_terms_say_consent_was_withdrawn(client, db, work):
    client.post(f"/artists/works/{work.id}/withdraw", data={"confirm": "withdraw"})
    (terms,) = versions(db)
    page = client.get(f"/terms/{terms.id}").get_data(as_text=True)
    assert page.index("Consent withdrawn on") < page.index("licenses this work")
    body = client.get(f"/api/v1/terms/{terms.id}").get_json()
    assert (body["status"], body["in_force"]) == ("withdrawn", False)
    assert body["no_longer_in_force_since"] is not None
