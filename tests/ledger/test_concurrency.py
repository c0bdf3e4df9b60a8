"""Two real processes appending at once still make one gap-free, fork-free log.

The processes take turns to lead. The leader appends inside its transaction and, still holding
the ledger lock, tells the follower so through a FIFO; the follower checks that the lock is held
(it could not take it now), says so back, and only then appends, which must wait until the
leader commits. So every round provably overlaps the two writers, with no sleeps: a lock that
did not hold would let the follower's check succeed, or let both write the same sequence numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from marketplace.db import make_engine
from marketplace.ledger.keys import load_signer
from marketplace.ledger.models import LedgerCheckpoint, LedgerEntry
from marketplace.migrate import upgrade
from tests.conftest import ROOT

APPENDER = """
import json, sqlite3, sys
from sqlalchemy import text
from marketplace import create_app
from marketplace.db import get_database, transaction
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind

app = create_app()
name, rounds, batch, fifo_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# Open both FIFOs in the same order in both processes, so the opens pair up.
if name == "a":
    send = open(f"{fifo_dir}/a_to_b", "wb", buffering=0)
    receive = open(f"{fifo_dir}/b_to_a", "rb", buffering=0)
else:
    receive = open(f"{fifo_dir}/a_to_b", "rb", buffering=0)
    send = open(f"{fifo_dir}/b_to_a", "wb", buffering=0)


def signal():
    send.write(b"x")


def wait():
    assert receive.read(1) == b"x", "the other appender went away"


def lock_is_held_elsewhere():
    engine = get_database(app).engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            taken = connection.scalar(
                text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": ledger.ADVISORY_LOCK_ID}
            )
            connection.rollback()
        return not taken
    probe = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    probe.execute("ROLLBACK")
    return False


def append(r):
    with transaction() as session:
        ledger.append_many(session, [
            ledger.NewEntry(EntryKind.WORK_REGISTERED, {"work": r * batch + i},
                            {"writer": name, "round": r, "i": i})
            for i in range(batch)
        ])
        if leads(r):
            signal()  # inside the write, holding the ledger lock
            wait()    # until the follower has found the lock taken


def leads(r):
    return (r % 2 == 0) == (name == "a")


found_held = 0
with app.app_context():
    for r in range(rounds):
        if leads(r):
            append(r)
        else:
            wait()
            found_held += lock_is_held_elsewhere()
            signal()
            append(r)  # must queue behind the leader's open transaction
print(json.dumps({"followed": rounds // 2, "found_lock_held": found_held}))
"""


def _env(url: str, tmp_path, key_path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "LEDGER_KEY_PATH": str(key_path),
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONPATH": str(ROOT),
    }


def _run_two_appenders(url: str, tmp_path, rounds: int = 12, batch: int = 3) -> None:
    key_path = tmp_path / "ledger.pem"
    load_signer("localhost/marketplace/ledger", key_path, create=True)
    env = _env(url, tmp_path, key_path)
    for fifo in ("a_to_b", "b_to_a"):
        os.mkfifo(tmp_path / fifo)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, name, str(rounds), str(batch), str(tmp_path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        # Each follower turn overlapped the leader's write: the lock was held against it.
        assert json.loads(out) == {"followed": rounds // 2, "found_lock_held": rounds // 2}
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.scalar(select(func.count()).select_from(LedgerEntry))
            top = connection.scalar(select(func.max(LedgerEntry.seq)))
            checkpoints = connection.scalar(select(func.count()).select_from(LedgerCheckpoint))
    finally:
        engine.dispose()
    assert count == 2 * rounds * batch
    assert top == count - 1  # gap-free
    assert checkpoints == 2 * rounds  # one per committed transaction
    verify = subprocess.run(
        [sys.executable, "-c", "from marketplace.cli import main; main()", "ledger", "verify"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith(f"ledger OK: {count} entries")


@pytest.mark.slow
def test_two_processes_append_to_postgresql(empty_postgres_url, tmp_path):
    engine = make_engine(empty_postgres_url)
    upgrade(engine)
    engine.dispose()
    _run_two_appenders(empty_postgres_url, tmp_path)


@pytest.mark.slow
def test_two_processes_append_to_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'concurrent.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    _run_two_appenders(url, tmp_path)
