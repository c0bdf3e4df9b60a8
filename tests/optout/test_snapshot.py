"""The per-process copy of the address rules answers as the database does, at once: after
writes by another process, never from uncommitted writes, and after a rebuild."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select

from marketplace.db import get_database
from marketplace.optout import services, snapshot
from marketplace.optout.models import OptOutRule, OptOutState, RuleKind
from tests.conftest import ROOT
from tests.factories import make_artist

URLS = [
    "https://example.com/a.png",  # url rule
    "https://example.com/gallery/b.png",  # prefix rule
    "https://cdn.example.org/c.png",  # domain rule
    "https://example.net/d.png",  # registered later, by another process
    "https://example.com/other.png",
]


def answers(db, urls=URLS):
    results = services.check_urls(db, urls)
    db.rollback()
    return [r.opted_out for r in results]


def register(db, owner, kind, address):
    rule = services.register_address(db, owner, kind, address)
    db.commit()
    return rule


def generation(db):
    value = db.scalar(select(OptOutState.generation))
    db.rollback()
    return value


@pytest.fixture(autouse=True)
def _context(app):
    with app.app_context():
        yield


@pytest.fixture
def registry(db):
    artist = make_artist(db)
    register(db, artist, RuleKind.URL, "https://example.com/a.png")
    register(db, artist, RuleKind.PREFIX, "https://example.com/gallery/")
    register(db, artist, RuleKind.DOMAIN, "example.org")
    return artist


def test_every_write_moves_the_generation_and_stamps_its_rule(db, registry):
    start = generation(db)
    rule = register(db, registry, RuleKind.URL, "https://example.net/d.png")
    assert generation(db) == start + 1
    assert rule.changed_generation == start + 1

    services.remove_rule(db, registry, rule.id)
    db.commit()
    assert generation(db) == start + 2
    assert db.get(OptOutRule, rule.id).changed_generation == start + 2


def test_a_rule_written_by_another_process_counts_at_the_next_check(app, db, registry):
    assert answers(db) == [True, True, True, False, False]  # this process's copy is built
    url_rule = db.scalar(select(OptOutRule.id).where(OptOutRule.kind == RuleKind.URL))
    db.rollback()
    script = textwrap.dedent(
        f"""
        from marketplace import create_app
        from marketplace.accounts.models import User
        from marketplace.db import transaction
        from marketplace.optout import services
        from marketplace.optout.models import RuleKind

        app = create_app(
            {{"DATABASE_URL": {str(app.config["DATABASE_URL"])!r}, "REDIS_URL": None,
              "TESTING": True, "RATELIMIT_ENABLED": False}},
            instance_path={str(app.instance_path)!r},
        )
        with app.app_context(), transaction() as session:
            owner = session.get(User, {registry.id})
            services.remove_rule(session, owner, {url_rule})
            services.register_address(session, owner, RuleKind.DOMAIN, "example.net")
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)

    assert answers(db) == [False, True, True, True, False]


def test_an_uncommitted_write_is_never_taken_into_the_copy(app, db, registry):
    assert answers(db) == [True, True, True, False, False]
    services.register_address(db, registry, RuleKind.URL, "https://example.net/d.png")
    db.flush()
    # The check reads committed rules only, so what may yet roll back is not cached ...
    assert [r.opted_out for r in services.check_urls(db, URLS)] == [True, True, True, False, False]
    db.rollback()
    # ... and a later write that takes the same generation number is seen.
    register(db, registry, RuleKind.URL, "https://example.com/other.png")
    assert answers(db) == [True, True, True, False, True]


def test_a_rebuilt_copy_answers_as_an_updated_one(app, db, registry, monkeypatch):
    engine = get_database(app).engine
    assert answers(db) == [True, True, True, False, False]
    added = register(db, registry, RuleKind.URL, "https://example.net/d.png")
    services.remove_rule(db, registry, added.id)
    register(db, registry, RuleKind.PREFIX, "https://example.net/")
    updated = services.check_urls(db, URLS)
    db.rollback()
    assert snapshot.current(engine).changes == 2  # rules read, each in its last state

    monkeypatch.setattr(snapshot, "REBUILD_AFTER", 0)
    register(db, registry, RuleKind.URL, "https://example.net/e.png")
    rebuilt = services.check_urls(db, URLS)
    db.rollback()
    assert snapshot.current(engine).changes == 0
    assert [r.to_json() for r in rebuilt] == [r.to_json() for r in updated]
    assert [r.opted_out for r in rebuilt] == [True, True, True, True, False]


def test_several_rules_on_one_address_each_answer(db, registry):
    other = make_artist(db)
    register(db, other, RuleKind.URL, "https://example.com/a.png")
    register(db, other, RuleKind.DOMAIN, "cdn.example.org")
    (exact, _, domain, _, _) = services.check_urls(db, URLS)
    assert [m.kind for m in exact.matches] == ["url", "url"]
    assert [m.kind for m in domain.matches] == ["domain", "domain"]
