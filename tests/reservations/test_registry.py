"""Reservation files on record: loading them (CLI, API), who may replace what, the public lookup
with its evidence, and the index the dataset classifier builds from the database."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from marketplace.reservations.matching import ReservationHit, ReservationIndex
from marketplace.reservations.models import ReservationFile, ReservationRule, ReservationSource
from tests.factories import make_api_token, make_artist, make_buyer

ROBOTS = b"User-agent: *\nDisallow: /admin/\n\nUser-agent: GPTBot\nDisallow: /\n"
TDMREP = json.dumps(
    [
        {
            "location": "/gallery/",
            "tdm-reservation": 1,
            "tdm-policy": "https://studio.example/tdm-policy.json",
        },
        {"location": "/", "tdm-reservation": 0},
    ]
).encode()
AI_TXT = b"# Spawning AI\n/\nUser-agent: *\n/\nDisallow: *.png\nAllow: /\n"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli_load(app: Any, tmp_path: Any, domain: str, kind: str, body: bytes) -> Any:
    path = tmp_path / f"upload-{kind}"
    path.write_bytes(body)
    return app.test_cli_runner().invoke(args=["reservations", "load", domain, kind, str(path)])


def upload(client: Any, token: str, domain: str, kind: str, body: bytes) -> Any:
    return client.post(
        "/api/v1/reservations",
        data={"domain": domain, "kind": kind, "file": (io.BytesIO(body), "file.txt")},
        headers=bearer(token),
        content_type="multipart/form-data",
    )


def count_files(db: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(ReservationFile)))


def test_an_operator_loads_a_file_and_anyone_can_look_a_url_up_with_its_evidence(
    app, client, db, tmp_path
):
    result = cli_load(app, tmp_path, "HTTPS://Studio.Example/robots.txt", "robots", ROBOTS)
    assert result.exit_code == 0, result.output
    assert "Loaded robots for studio.example: 2 rules" in result.output

    record = db.scalars(select(ReservationFile)).one()
    assert record.domain == "studio.example"
    assert record.body == ROBOTS
    assert record.sha256 == hashlib.sha256(ROBOTS).hexdigest()
    assert record.source is ReservationSource.CLI
    assert record.loaded_by_id is None

    found = client.get("/api/v1/reservations", query_string={"url": "http://studio.example/a"})
    assert found.status_code == 200
    body = found.get_json()
    assert body["reserved"] is True
    assert body["hit"]["kind"] == "robots"
    assert body["hit"]["rule"] == "Disallow: / (User-agent: GPTBot, line 5)"
    assert body["hit"]["file"]["sha256"] == record.sha256
    evidence = client.get(body["hit"]["file"]["file_url"])
    assert evidence.status_code == 200
    assert evidence.data == ROBOTS
    assert evidence.headers["X-Content-SHA256"] == record.sha256

    clear = client.get("/api/v1/reservations", query_string={"url": "https://other.example/"})
    assert clear.get_json() == {"reserved": False, "hit": None}
    bad = client.get("/api/v1/reservations", query_string={"url": "mailto:a@b.example"})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["code"] == "invalid_url"
    assert client.get("/api/v1/reservations/files/999").status_code == 404


def test_a_malformed_file_is_refused_by_the_cli_and_nothing_is_stored(app, db, tmp_path):
    result = cli_load(app, tmp_path, "studio.example", "tdmrep", b'{"location": "/"}')
    assert result.exit_code != 0
    assert "must be a JSON array of rules" in result.output
    unknown = cli_load(app, tmp_path, "studio.example", "sitemap", ROBOTS)
    assert unknown.exit_code != 0
    assert "Unknown kind 'sitemap'" in unknown.output
    assert count_files(db) == 0


def test_the_api_takes_artists_tokens_and_refuses_anyone_else(client, db):
    artist_token = make_api_token(db, make_artist(db))
    buyer_token = make_api_token(db, make_buyer(db))

    anonymous = client.post(
        "/api/v1/reservations",
        data={"domain": "studio.example", "kind": "robots", "file": (io.BytesIO(ROBOTS), "r")},
        content_type="multipart/form-data",
    )
    assert anonymous.status_code == 401
    assert upload(client, buyer_token, "studio.example", "robots", ROBOTS).status_code == 403
    assert count_files(db) == 0

    created = upload(client, artist_token, "studio.example", "ai.txt", AI_TXT)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["kind"] == "ai.txt"
    assert body["changed"] is True
    assert body["skipped_lines"] == [2, 4]  # the generator's lone "/" lines
    again = upload(client, artist_token, "studio.example", "ai.txt", AI_TXT)
    assert again.status_code == 200
    assert again.get_json()["changed"] is False
    assert again.get_json()["id"] == body["id"]
    assert count_files(db) == 1


@pytest.mark.parametrize(
    ("domain", "kind", "body", "status", "code"),
    [
        ("studio.example", "tdmrep", b"[{]", 400, "malformed_file"),
        (
            "studio.example",
            "tdmrep",
            b'[{"location": "/\\u0000", "tdm-reservation": 1}]',
            400,
            "malformed_file",
        ),
        ("studio.example", "robots", b"<html><body>404</body></html>", 400, "malformed_file"),
        ("studio.example", "ai.txt", b"\xff\xfe\x00U", 400, "malformed_file"),
        ("studio.example", "humans.txt", ROBOTS, 400, "invalid_kind"),
        ("co.uk", "robots", ROBOTS, 422, "invalid_domain"),
        ("*.example.com", "robots", ROBOTS, 422, "invalid_domain"),
        ("studio.example", "robots", b"User-agent: *\n" + b"#" * 600_000, 413, "file_too_large"),
    ],
)
def test_bad_uploads_get_a_clear_error_and_leave_nothing(
    client, db, domain, kind, body, status, code
):
    token = make_api_token(db, make_artist(db))
    response = upload(client, token, domain, kind, body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]
    assert count_files(db) == 0
    assert db.scalar(select(func.count()).select_from(ReservationRule)) == 0


def test_an_artist_cannot_replace_a_file_someone_else_put_on_record(app, client, db, tmp_path):
    mine, theirs = make_artist(db), make_artist(db)
    my_token, their_token = make_api_token(db, mine), make_api_token(db, theirs)
    assert upload(client, my_token, "studio.example", "robots", ROBOTS).status_code == 201

    permissive = b"User-agent: GPTBot\nAllow: /\n"
    refused = upload(client, their_token, "studio.example", "robots", permissive)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "reservation_on_record"
    # I may replace my own; the old file stays on record, no longer current.
    assert upload(client, my_token, "studio.example", "robots", permissive).status_code == 201
    rows = db.scalars(select(ReservationFile).order_by(ReservationFile.id)).all()
    assert [r.replaced_at is None for r in rows] == [False, True]
    assert rows[0].loaded_by_id == mine.id

    # An operator replaces anyone's; then the artist may not.
    assert cli_load(app, tmp_path, "studio.example", "robots", ROBOTS).exit_code == 0
    assert upload(client, my_token, "studio.example", "robots", permissive).status_code == 409
    found = client.get("/api/v1/reservations", query_string={"url": "https://studio.example/x"})
    assert found.get_json()["hit"]["file"]["source"] == "cli"


def test_the_index_from_the_database_reads_current_files_in_precedence_order(
    app, client, db, tmp_path
):
    for kind, body in (("robots", ROBOTS), ("tdmrep", TDMREP), ("ai.txt", AI_TXT)):
        assert cli_load(app, tmp_path, "studio.example", kind, body).exit_code == 0
    # A file replaced later no longer speaks.
    assert cli_load(app, tmp_path, "old.example", "robots", ROBOTS).exit_code == 0
    assert cli_load(app, tmp_path, "old.example", "robots", b"User-agent: *\n").exit_code == 0

    index = ReservationIndex.from_session(db)
    assert index.match("https://studio.example/gallery/a.jpg") == ReservationHit(
        "tdmrep", "studio.example", "/gallery/", "https://studio.example/tdm-policy.json"
    )
    assert index.match("https://studio.example/shop/a.png") == ReservationHit(
        "ai.txt", "studio.example", "Disallow: *.png (User-agent: *, line 5)", None
    )
    assert index.match("https://studio.example/shop/a.html").kind == "robots"
    assert index.match("https://old.example/anything") is None

    # The public lookup answers the same, with the tdm-policy as evidence.
    found = client.get(
        "/api/v1/reservations", query_string={"url": "https://studio.example/gallery/a.jpg"}
    ).get_json()
    assert found["hit"]["policy_url"] == "https://studio.example/tdm-policy.json"
    assert found["hit"]["file"]["kind"] == "tdmrep"
