"""/admin/reservations: administrators load a site's file from the page; nobody else may."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from marketplace.reservations.models import ReservationFile, ReservationSource
from tests.factories import make_admin, make_artist

ROBOTS = b"User-agent: ClaudeBot\nDisallow: /\n"


def post_file(client, domain: str, kind: str, body: bytes):
    return client.post(
        "/admin/reservations/load",
        data={"domain": domain, "kind": kind, "file": (io.BytesIO(body), "robots.txt")},
        content_type="multipart/form-data",
    )


def test_an_admin_loads_a_file_from_the_page_and_sees_it_listed(client, db, login):
    admin = make_admin(db)
    login(admin)
    assert client.get("/admin/reservations").status_code == 200

    response = post_file(client, "Press.Example", "robots", ROBOTS)
    assert response.status_code == 302
    page = client.get("/admin/reservations").get_data(as_text=True)
    assert "The robots file for press.example is on record." in page
    assert "press.example" in page
    record = db.scalars(select(ReservationFile)).one()
    assert record.source is ReservationSource.ADMIN
    assert record.loaded_by_id == admin.id
    assert record.body == ROBOTS
    found = client.get("/api/v1/reservations", query_string={"url": "https://press.example/a"})
    assert found.get_json()["hit"]["rule"] == "Disallow: / (User-agent: ClaudeBot, line 2)"


def test_a_malformed_file_or_domain_is_shown_on_the_form_and_nothing_is_stored(client, db, login):
    login(make_admin(db))
    bad_file = post_file(client, "press.example", "tdmrep", b"[{")
    assert bad_file.status_code == 422
    assert "tdmrep.json is not valid JSON" in bad_file.get_data(as_text=True)
    bad_domain = post_file(client, "github.io", "robots", ROBOTS)
    assert bad_domain.status_code == 422
    assert "public suffix" in bad_domain.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(ReservationFile)) == 0


def test_only_administrators_reach_the_page(client, db, login):
    assert client.get("/admin/reservations").status_code == 302  # to the login page
    login(make_artist(db))
    assert client.get("/admin/reservations").status_code == 403
    assert post_file(client, "press.example", "robots", ROBOTS).status_code == 403
    assert db.scalar(select(func.count()).select_from(ReservationFile)) == 0
