"""The classifier alone: every class with its evidence, consent first, pure and picklable."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass

import pytest

from marketplace.compliance.classifier import CatalogEntry, SnapshotNotPortable, classify
from tests.compliance.support import batch, catalog, snapshot

DIGEST_OPTED = "11" * 32
DIGEST_LICENSED = "22" * 32
PHASH_OPTED = 0xF0F0_F0F0_0F0F_0F0F
PHASH_STOCK = 0x1234_5678_9ABC_DEF0


@dataclass(frozen=True)
class Hit:
    kind: str
    domain: str
    rule: str
    policy_url: str | None


class TdmReservations:
    """A stand-in with marketplace.reservations' interface: one TDMRep reservation."""

    def match_normalized(self, host: str, key: str) -> Hit | None:
        if host == "news.example":
            return Hit("tdmrep", "news.example", "/*", "https://news.example/tdm-policy.json")
        return None


def _snapshot() -> object:
    licensed = CatalogEntry(501, "licensed", 350, "usd", 0b1)  # generative training only
    donated = CatalogEntry(502, "cc0", 0, "usd", 0b11111)
    stock = CatalogEntry(503, "public_domain", 0, "usd", 0b11111)
    return snapshot(
        addresses=[
            (1, "url", "opted.example/exact.jpg", "opted.example"),
            (2, "prefix", "gallery.example/private/", "gallery.example"),
            (3, "domain", "artist.example", "artist.example"),
        ],
        digests=[(4, DIGEST_OPTED)],
        phashes=[(5, PHASH_OPTED)],
        catalog=catalog(
            [
                (licensed, None, DIGEST_LICENSED, None),
                (donated, "https://cdn.example/donated.png", None, None),
                (stock, "https://museum.example/img/1.jpg", None, PHASH_STOCK),
            ]
        ),
        reservations=TdmReservations(),
    )


def _classes(rows: list[dict[str, object]], uses: tuple[str, ...] = ("generative_training",)):
    result = classify(batch(rows), _snapshot(), uses)  # type: ignore[arg-type]
    return [(r["class"], json.loads(str(r["evidence"])), r["problem"]) for r in result.to_pylist()]


def test_each_class_is_found_with_its_evidence() -> None:
    found = _classes(
        [
            {"url": "https://OPTED.example:443/exact.jpg#x"},
            {"url": "http://gallery.example/private/a/b.png"},
            {"url": "https://www.artist.example/any"},
            {"url": "https://elsewhere.example/a.jpg", "sha256": DIGEST_OPTED},
            {"url": "https://elsewhere.example/b.jpg", "phash": PHASH_OPTED ^ 0b111111},
            {"url": "https://news.example/2026/photo.jpg"},
            {"url": "https://elsewhere.example/c.jpg", "sha256": DIGEST_LICENSED},
            {"url": "https://cdn.example/donated.png"},
            {"url": "https://elsewhere.example/d.jpg", "phash": PHASH_STOCK ^ 0b1},
            {"url": "https://elsewhere.example/e.jpg"},
        ]
    )
    classes = [c for c, _, _ in found]
    assert classes == [
        "opted_out",
        "opted_out",
        "opted_out",
        "opted_out",
        "opted_out",
        "reserved",
        "licensable",
        "public_domain",
        "public_domain",
        "unknown",
    ]
    evidence = [e for _, e, _ in found]
    assert [e[0]["kind"] for e in evidence[:5]] == ["url", "prefix", "domain", "sha256", "phash"]
    assert [e[0]["rule"] for e in evidence[:5]] == [1, 2, 3, 4, 5]
    assert evidence[4][0]["distance"] == 6
    assert evidence[0][0]["registered_at"] == "2025-11-24T16:00:00.000000Z"
    assert evidence[5] == [
        {
            "source": "reservation",
            "kind": "tdmrep",
            "domain": "news.example",
            "rule": "/*",
            "policy_url": "https://news.example/tdm-policy.json",
        }
    ]
    assert evidence[6] == [
        {
            "source": "catalog",
            "item": 501,
            "licence": "licensed",
            "match": "sha256",
            "price_minor": 350,
            "currency": "usd",
        }
    ]
    assert evidence[7][0]["item"] == 502
    assert evidence[7][0]["licence"] == "cc0"
    assert evidence[8][0] == {
        "source": "catalog",
        "item": 503,
        "licence": "public_domain",
        "match": "phash",
        "distance": 1,
    }
    assert evidence[9] == []


def test_a_phash_one_bit_beyond_the_distance_is_not_a_match() -> None:
    [(klass, evidence, _)] = _classes(
        [{"url": "https://elsewhere.example/b.jpg", "phash": PHASH_OPTED ^ 0b1111111}]
    )
    assert (klass, evidence) == ("unknown", [])


def test_consent_wins_and_every_match_is_evidence() -> None:
    [(klass, evidence, _)] = _classes(
        [{"url": "https://www.artist.example/x.jpg", "sha256": DIGEST_LICENSED}]
    )
    assert klass == "opted_out"
    assert [e["source"] for e in evidence] == ["optout", "catalog"]


def test_a_licensed_work_whose_terms_refuse_the_use_is_evidence_not_a_licence() -> None:
    [(klass, evidence, _)] = _classes(
        [{"url": "https://elsewhere.example/c.jpg", "sha256": DIGEST_LICENSED}],
        uses=("generative_training", "commercial_use"),
    )
    assert klass == "unknown"
    assert evidence[0]["uses_not_permitted"] == ["commercial_use"]


def test_malformed_and_missing_urls_are_row_problems() -> None:
    found = _classes(
        [
            {"url": "mailto:someone@example.com"},
            {"url": None},
            {"url": "not a url at all", "sha256": DIGEST_OPTED},
        ]
    )
    assert found[0][0] == "unknown"
    assert found[0][2].startswith("malformed URL: ")
    assert found[1][2] == "no URL and no hash: nothing to check"
    assert found[2][0] == "opted_out"
    assert found[2][2].startswith("malformed URL")


def test_the_snapshot_pickles_and_refuses_another_hash_seed() -> None:
    rows = [{"url": "https://www.artist.example/x"}, {"url": "https://cdn.example/donated.png"}]
    original = _snapshot()
    copy = pickle.loads(pickle.dumps(original))  # noqa: S301  # our own bytes
    assert (
        classify(batch(rows), copy, ["generative_training"]).to_pylist()
        == classify(  # type: ignore[arg-type]
            batch(rows),
            original,
            ["generative_training"],  # type: ignore[arg-type]
        ).to_pylist()
    )
    state = dict(vars(original))
    state["hash_probe"] += 1
    with pytest.raises(SnapshotNotPortable, match="PYTHONHASHSEED"):
        type(original).__new__(type(original)).__setstate__(state)  # type: ignore[attr-defined]
