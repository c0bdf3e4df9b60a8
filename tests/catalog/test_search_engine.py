"""The tantivy engine: word forms, spellings, prefixes, ranking, consent before the index,
index maintenance (jobs, rebuild, one writer and many readers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from marketplace import jobs
from marketplace.artists import services as artists
from marketplace.catalog import search_index
from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import CatalogItem
from marketplace.catalog.sources.base import Skipped
from marketplace.db import transaction
from tests.catalog.test_search import DONATED, LICENSED, make_stock, make_work
from tests.factories import make_artist


def found(client, **params) -> list[str]:
    response = client.get("/api/v1/works", query_string=params)
    assert response.status_code == 200, response.get_json()
    return [item["title"] for item in response.get_json()["items"]]


@pytest.fixture
def museum(db):
    for title, fields in [
        ("Cat on a cushion", {"creator": "Gottfried Mind"}),
        ("Landscape with a river", {"tags": ("Netherlands", "paintings")}),
        ("Etching of a harbour", {"medium": "etching"}),
        ("Portrait of a woman", {"creator": "Anonymous", "tags": ("portraits",)}),
        ("Still life with flowers", {"creator": "Rachel Ruysch"}),
        ("Flowers in a vase", {"creator": "Jan van Huysum"}),
        ("Life of the saints", {"creator": "Unknown"}),
        ("Still life with fruit", {"creator": "Willem Kalf"}),
        ("Bowl", {"tags": ("Chinese", "Ceramics", "Qing dynasty")}),
        ("Studie für Éloïse", {"creator": "Ferdinand Hodler"}),
    ]:
        make_stock(db, title, **fields)


@pytest.mark.usefixtures("museum")
def test_word_forms_spellings_accents_and_prefixes(client):
    assert found(client, q="cats") == ["Cat on a cushion"]
    assert found(client, q="landscapes") == ["Landscape with a river"]
    assert found(client, q="etched") == ["Etching of a harbour"]
    assert found(client, q="portrait")[0] == "Portrait of a woman"
    assert found(client, q="harbor") == ["Etching of a harbour"]  # American spelling
    assert found(client, q="eloise") == ["Studie für Éloïse"]  # accents folded both ways
    assert found(client, q="ÉLOÏSE") == ["Studie für Éloïse"]
    assert found(client, q="landsc") == ["Landscape with a river"]  # as you type
    assert found(client, q="chinese ceramics") == ["Bowl"]  # museum subjects in tags


@pytest.mark.usefixtures("museum")
def test_all_words_rank_above_most_words(client):
    titles = found(client, q="still life flowers")
    assert titles[0] == "Still life with flowers"
    # Two of three words still match, below the work holding all three; one of three does not.
    assert titles == ["Still life with flowers", "Still life with fruit"]
    assert found(client, q="portrait woman")[0] == "Portrait of a woman"
    assert found(client, q="landscape with river") == ["Landscape with a river"]


@pytest.mark.parametrize(
    "q",
    [
        "title:cat",
        "cat OR *",
        "NOT cat",
        "cat^100 AND -flowers",
        '"cat',
        "cat\\",
        "(cat",
        "cat.*",
        "c[a]t",
        "{cat TO *}",
    ],
)
@pytest.mark.usefixtures("museum")
def test_query_syntax_in_user_text_is_only_words(client, q):
    titles = found(client, q=q)
    assert "Flowers in a vase" not in titles  # no operator, wildcard or negation took effect
    assert len(titles) <= 1
    if q in ("cat OR *", '"cat', "cat\\", "(cat", "cat.*"):
        assert titles == ["Cat on a cushion"]  # the words alone


def test_withdrawn_works_vanish_at_once_though_the_index_lags(client, db, monkeypatch):
    artist = make_artist(db, display_name="Ada Okafor")
    work = make_work(db, artist, "Harbour at dawn", LICENSED, 11)
    make_work(db, artist, "Harbour at noon", DONATED, 12)
    make_stock(db, "Harbour view", source_id="met-77")
    make_stock(db, "Harbour by night", source_id="met-78")
    assert len(found(client, q="harbour")) == 4
    # From now on the index is never told: it lags behind every change below.
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)

    with db.info["app"].app_context(), transaction(db) as session:  # the artist withdraws
        artists.withdraw_consent(session, artists.get_work(session, work.id), session.merge(artist))
    with db.info["app"].app_context():  # the museum stops offering a record
        report = ingest_records("met", [Skipped(reason="not open access", source_id="met-77")])
        assert report.withdrawn == 1
    with transaction(db) as session:  # an opt-out or takedown marks the row unavailable
        session.execute(
            update(CatalogItem)
            .where(CatalogItem.title == "Harbour by night")
            .values(available=False)
        )
    body = client.get("/api/v1/works", query_string={"q": "harbour"}).get_json()
    assert [item["title"] for item in body["items"]] == ["Harbour at noon"]
    assert body["total"] == 1
    assert found(client, sort="newest") == ["Harbour at noon"]
    assert found(client, q="harbour", limit=1) == ["Harbour at noon"]  # the page is refilled
    html = client.get("/catalog", query_string={"q": "harbour"}).get_data(as_text=True)
    assert "Harbour at dawn" not in html
    assert "Harbour view" not in html


def test_a_price_changed_in_the_database_is_filtered_as_the_database_says(client, db, monkeypatch):
    artist = make_artist(db, display_name="Ada Okafor")
    make_work(db, artist, "Priced harbour", LICENSED, 13)  # 300 minor units
    monkeypatch.setattr(search_index, "update", lambda *args, **kwargs: 0)
    with transaction(db) as session:
        session.execute(update(CatalogItem).values(price_minor=900))
    assert found(client, q="harbour", price_max="5") == []


@pytest.mark.parametrize("app_config", [{"SEARCH_INDEX_UPDATES": "job"}])
def test_index_updates_are_jobs_queued_after_the_commit(app, client, db, run_jobs):
    make_stock(db, "Harbour in fog")
    if jobs.redis_connection(app) is not None:  # without Redis the job ran inline already
        assert found(client, q="fog") == []  # queued, not run yet: the index lags
        assert run_jobs() >= 1
    assert found(client, q="fog") == ["Harbour in fog"]


def test_reindex_rebuilds_in_a_new_generation_and_swaps(app, client, db, museum):
    root = search_index.index_dir(app)
    before = (root / "current").resolve()
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "10 works indexed" in result.output
    after = (root / "current").resolve()
    assert after != before
    assert not before.exists()
    assert found(client, q="cats") == ["Cat on a cushion"]


def test_reindex_if_empty_builds_only_where_the_index_holds_nothing(
    app, client, db, museum, tmp_path
):
    """`make run` on a database from before the index (or whose index folder was lost)."""
    root = search_index.index_dir(app)
    kept = (root / "current").resolve()
    result = app.test_cli_runner().invoke(args=["search", "reindex", "--if-empty"])
    assert "nothing to do" in result.output
    assert (root / "current").resolve() == kept

    app.config["SEARCH_INDEX_DIR"] = str(tmp_path / "lost-index")
    assert found(client, q="cats") == []  # no index: search can only hide
    result = app.test_cli_runner().invoke(args=["search", "reindex", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "10 works indexed" in result.output
    assert found(client, q="cats") == ["Cat on a cushion"]


def test_a_tampered_cursor_is_a_400(client, db, museum):
    body = client.get("/api/v1/works", query_string={"limit": 2}).get_json()
    cursor = body["next_cursor"]
    assert cursor
    bad = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    response = client.get("/api/v1/works", query_string={"limit": 2, "cursor": bad})
    assert response.status_code in (400, 422)
    page = client.get("/catalog", query_string={"limit": 2, "cursor": bad})
    assert page.status_code == 400


WRITER = textwrap.dedent(
    """
    import sys, tantivy
    from pathlib import Path
    from marketplace.catalog import search_index as si
    index = si._open(Path(sys.argv[1]))
    writer = si._writer(index, wait=30)
    doc = tantivy.Document()
    doc.add_unsigned("id", int(sys.argv[2]))
    doc.add_text("title", "written by another process")
    writer.add_document(doc)
    writer.commit()
    print("committed")
    """
)


def test_one_writer_waits_for_another_and_readers_reload(app):
    generation = search_index._ensure_current(search_index.index_dir(app))
    with app.app_context():
        reader = search_index.reader()
        assert reader.searcher().num_docs == 0
        holder = search_index._writer(search_index._open(generation))  # this process writes
        other = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(generation), "42"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        time.sleep(1.0)
        assert other.poll() is None  # waiting for the lock
        doc = search_index.tantivy.Document()
        doc.add_unsigned("id", 41)
        holder.add_document(doc)
        holder.commit()
        del holder  # releases the lock
        out, _ = other.communicate(timeout=60)
        assert other.returncode == 0
        assert "committed" in out
        assert search_index.reader().searcher().num_docs == 2  # reloaded, no restart
