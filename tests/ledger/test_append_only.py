"""The database refuses to change the ledger, and `ledger verify` catches what bypasses it."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from marketplace.db import get_database, transaction
from marketplace.ledger import money
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LEDGER_TABLES
from tests.ledger.test_log import append_entries
from tests.ledger.test_money import capture

CHANGES = {
    "ledger_entries": ("UPDATE ledger_entries SET kind = 'x'", "DELETE FROM ledger_entries"),
    "ledger_nodes": ("UPDATE ledger_nodes SET hash = hash", "DELETE FROM ledger_nodes"),
    "ledger_checkpoints": (
        "UPDATE ledger_checkpoints SET note = ''",
        "DELETE FROM ledger_checkpoints",
    ),
    "ledger_accounts": (
        "UPDATE ledger_accounts SET currency = 'eur'",
        "DELETE FROM ledger_accounts",
    ),
    "ledger_transactions": (
        "UPDATE ledger_transactions SET memo = 'x'",
        "DELETE FROM ledger_transactions",
    ),
    "ledger_postings": (
        "UPDATE ledger_postings SET amount_minor = 1",
        "DELETE FROM ledger_postings",
    ),
}


@pytest.fixture
def filled(app, db):
    """Checkpoints at 4, 8, 9, 10 (a money transaction at seq 9) and 16: every ledger table
    has rows, ledger_nodes its first (the 16 leaves 0-15)."""
    append_entries(app, db, 9, per_transaction=4)
    with app.app_context(), transaction(db) as session:
        capture(session)
    append_entries(app, db, 6, per_transaction=6)


def run_cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


@pytest.mark.usefixtures("filled")
@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_update_and_delete_are_refused(app, table):
    engine = get_database(app).engine
    for statement in CHANGES[table]:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


# For each ledger table: the keys that identify a row, and a column a forger would change.
KEYS_AND_FORGED_COLUMN = {
    "ledger_entries": (("seq",), "kind", "forged.kind"),
    "ledger_nodes": (("key",), "hash", bytes(32)),
    "ledger_checkpoints": (("tree_size",), "note", "forged note"),
    "ledger_accounts": (("id", "code"), "currency", "eur"),
    "ledger_transactions": (("id", "idempotency_key", "entry_seq"), "memo", "forged memo"),
    "ledger_postings": (("id",), "amount_minor", 1),
}
REWRITES = [(table, key) for table in LEDGER_TABLES for key in KEYS_AND_FORGED_COLUMN[table][0]]


def _snapshot(connection, table: str) -> list:
    return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def _forged_row(connection, table: str, key: str) -> dict:
    """The first row of `table` with one column changed; a fresh value in every other key."""
    keys, column, value = KEYS_AND_FORGED_COLUMN[table]
    row = dict(
        connection.execute(text(f"SELECT * FROM {table} ORDER BY 1 LIMIT 1")).mappings().one()
    )
    for other in keys:
        if other != key:
            fresh = 10**6 if isinstance(row[other], int) else f"fresh-{other}"
            row[other] = fresh
    row[column] = value
    return row


def _insert(table: str, row: dict, verb: str = "INSERT INTO", tail: str = "") -> str:
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    return f"{verb} {table} ({columns}) VALUES ({values}){tail}"


def _rewrites(dialect: str, table: str, key: str, row: dict) -> dict[str, str]:
    """Every statement that would rewrite an existing row by inserting over its key."""
    _keys, column, _value = KEYS_AND_FORGED_COLUMN[table]
    statements = {
        "insert": _insert(table, row),
        "upsert": _insert(
            table, row, tail=f" ON CONFLICT ({key}) DO UPDATE SET {column} = excluded.{column}"
        ),
    }
    if dialect == "sqlite":
        statements["replace into"] = _insert(table, row, verb="REPLACE INTO")
        statements["insert or replace"] = _insert(table, row, verb="INSERT OR REPLACE INTO")
    else:  # PostgreSQL has no REPLACE; MERGE is its way to replace a matched row.
        statements["merge delete"] = (
            f"MERGE INTO {table} t USING (SELECT 1) s ON t.{key} = :{key} WHEN MATCHED THEN DELETE"
        )
        statements["merge update"] = (
            f"MERGE INTO {table} t USING (SELECT 1) s ON t.{key} = :{key} "
            f"WHEN MATCHED THEN UPDATE SET {column} = :{column}"
        )
    return statements


@pytest.mark.usefixtures("filled")
@pytest.mark.parametrize(("table", "key"), REWRITES)
def test_inserting_over_an_existing_key_never_rewrites_a_ledger_row(app, table, key):
    engine = get_database(app).engine
    with engine.connect() as connection:
        before = _snapshot(connection, table)
        row = _forged_row(connection, table, key)
    for name, statement in _rewrites(engine.dialect.name, table, key, row).items():
        with pytest.raises(DBAPIError), engine.begin() as connection:
            connection.execute(text(statement), row)
        with engine.connect() as connection:
            assert _snapshot(connection, table) == before, f"{name} rewrote {table}"
    assert run_cli(app, "ledger", "verify").exit_code == 0


@pytest.mark.usefixtures("filled")
def test_verify_passes_on_an_untouched_ledger(app):
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ledger OK: 16 entries, 1 nodes")
    assert "1 money transactions" in result.output


def _bypass_and_run(app, statement: str, params: dict, table: str = "ledger_entries") -> None:
    """Disable the guard the way an attacker with raw SQL access would, then change a row."""
    engine = get_database(app).engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            connection.execute(text(statement), params)
            connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            connection.execute(text(f"DROP TRIGGER {table}_no_update"))
            connection.execute(text(statement), params)


def _one_second_later(dialect: str) -> str:
    if dialect == "postgresql":
        return "created_at + interval '1 second'"
    return "strftime('%Y-%m-%d %H:%M:%f', created_at, '+1 second')"


# Columns that repeat the signed entry bytes for lookups: (table, SET clause, WHERE, what
# `ledger verify` must then say). LATER stands for the row's created_at plus one second.
COPIED_COLUMNS = [
    ("ledger_entries", "work_id = 999", "seq = 3", "ledger_entries.work_id is 999"),
    ("ledger_entries", "artist_id = 8", "seq = 3", "ledger_entries.artist_id is 8"),
    ("ledger_entries", "order_id = 2", "seq = 9", "ledger_entries.order_id is 2"),
    ("ledger_entries", "organization_id = 4", "seq = 3", "ledger_entries.organization_id"),
    ("ledger_entries", "kind = 'work.taken_down'", "seq = 3", "ledger_entries.kind"),
    ("ledger_entries", "created_at = LATER", "seq = 3", "ledger_entries.created_at"),
    ("ledger_transactions", "memo = 'forged'", "id = 1", "ledger_transactions.memo"),
    ("ledger_transactions", "kind = 'refund.issued'", "id = 1", "ledger_transactions.kind"),
    ("ledger_transactions", "currency = 'eur'", "id = 1", "ledger_transactions.currency"),
    ("ledger_transactions", "created_at = LATER", "id = 1", "ledger_transactions.created_at"),
    (
        "ledger_accounts",
        "currency = 'eur'",
        "code = 'processor_clearing:usd'",
        "'processor_clearing:usd': its kind, currency",
    ),
    (
        "ledger_accounts",
        "kind = 'asset'",
        "code = 'platform_revenue:usd'",
        "'platform_revenue:usd': its kind, currency",
    ),
    (
        "ledger_accounts",
        "artist_id = 6",
        "code = 'artist_payable:5:usd'",
        "'artist_payable:5:usd': its kind, currency",
    ),
    ("ledger_accounts", "created_at = LATER", "id = 1", "ledger_accounts.created_at"),
    (
        "ledger_checkpoints",
        "created_at = LATER",
        "tree_size = 8",
        "ledger_checkpoints.created_at at size 8",
    ),
    (
        "ledger_checkpoints",
        "root_hash = :zeros",
        "tree_size = 8",
        "ledger_checkpoints.root_hash at size 8",
    ),
    (
        "ledger_postings",
        "currency = 'eur'",
        "id = 1",
        "money transaction 'evt_1' differs from its ledger entry",
    ),
]


@pytest.mark.usefixtures("filled")
@pytest.mark.parametrize(("table", "change", "where", "expected"), COPIED_COLUMNS)
def test_verify_holds_every_copied_column_to_the_signed_bytes(app, table, change, where, expected):
    dialect = get_database(app).engine.dialect.name
    change = change.replace("LATER", _one_second_later(dialect))
    _bypass_and_run(
        app, f"UPDATE {table} SET {change} WHERE {where}", {"zeros": bytes(32)}, table=table
    )
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1, result.output
    assert expected in result.output


@pytest.mark.usefixtures("filled")
def test_tampered_entry_is_named_by_verify(app, db):
    entry = db.execute(text("SELECT entry FROM ledger_entries WHERE seq = 6")).scalar_one()
    forged = json.loads(bytes(entry))
    forged["payload"]["title"] = "Someone else's work"
    data = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    _bypass_and_run(app, "UPDATE ledger_entries SET entry = :data WHERE seq = 6", {"data": data})
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "ledger FAILED at seq 6: entry bytes do not match the stored leaf hash"
    )


def _rewrite_entry_and_leaf(app, db, seq: int) -> None:
    """Change an entry's bytes and recompute its leaf hash, as a careful forger would."""
    from marketplace.ledger import merkle

    entry = db.execute(text(f"SELECT entry FROM ledger_entries WHERE seq = {seq}")).scalar_one()
    forged = bytes(entry).replace(f'"Work {seq}"'.encode(), b'"Work X"')
    assert forged != bytes(entry)
    _bypass_and_run(
        app,
        "UPDATE ledger_entries SET entry = :data, leaf_hash = :leaf WHERE seq = :seq",
        {"data": forged, "leaf": merkle.leaf_hash(forged), "seq": seq},
    )


@pytest.mark.parametrize("seq", [0, 3, 4, 5, 8])
def test_verify_names_the_entry_rewritten_with_its_leaf_hash(app, db, seq):
    """With a checkpoint after every entry, the signed roots pin down the changed entry."""
    append_entries(app, db, 9, per_transaction=1)
    _rewrite_entry_and_leaf(app, db, seq)
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert result.output.startswith(
        f"ledger FAILED at seq {seq}: entry {seq} was changed after it was logged"
    ), result.output


@pytest.mark.usefixtures("filled")
def test_verify_names_every_entry_no_checkpoint_tells_apart(app, db):
    """Entries 4-7 were signed together at size 8: no signed root covers one of them alone."""
    _rewrite_entry_and_leaf(app, db, 5)
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert result.output.startswith(
        "ledger FAILED at seqs 4-7: one of entries 4-7 was changed after it was logged: "
        "the checkpoint at size 8 signed other bytes"
    ), result.output


def test_verify_names_the_entries_under_the_stored_node_that_no_longer_matches(app, db):
    """One transaction of 40: the stored node over 16-31 catches the change before the root."""
    append_entries(app, db, 40, per_transaction=40)
    _rewrite_entry_and_leaf(app, db, 20)
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert result.output.startswith(
        "ledger FAILED at seqs 16-31: one of entries 16-31 was changed after it was logged: "
        "the tree node over entries 16-31 no longer matches"
    ), result.output


def test_verify_says_the_node_table_was_changed_when_a_higher_node_is_forged(app, db):
    append_entries(app, db, 300, per_transaction=300)
    engine = get_database(app).engine
    with engine.connect() as connection:
        level_8 = connection.execute(
            text("SELECT key FROM ledger_nodes ORDER BY key DESC LIMIT 1")
        ).scalar_one()
    _bypass_and_run(
        app,
        "UPDATE ledger_nodes SET hash = :zeros WHERE key = :key",
        {"zeros": bytes(32), "key": level_8},
        table="ledger_nodes",
    )
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert result.output.startswith(
        "ledger FAILED at seq 0: stored tree nodes over entries 0-255 disagree with each other: "
        "the node table was changed"
    ), result.output


@pytest.mark.usefixtures("filled")
def test_verify_names_the_entry_after_the_last_verified_checkpoint(app, db):
    """Entry 8 is proved by the checkpoint at size 9, so a broken node over 8-9 blames 9."""
    from marketplace.ledger import merkle

    entry = db.execute(text("SELECT entry FROM ledger_entries WHERE seq = 9")).scalar_one()
    forged = bytes(entry).replace(b'"memo":""', b'"memo":"forged"')
    assert forged != bytes(entry)
    _bypass_and_run(
        app,
        "UPDATE ledger_entries SET entry = :data, leaf_hash = :leaf WHERE seq = 9",
        {"data": forged, "leaf": merkle.leaf_hash(forged)},
    )
    result = run_cli(app, "ledger", "verify")
    assert result.output.startswith("ledger FAILED at seq 9: entry 9 was changed"), result.output


@pytest.mark.usefixtures("filled")
def test_cli_checkpoint_and_proof_print_what_the_api_serves(app, client):
    result = run_cli(app, "ledger", "checkpoint")
    assert result.exit_code == 0
    assert result.output == client.get("/api/v1/ledger/checkpoint").get_data(as_text=True)
    result = run_cli(app, "ledger", "proof", "3")
    assert result.exit_code == 0
    assert json.loads(result.output) == client.get("/api/v1/ledger/entries/3").get_json()
    assert run_cli(app, "ledger", "proof", "999").exit_code != 0


def test_money_payload_must_match_postings(app, db):
    """A balanced change of postings (with triggers bypassed) is still caught by verify."""
    with app.app_context(), transaction(db) as session:
        capture(session)
    engine = get_database(app).engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_postings DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER ledger_postings_no_update"))
        connection.execute(
            text(
                "UPDATE ledger_postings SET amount_minor = amount_minor + 100 "
                "WHERE direction = 'credit' AND amount_minor = 7000"
            )
        )
        connection.execute(
            text(
                "UPDATE ledger_postings SET amount_minor = amount_minor - 100 "
                "WHERE direction = 'credit' AND amount_minor = 3000"
            )
        )
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert "money transaction 'evt_1' differs from its ledger entry" in result.output
    assert money.balance(db, money.artist_payable(5, "usd")) == 7_100


def test_verify_catches_an_unbalanced_transaction_smuggled_in(app, db):
    with app.app_context(), transaction(db) as session:
        capture(session)
    engine = get_database(app).engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE ledger_postings DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER ledger_postings_no_update"))
        connection.execute(text("UPDATE ledger_postings SET amount_minor = 1 WHERE id = 1"))
    result = run_cli(app, "ledger", "verify")
    assert result.exit_code == 1
    assert "ledger FAILED at seq 0: money transaction 'evt_1' does not balance" in result.output


def test_bundle_cli_output_verifies_offline(app, db):
    from marketplace.ledger.verify import verify_document

    append_entries(app, db, 5)
    result = run_cli(app, "ledger", "bundle", "1", "3")
    assert result.exit_code == 0
    bundle = json.loads(result.output)
    assert verify_document(bundle).ok
    assert base64.b64decode(bundle["entries"][0]["entry"])
    assert EntryKind.WORK_REGISTERED.value in result.output
