"""Two real processes appending at once still make one gap-free, fork-free log."""

from __future__ import annotations

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
import sys
from marketplace import create_app
from marketplace.db import transaction
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind

app = create_app()
name, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with app.app_context():
    for r in range(rounds):
        with transaction() as session:
            ledger.append_many(session, [
                ledger.NewEntry(EntryKind.WORK_REGISTERED, {"work": r * batch + i},
                                {"writer": name, "round": r, "i": i})
                for i in range(batch)
            ])
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


def _run_two_appenders(url: str, tmp_path, rounds: int = 40, batch: int = 3) -> None:
    key_path = tmp_path / "ledger.pem"
    load_signer("localhost/marketplace/ledger", key_path, create=True)
    env = _env(url, tmp_path, key_path)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, name, str(rounds), str(batch)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
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
