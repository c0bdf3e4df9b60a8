"""The "Do Not Train" registry as its users meet it: artists register images and addresses on
their page or with a token; anyone checks URLs and images through the public API or downloads
the snapshot."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from marketplace import imaging, storage
from marketplace.ledger.canonical import format_timestamp
from marketplace.ledger.models import LedgerEntry
from marketplace.optout.models import OptOutRule
from tests import images
from tests.factories import make_api_token, make_artist, make_buyer
from tests.images import jpeg, png

CHECK = "/api/v1/optout/check"
BULK = "/api/v1/optout/check/urls"
MINE = "/api/v1/artist/optouts"
NO_LIMIT = int(1e9)


def add_address(client: Any, kind: str, address: str, label: str = "") -> None:
    response = client.post(
        "/optout/address", data={"kind": kind, "address": address, "label": label}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def add_image(client: Any, data: bytes, *, keep: bool = False, label: str = "") -> None:
    form = {"image": (io.BytesIO(data), "dusk.png"), "label": label}
    if keep:
        form["keep_image"] = "y"
    response = client.post("/optout/image", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)


def check(client: Any, url: str) -> dict[str, Any]:
    response = client.get(CHECK, query_string={"url": url})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def check_image(client: Any, data: bytes) -> dict[str, Any]:
    response = client.post(CHECK, data={"image": (io.BytesIO(data), "query.bin")})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def opted_out(client: Any, urls: list[str]) -> list[bool | None]:
    response = client.post(BULK, json=urls)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [r["url"] for r in results] == urls
    return [r["opted_out"] for r in results]


def rules(db: Any) -> list[OptOutRule]:
    return list(db.scalars(select(OptOutRule).order_by(OptOutRule.id)))


def ledger_kinds(db: Any) -> list[str]:
    return list(db.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))


def ledger_size(db: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(LedgerEntry)))


def stored_keys(app: Any) -> list[str]:
    with app.app_context():
        return storage.backend().keys()


def stamp(rule: OptOutRule) -> str:
    return format_timestamp(rule.created_at)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Addresses ------------------------------------------------------------------------------


def test_a_url_rule_ignores_scheme_fragment_default_port_and_host_case(client, db, login):
    login(make_artist(db))
    add_address(client, "url", "https://WWW.Example.com:443/a?x=1#f")
    (rule,) = rules(db)

    body = check(client, "http://www.example.com/a?x=1")

    assert body == {
        "opted_out": True,
        "matches": [{"kind": "url", "distance": 0, "registered_at": stamp(rule)}],
    }
    same = [
        "www.example.com/a?x=1",
        "HTTP://www.EXAMPLE.com:80/a?x=1#other",
        "https://www.example.com./a?x=1",
    ]
    others = [
        "http://www.example.com/a?x=2",
        "http://www.example.com/a",
        "http://www.example.com/a/?x=1",
        "http://www.example.com/A?x=1",
        "http://example.com/a?x=1",
        "http://www.example.com:8443/a?x=1",
    ]
    assert opted_out(client, same + others) == [True] * len(same) + [False] * len(others)


def test_a_prefix_rule_covers_deeper_addresses_but_not_siblings(client, db, login):
    login(make_artist(db))
    add_address(client, "prefix", "https://example.com/gallery/")

    assert opted_out(
        client,
        [
            "http://example.com/gallery/",
            "https://EXAMPLE.com/gallery/2024/dusk.png?size=large#top",
            "https://example.com/gallery-old/dusk.png",
            "https://example.com/gallery",
            "https://example.com/other/gallery/dusk.png",
            "https://www.example.com/gallery/dusk.png",
            "https://example.com/",
        ],
    ) == [True, True, False, False, False, False, False]
    assert check(client, "https://example.com/gallery/a.png")["matches"][0]["kind"] == "prefix"


def test_a_domain_rule_covers_subdomains_but_not_look_alikes(client, db, login):
    login(make_artist(db))
    add_address(client, "domain", "Example.COM")

    assert opted_out(
        client,
        [
            "http://example.com",
            "https://www.example.com/a",
            "https://a.b.example.com:8443/x?y=1",
            "https://badexample.com/",
            "https://example.com.evil.net/",
            "https://example.org/",
            "https://com/",
        ],
    ) == [True, True, True, False, False, False, False]
    assert [r.value for r in rules(db)] == ["example.com"]
    assert check(client, "https://cdn.example.com/x")["matches"][0]["kind"] == "domain"


def test_urls_are_read_as_a_browser_reads_them(client, db, login):
    """WHATWG URL parsing: a backslash ends the host in http(s) URLs, so this URL fetches from
    a.example (Python's urlsplit would say evil.com); hex and short IPv4 forms are one host."""
    login(make_artist(db))
    add_address(client, "domain", "a.example")
    add_address(client, "url", "http://127.0.0.1/x")
    assert opted_out(
        client,
        [
            "https://a.example\\@evil.com/",
            "https://evil.com\\@a.example/",
            "http://0x7f.1/x",
            "http://evil.com/",
        ],
    ) == [True, False, True, False]


def test_a_domain_may_be_given_as_an_address(client, db, login):
    login(make_artist(db))
    add_address(client, "domain", "https://Shop.Example.com:8443/some/page")

    assert [(r.kind.value, r.value) for r in rules(db)] == [("domain", "shop.example.com")]
    assert opted_out(client, ["https://shop.example.com/", "https://example.com/"]) == [
        True,
        False,
    ]


def test_international_host_names_match_in_either_spelling(client, db, login):
    login(make_artist(db))
    add_address(client, "domain", "bücher.example")
    add_address(client, "url", "https://münchen.example/karte")

    assert sorted(r.value for r in rules(db)) == [
        "xn--bcher-kva.example",
        "xn--mnchen-3ya.example/karte",
    ]
    assert opted_out(
        client,
        [
            "https://BÜCHER.example/katalog",
            "https://shop.xn--bcher-kva.example/",
            "https://bucher.example/",
            "http://xn--mnchen-3ya.example/karte",
            "https://MÜNCHEN.example/karte#oben",
            "https://munchen.example/karte",
        ],
    ) == [True, True, False, True, True, False]


# --- Bulk checks ----------------------------------------------------------------------------

MIXED = [
    "https://example.com/miss",
    "https://example.com/hit",
    "ftp://example.com/hit",
    "http://EXAMPLE.com/hit#again",
    "not a url",
    "http://example.com:99999/",
    "https://example.com/hit",
]


def test_bulk_check_answers_each_url_in_order_with_errors_for_malformed_ones(client, db, login):
    login(make_artist(db))
    add_address(client, "url", "https://example.com/hit")

    response = client.post(BULK, json=MIXED)

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["url"] for r in results] == MIXED
    assert [r["opted_out"] for r in results] == [False, True, None, True, None, None, True]
    for result in results:
        if result["opted_out"] is None:
            assert set(result) == {"url", "opted_out", "matches", "error"}
            assert result["matches"] == []
            assert isinstance(result["error"], str)
            assert result["error"]
        else:
            assert set(result) == {"url", "opted_out", "matches"}
    assert results[2]["error"] == "only http and https URLs can be checked"
    assert [m["kind"] for m in results[1]["matches"]] == ["url"]


def test_bulk_check_takes_plain_text_as_windows_tools_write_it(client, db, login):
    login(make_artist(db))
    add_address(client, "url", "https://example.com/hit")
    as_json = client.post(BULK, json=MIXED).get_json()

    # A byte order mark, CRLF line ends, blank lines: all of it is how lists arrive.
    body = "\ufeff" + "\r\n".join(MIXED[:3]) + "\r\n\r\n   \r\n" + "\r\n".join(MIXED[3:]) + "\r\n"
    as_text = client.post(BULK, data=body.encode(), content_type="text/plain; charset=utf-8")

    assert as_text.status_code == 200
    assert as_text.get_json() == as_json


def test_bulk_check_takes_up_to_10000_urls(client, db, login):
    login(make_artist(db))
    add_address(client, "domain", "example.com")
    urls = [f"https://host{i % 50}.example.{'com' if i % 2 else 'org'}/{i}" for i in range(10_000)]
    too_many = [*urls, "https://example.com/one-more"]
    refused = {
        "error": {"code": "too_many_urls", "message": "Send at most 10000 URLs per request."}
    }

    answers = opted_out(client, urls)
    as_json = client.post(BULK, json=too_many)
    as_text = client.post(BULK, data="\n".join(too_many), content_type="text/plain")

    assert answers == [i % 2 == 1 for i in range(10_000)]
    assert as_json.status_code == as_text.status_code == 413
    assert as_json.get_json() == as_text.get_json() == refused


# --- Images ---------------------------------------------------------------------------------


def test_an_image_matches_itself_exactly_and_a_reencoded_copy_by_its_look(client, db, login):
    login(make_artist(db))
    add_image(client, png(1))
    by_hash, by_look = rules(db)

    same_file = check_image(client, png(1))
    reencoded = check_image(client, jpeg(1))
    unrelated = check_image(client, png(2))

    assert same_file == {
        "opted_out": True,
        "matches": [
            {"kind": "sha256", "distance": 0, "registered_at": stamp(by_hash)},
            {"kind": "phash", "distance": 0, "registered_at": stamp(by_look)},
        ],
    }
    assert reencoded["opted_out"] is True
    (match,) = reencoded["matches"]
    assert match["kind"] == "phash"
    assert 0 <= match["distance"] <= 6
    assert unrelated == {"opted_out": False, "matches": []}
    assert (by_hash.kind.value, by_look.kind.value) == ("sha256", "phash")


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def test_an_image_is_checked_by_its_hashes_alone(client, db, login):
    data = png(3)
    login(make_artist(db))
    add_image(client, data)
    phash = imaging.inspect_image(data, max_bytes=NO_LIMIT, max_pixels=NO_LIMIT).phash
    # Bands are 16 bits, most significant first: 6 bits off, no band left intact.
    six_off = _flip(phash, [63, 60, 47, 40, 30, 10])
    seven_off = _flip(phash, [63, 60, 55, 50, 40, 30, 10])

    def by_hashes(**body: str) -> dict[str, Any]:
        response = client.post(CHECK, json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        result: dict[str, Any] = response.get_json()
        return result

    exact = by_hashes(sha256=hashlib.sha256(data).hexdigest().upper())
    near = by_hashes(phash=imaging.format_phash(six_off))
    far = by_hashes(phash=imaging.format_phash(seven_off))
    other = by_hashes(sha256=hashlib.sha256(png(4)).hexdigest())

    assert [(m["kind"], m["distance"]) for m in exact["matches"]] == [("sha256", 0)]
    assert [(m["kind"], m["distance"]) for m in near["matches"]] == [("phash", 6)]
    assert far == {"opted_out": False, "matches": []}
    assert other == {"opted_out": False, "matches": []}


def test_registering_an_image_keeps_the_image_only_when_asked(app, client, db, login):
    login(make_artist(db))

    add_image(client, png(5))
    assert stored_keys(app) == []
    add_image(client, png(6), keep=True)

    plain_hash, plain_look, kept_hash, kept_look = rules(db)
    assert stored_keys(app) == [f"optout/{kept_hash.id}"]
    with app.app_context():
        assert storage.get(f"optout/{kept_hash.id}") == png(6)
    assert kept_hash.image_key == f"optout/{kept_hash.id}"
    assert plain_hash.image_key is plain_look.image_key is kept_look.image_key is None


# --- Removing -------------------------------------------------------------------------------


def test_a_removed_rule_stops_matching_and_the_removal_is_in_the_ledger(client, db, login):
    login(make_artist(db))
    add_address(client, "prefix", "https://example.com/art/")
    (rule,) = rules(db)
    before = ledger_kinds(db)
    assert check(client, "https://example.com/art/dusk.png")["opted_out"] is True

    response = client.post(f"/optout/{rule.id}/remove")

    assert response.status_code == 302
    assert check(client, "https://example.com/art/dusk.png") == {"opted_out": False, "matches": []}
    assert ledger_kinds(db) == [*before, "optout.removed"]
    assert before[-1] == "optout.registered"
    last = db.scalars(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1)).one()
    entry = json.loads(last.entry)
    assert entry["subject"] == {"optout": rule.id}
    assert entry["payload"] == {"kind": "prefix", "value": "example.com/art/"}
    assert b"example.com/art/" not in client.get("/optout/").data
    (removed,) = rules(db)
    assert removed.removed_at is not None


def test_removing_the_look_rule_of_an_image_leaves_only_the_exact_match(client, db, login):
    login(make_artist(db))
    add_image(client, png(7))
    _, by_look = rules(db)
    assert check_image(client, jpeg(7))["opted_out"] is True

    assert client.post(f"/optout/{by_look.id}/remove").status_code == 302

    assert check_image(client, jpeg(7)) == {"opted_out": False, "matches": []}
    assert [m["kind"] for m in check_image(client, png(7))["matches"]] == ["sha256"]
    assert ledger_kinds(db)[-1] == "optout.removed"


def test_another_artist_cannot_remove_my_rule(client, db, login):
    owner, other = make_artist(db), make_artist(db)
    login(owner)
    add_address(client, "domain", "example.com")
    (rule,) = rules(db)
    before = ledger_size(db)
    other_token = make_api_token(db, other)
    client.post("/accounts/logout")
    login(other)

    page = client.post(f"/optout/{rule.id}/remove")
    api = client.delete(f"{MINE}/{rule.id}", headers=bearer(other_token))

    assert page.status_code == 404
    assert api.status_code == 404
    assert api.get_json()["error"]["code"] == "optout_not_found"
    assert check(client, "https://example.com/")["opted_out"] is True
    assert ledger_size(db) == before
    assert rules(db)[0].removed_at is None
    assert client.get(MINE, headers=bearer(other_token)).get_json() == {"items": []}


def test_an_artist_manages_opt_outs_with_a_token(client, db):
    artist = make_artist(db)
    token = make_api_token(db, artist)

    created = client.post(
        MINE,
        json={"kind": "url", "address": "https://Example.com/a#x", "label": "portfolio"},
        headers=bearer(token),
    )
    again = client.post(
        MINE, json={"kind": "url", "address": "http://example.com/a"}, headers=bearer(token)
    )

    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "kind", "value", "label", "work_id", "registered_at", "ledger_seq"}
    assert (body["kind"], body["value"], body["label"]) == ("url", "example.com/a", "portfolio")
    assert again.get_json()["id"] == body["id"]
    assert len(rules(db)) == 1
    listed = client.get(MINE, headers=bearer(token)).get_json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert check(client, "https://example.com/a")["opted_out"] is True

    removed = client.delete(f"{MINE}/{body['id']}", headers=bearer(token))

    assert removed.status_code == 200
    assert removed.get_json()["id"] == body["id"]
    assert check(client, "https://example.com/a")["opted_out"] is False
    assert client.get(MINE, headers=bearer(token)).get_json() == {"items": []}
    assert client.delete(f"{MINE}/{body['id']}", headers=bearer(token)).status_code == 404
    assert ledger_kinds(db)[-2:] == ["optout.registered", "optout.removed"]


# --- Who may do what ------------------------------------------------------------------------


def test_a_buyer_cannot_open_or_use_the_registry_pages(client, db, login):
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)

    assert client.get("/optout/").status_code == 302  # not logged in: to the login page
    login(buyer)

    assert client.get("/optout/").status_code == 403
    assert (
        client.post("/optout/address", data={"kind": "domain", "address": "a.com"}).status_code
        == 403
    )
    api = client.post(MINE, json={"kind": "domain", "address": "a.com"}, headers=bearer(token))
    assert api.status_code == 403
    assert api.get_json()["error"]["code"] == "artist_token_required"
    assert rules(db) == []


def test_the_artist_sees_their_own_rules_only(client, db, login):
    first, second = make_artist(db), make_artist(db)
    login(first)
    add_address(client, "domain", "first.example", label="mine")
    client.post("/accounts/logout")
    login(second)
    add_address(client, "domain", "second.example")

    page = client.get("/optout/").get_data(as_text=True)

    assert "second.example" in page
    assert "first.example" not in page


# --- Bad input ------------------------------------------------------------------------------

# 1,000 characters, 3,000 bytes that do not compress: too big for a PostgreSQL index entry.
LONG_CJK_PATH = "".join(chr(0x4E00 + i * 7919 % 20_000) for i in range(1000))

PAGE_INPUT = {
    "not-an-image": (
        "/optout/image",
        {"image": (b"not an image", "dusk.png")},
        "dusk.png is not a PNG, JPEG, WebP or TIFF image.",
    ),
    "truncated-image": (
        "/optout/image",
        {"image": (png(1)[:200], "dusk.png")},
        "dusk.png is not a readable PNG image (damaged or truncated).",
    ),
    "not-http": (
        "/optout/address",
        {"kind": "url", "address": "ftp://example.com/art"},
        "only http and https URLs can be checked",
    ),
    "mailto": (
        "/optout/address",
        {"kind": "url", "address": "mailto:ada@example.com"},
        "only http and https URLs can be checked",
    ),
    "space-in-host": (
        "/optout/address",
        {"kind": "prefix", "address": "https://exa mple.com/art/"},
        "not a valid URL",
    ),
    "bad-port": (
        "/optout/address",
        {"kind": "url", "address": "https://example.com:99999/"},
        "not a valid URL",
    ),
    "long-non-ascii-url": (
        "/optout/address",
        {"kind": "url", "address": "https://example.com/" + LONG_CJK_PATH},
        "the address is too long (at most 2048 bytes in UTF-8)",
    ),
    "domain-without-dot": (
        "/optout/address",
        {"kind": "domain", "address": "localhost"},
        "give a domain such as example.com",
    ),
    "wildcard-domain": (
        "/optout/address",
        {"kind": "domain", "address": "*.example.com"},
        "a domain rule covers its subdomains",
    ),
    "hash-as-address": (
        "/optout/address",
        {"kind": "sha256", "address": "ab" * 32},
        "Not a valid choice",
    ),
}


def test_bad_input_on_the_page_is_explained_and_writes_nothing(app, client, db, login, subtests):
    login(make_artist(db))
    before = ledger_size(db)

    for case, (path, form, message) in PAGE_INPUT.items():
        with subtests.test(case=case):
            if "image" in form:
                data, name = form["image"]
                form = {**form, "image": (io.BytesIO(data), name)}
            response = client.post(path, data=form)

            assert response.status_code == 422
            assert message in response.get_data(as_text=True)
            assert rules(db) == []
            assert ledger_size(db) == before
            assert stored_keys(app) == []


API_INPUT = {
    "domain-without-dot": ({"kind": "domain", "address": "localhost"}, 422, "invalid_address"),
    "not-http": ({"kind": "url", "address": "mailto:ada@example.com"}, 422, "invalid_address"),
    "no-host": ({"kind": "prefix", "address": "https://"}, 422, "invalid_address"),
    "hash-kind": ({"kind": "sha256", "address": "ab" * 32}, 400, "invalid_request"),
    "no-address": ({"kind": "url"}, 400, "invalid_request"),
}


def test_bad_input_through_the_api_is_refused_and_writes_nothing(client, db, subtests):
    token = make_api_token(db, make_artist(db))
    before = ledger_size(db)

    for case, (body, status, code) in API_INPUT.items():
        with subtests.test(case=case):
            response = client.post(MINE, json=body, headers=bearer(token))

            assert response.status_code == status
            error = response.get_json()["error"]
            assert error["code"] == code
            assert error["message"]
            assert rules(db) == []
            assert ledger_size(db) == before


CHECK_INPUT: dict[str, tuple[dict[str, Any], int, str]] = {
    "url-not-http": ({"query_string": {"url": "ftp://example.com/"}}, 422, "invalid_url"),
    "url-bad-host": ({"query_string": {"url": "http://exa mple.com/"}}, 422, "invalid_url"),
    "url-missing": ({}, 400, "invalid_request"),
    "not-an-image": (
        {"method": "POST", "data": {"image": (b"GIF89a...", "a.gif")}},
        422,
        "image_rejected",
    ),
    "no-image-field": (
        {"method": "POST", "data": {"picture": (png(1), "a.png")}},
        400,
        "image_missing",
    ),
    "bad-sha256": ({"method": "POST", "json": {"sha256": "xyz"}}, 400, "invalid_request"),
    "bad-phash": ({"method": "POST", "json": {"phash": "12345"}}, 400, "invalid_request"),
    "empty-json": ({"method": "POST", "json": {}}, 400, "invalid_request"),
    "unknown-field": (
        {"method": "POST", "json": {"sha256": "a" * 64, "owner": 1}},
        400,
        "invalid_request",
    ),
    "bulk-json-object": (
        {"path": BULK, "method": "POST", "json": {"urls": ["https://example.com/"]}},
        400,
        "invalid_request",
    ),
    "bulk-non-string": (
        {"path": BULK, "method": "POST", "json": ["https://example.com/", 7]},
        400,
        "invalid_request",
    ),
    "bulk-not-utf8": (
        {"path": BULK, "method": "POST", "data": b"\xff\xfe\x00h", "content_type": "text/plain"},
        400,
        "invalid_request",
    ),
    "bulk-xml": (
        {"path": BULK, "method": "POST", "data": b"<u/>", "content_type": "application/xml"},
        415,
        "unsupported_media_type",
    ),
}


def test_bad_input_to_the_public_checks_gets_a_clear_error(client, subtests):
    for case, (request, status, code) in CHECK_INPUT.items():
        with subtests.test(case=case):
            request = {"path": CHECK, **request}
            if isinstance(request.get("data"), dict):
                request["data"] = {
                    field: (io.BytesIO(data), name)
                    for field, (data, name) in request["data"].items()
                }
            response = client.open(**request)

            assert response.status_code == status
            error = response.get_json()["error"]
            assert error["code"] == code
            assert error["message"]


# --- Snapshot -------------------------------------------------------------------------------


def test_the_snapshot_lists_every_active_rule_and_nothing_personal(client, db, login):
    artist = make_artist(db, email="ada.lovelace@example.net", display_name="Ada Lovelace")
    other = make_artist(db)
    login(artist)
    add_address(client, "url", "https://example.com/a?x=1", label="private note one")
    add_address(client, "prefix", "https://example.com/gallery/", label="private note two")
    add_address(client, "domain", "bücher.example", label="private note three")
    add_image(client, png(6), label="private note four")
    client.post("/accounts/logout")
    login(other)
    add_address(client, "url", "https://withdrawn.example/x")
    withdrawn = rules(db)[-1]
    client.post(f"/optout/{withdrawn.id}/remove")
    client.post("/accounts/logout")
    active = [r for r in rules(db) if r.removed_at is None]
    expected = sorted((r.kind.value, r.value, stamp(r)) for r in active)

    page = client.get("/optout/snapshot.jsonl")
    api = client.get("/api/v1/optout/snapshot")

    assert page.status_code == api.status_code == 200
    assert page.mimetype == api.mimetype == "application/x-ndjson"
    assert page.headers["Content-Disposition"].startswith('attachment; filename="optout-snapshot-')
    for response in (page, api):
        text = response.get_data(as_text=True)
        header, *lines = (json.loads(line) for line in text.splitlines())
        assert header["format"] == "marketplace-optout-snapshot/1"
        assert header["phash_max_distance"] == 6
        assert all(set(line) == {"kind", "value", "registered_at"} for line in lines)
        assert sorted((r["kind"], r["value"], r["registered_at"]) for r in lines) == expected
        assert len(lines) == 5  # url, prefix, domain, and sha256 + phash of the image
        assert set(header) == {
            "format",
            "generated_at",
            "last_rule_id",
            "phash_max_distance",
            "url_normalization",
        }
        for private in ("ada.lovelace", "Ada Lovelace", "private note", "withdrawn.example"):
            assert private not in text


# --- Throttling -----------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"OPTOUT_CHECK_RATE_LIMIT": "2 per minute"}])
def test_the_public_checks_are_rate_limited_per_client(client, subtests):
    endpoints = {
        "check-url": {"path": CHECK, "query_string": {"url": "https://example.com/"}},
        "check-image": {"path": CHECK, "method": "POST", "json": {"sha256": "a" * 64}},
        "check-urls": {"path": BULK, "method": "POST", "json": ["https://example.com/"]},
    }
    for n, (case, request) in enumerate(endpoints.items()):
        with subtests.test(case=case):
            crawler = {"environ_base": {"REMOTE_ADDR": f"192.0.2.{n + 1}"}}
            neighbour = {"environ_base": {"REMOTE_ADDR": f"198.51.100.{n + 1}"}}

            statuses = [client.open(**request, **crawler).status_code for _ in range(3)]
            throttled = client.open(**request, **crawler)

            assert statuses == [200, 200, 429]
            assert throttled.status_code == 429
            body = throttled.get_json()
            assert list(body) == ["error"]
            assert set(body["error"]) == {"code", "message"}
            assert body["error"]["code"] == "rate_limited"
            assert body["error"]["message"]
            assert throttled.headers["Retry-After"]
            assert client.open(**request, **neighbour).status_code == 200


def test_same_image_twice_keeps_one_pair_of_rules_and_removal_deletes_the_kept_image(
    app, client, db, login
):
    import io

    from marketplace import storage
    from marketplace.optout.models import OptOutRule
    from tests import images
    from tests.factories import make_artist

    login(make_artist(db))
    picture = images.png(321)
    for _ in range(2):
        response = client.post(
            "/optout/image",
            data={"image": (io.BytesIO(picture), "mine.png"), "keep_image": "y"},
            content_type="multipart/form-data",
        )
        assert response.status_code == 302
    rules = db.scalars(select(OptOutRule).where(OptOutRule.removed_at.is_(None))).all()
    assert sorted(r.kind.value for r in rules) == ["phash", "sha256"]
    kept = next(r for r in rules if r.image_key)
    with app.app_context():
        assert storage.backend().exists(kept.image_key)
    assert client.post(f"/optout/{kept.id}/remove").status_code == 302
    with app.app_context():
        assert storage.backend().keys("optout/") == []


@pytest.mark.parametrize(("mode", "fmt"), images.MODES)
def test_the_public_image_check_reads_every_image_mode(client, db, login, mode, fmt):
    picture = images.in_mode(mode, fmt, seed=4)  # one copy: colour transforms may vary by a bit
    login(make_artist(db))
    add_image(client, picture)
    client.post("/accounts/logout")
    answer = check_image(client, picture)
    assert answer["opted_out"] is True
    assert {m["kind"] for m in answer["matches"]} == {"sha256", "phash"}


def test_an_unreadable_image_in_the_public_check_is_422_naming_the_file(client):
    broken = images.png(5)[:200]
    response = client.post(
        CHECK,
        data={"image": (io.BytesIO(broken), "scan.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "image_rejected"
    assert error["message"].startswith("scan.png ")


@pytest.mark.parametrize("app_config", [{"OPTOUT_CHECK_RATE_LIMIT": "4 per minute"}])
def test_one_check_budget_per_client_across_url_image_and_bulk_checks(client, monkeypatch):
    from marketplace.api import optout

    monkeypatch.setattr(optout, "BULK_URLS_PER_CHECK", 2)
    crawler = {"environ_base": {"REMOTE_ADDR": "192.0.2.50"}}
    assert (
        client.get(CHECK, query_string={"url": "https://example.com/"}, **crawler).status_code
        == 200
    )
    assert client.post(CHECK, json={"sha256": "a" * 64}, **crawler).status_code == 200
    # Three URLs at two per check cost two checks: the budget of four is spent.
    bulk = ["https://example.com/a", "https://example.com/b", "https://example.com/c"]
    assert client.post(BULK, json=bulk, **crawler).status_code == 200
    for request in (
        {"method": "GET", "path": CHECK, "query_string": {"url": "https://example.com/"}},
        {"method": "POST", "path": CHECK, "json": {"sha256": "b" * 64}},
        {"method": "POST", "path": BULK, "json": ["https://example.com/"]},
    ):
        throttled = client.open(**request, **crawler)
        assert throttled.status_code == 429
        error = throttled.get_json()["error"]
        assert error["code"] == "rate_limited"
        assert "share a budget of 4 per minute" in error["message"]
        assert error["message"].endswith(".")
        assert int(throttled.headers["Retry-After"]) > 0


@pytest.mark.parametrize("app_config", [{"OPTOUT_CHECK_RATE_LIMIT": "3 per minute"}])
@pytest.mark.parametrize("separator", ["\n", "\r\n", "\u2028", "\x85", "\x0c", "\x1e", "\v"])
def test_a_bulk_check_larger_than_the_budget_is_refused_whole(client, monkeypatch, separator):
    """The budget counts the lines the check would read, whatever separates them."""
    from marketplace.api import optout

    monkeypatch.setattr(optout, "BULK_URLS_PER_CHECK", 10)
    crawler = {"environ_base": {"REMOTE_ADDR": "192.0.2.51"}}
    urls = separator.join(f"https://example.com/{n}" for n in range(40))
    response = client.post(BULK, data=urls, content_type="text/plain", **crawler)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("suffix", ["co.uk", "github.io", "https://s3.amazonaws.com/", "com.au"])
def test_a_whole_public_suffix_cannot_be_opted_out(client, db, login, suffix):
    """A rule for co.uk or github.io would take every owner's site out of the catalog."""
    login(make_artist(db))
    response = client.post("/optout/address", data={"kind": "domain", "address": suffix})
    assert response.status_code == 422
    assert "public suffix" in response.get_data(as_text=True)
    assert rules(db) == []
    add_address(client, "domain", "my-studio.github.io")  # one's own site under it is fine
    assert [r.value for r in rules(db)] == ["my-studio.github.io"]
