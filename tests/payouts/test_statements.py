"""Monthly statements: the artist's payable-account lines of a month, reconciling exactly
with the ledger, as CSV (safe to open in a spreadsheet) and PDF."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text, update

from marketplace.accounts.models import UserRole
from marketplace.db import utcnow
from marketplace.ledger import money
from marketplace.ledger.models import LedgerEntry, LedgerTransaction
from marketplace.payouts import exports, statements
from tests.factories import make_api_token, make_artist, make_buyer, make_user
from tests.payouts.support import artist_id, onboard, refund, run, sell


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}


THIS_MONTH = f"{utcnow():%Y-%m}"


def read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def section(rows: list[list[str]], header_first: str, after: int = 0) -> list[list[str]]:
    """The rows under the header row starting with `header_first`, up to a blank row."""
    start = next(i for i, r in enumerate(rows) if i >= after and r and r[0] == header_first)
    out = []
    for row in rows[start + 1 :]:
        if not row:
            break
        out.append(row)
    return out


def minor(text: str) -> int:
    """'-12.50' -> -1250, by string (no floats)."""
    sign = -1 if text.startswith("-") else 1
    whole, _, part = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int(part or 0))


def facts(rows: list[list[str]]) -> dict[str, str]:
    return {r[0]: r[1] for r in rows[:8] if len(r) >= 2}


def test_the_statement_reconciles_exactly_with_the_ledger(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    first = sell(db, buyer, ada, 2500, run_jobs)  # +20.00
    sell(db, buyer, ada, 1875, run_jobs)  # +15.00
    assert run(db).paid == 1  # -35.00 to transit (two transfers)
    refund(db, first, 1250)  # -10.00, then +10.00 back by reversal
    run_jobs()
    stripe_emulator.set_balance(account, 0)
    third = sell(db, buyer, ada, 2500, run_jobs)  # +20.00
    refund(db, first)  # the rest: -10.00, reversal fails: owed back
    run_jobs()
    assert run(db).paid == 1  # pays 10.00: order 3's 20.00 less the 10.00 owed on order 1
    db.rollback()
    ada_id = artist_id(db, ada)
    login(ada)

    response = client.get(f"/artists/payouts/statements/{THIS_MONTH}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"statement-{THIS_MONTH}-usd.csv" in response.headers["Content-Disposition"]
    rows = read_csv(response.data)
    head = facts(rows)
    lines = section(rows, "Date (UTC)")
    amounts = [minor(r[6]) for r in lines]
    opening, closing = minor(head["Opening balance"]), minor(head["Closing balance"])
    ledger = money.balance(db, money.artist_payable(ada_id, "usd"))
    assert opening == 0
    assert opening + sum(amounts) == closing == ledger == 0
    assert minor(lines[-1][7]) == closing  # the running balance ends at the closing balance
    running = opening
    for row, amount in zip(lines, amounts, strict=True):
        running += amount
        assert minor(row[7]) == running
    assert [r[2] for r in lines][:2] == ["Payment received", "Payment received"]
    assert "Payout started" in [r[2] for r in lines]
    assert "Payout reversed after a refund" in [r[2] for r in lines]
    assert {int(r[3]) for r in lines if r[3]} >= {first, third}
    assert all(r[4] for r in lines if r[2] == "Payout started")  # names its payout
    assert minor(head["Credits"]) + minor(head["Debits"]) == closing - opening
    seqs = [int(r[1]) for r in lines]
    assert seqs == sorted(seqs)

    transfers = section(rows, "Date (UTC)", after=rows.index(["Transfers sent"]))
    assert len(transfers) == 3
    assert all(r[4].startswith("tr_") for r in transfers)
    assert sum(minor(r[3]) for r in transfers) == 4500
    netted = [r for r in lines if r[2] == "Owed amount deducted"]
    assert sorted(minor(r[6]) for r in netted) == [-1000, 1000]
    assert {int(r[3]) for r in netted} == {first, third}
    reversals = section(rows, "Date (UTC)", after=rows.index(["Transfer reversals"]))
    assert sorted(r[6] for r in reversals) == ["failed", "reversed"]
    assert any(r[4].startswith("trr_") for r in reversals)
    assert all(r[7] for r in reversals if r[6] == "failed")  # Stripe's message

    pdf = client.get(f"/artists/payouts/statements/{THIS_MONTH}.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")


def test_opening_balance_carries_earlier_months(app, db, run_jobs, stripe_emulator):
    """Move the first sale's entries a month back (as if recorded then): its share is the
    next month's opening balance, and each month's closing is the next one's opening."""
    ada, buyer = make_artist(db), make_buyer(db)
    sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    now = utcnow()
    last_month = date(now.year - 1, 12, 1) if now.month == 1 else date(now.year, now.month - 1, 1)
    backdate_ledger(db, datetime(last_month.year, last_month.month, 15, tzinfo=UTC))
    sell(db, buyer, ada, 1250, run_jobs)
    with app.app_context():
        before = statements.statement(db, ada_id, "Ada", last_month, "usd")
        this = statements.statement(db, ada_id, "Ada", now.date().replace(day=1), "usd")
        total = money.balance(db, money.artist_payable(ada_id, "usd"))
    db.rollback()
    assert (before.opening_minor, before.closing_minor) == (0, 2000)
    assert [line.amount_minor for line in before.lines] == [2000]
    assert this.opening_minor == before.closing_minor == 2000
    assert this.closing_minor == total == 3000
    assert [line.amount_minor for line in this.lines] == [1000]


def backdate_ledger(db, when):
    """Every ledger entry so far recorded at `when`. The ledger refuses UPDATE by trigger;
    this test database drops (SQLite) or disables (PostgreSQL) them for the one change."""
    if db.get_bind().dialect.name == "postgresql":
        for table in ("ledger_entries", "ledger_transactions"):
            db.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for name in db.scalars(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('ledger_entries', 'ledger_transactions') AND name LIKE '%update%'"
            )
        ).all():
            db.execute(text(f"DROP TRIGGER {name}"))
    db.execute(update(LedgerEntry).values(created_at=when))
    db.execute(update(LedgerTransaction).values(created_at=when))
    if db.get_bind().dialect.name == "postgresql":
        for table in ("ledger_entries", "ledger_transactions"):
            db.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    db.commit()


def test_a_month_without_activity_has_opening_equal_to_closing(
    client, db, login, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    sell(db, buyer, ada, 2500, run_jobs)
    login(ada)
    rows = read_csv(client.get("/artists/payouts/statements/2020-03.csv").data)
    head = facts(rows)
    assert head["Opening balance"] == head["Closing balance"] == "0.00"
    assert section(rows, "Date (UTC)") == []


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "1999-12",
        "2101-01",
        "26-01",
        "2026-1",
        "2026_01",
        "\uff12\uff10\uff12\uff16-01",
        "9999-01",
        "2026-01-01",
        " 2026-01",
        "abcd-ef",
    ],
)
def test_malformed_or_out_of_range_months_are_404(client, db, login, month):
    login(make_artist(db))
    assert client.get(f"/artists/payouts/statements/{month}.csv").status_code == 404
    assert client.get(f"/artists/payouts/statements/{month}.pdf").status_code == 404


def test_a_future_month_is_404(client, db, login):
    login(make_artist(db))
    now = utcnow()
    following = f"{now.year + 1}-01" if now.month == 12 else f"{now.year}-{now.month + 1:02d}"
    assert client.get(f"/artists/payouts/statements/{following}.csv").status_code == 404
    assert client.get(f"/artists/payouts/statements/{THIS_MONTH}.csv").status_code == 200
    assert client.get(f"/artists/payouts/statements/{THIS_MONTH}.txt").status_code == 404


def test_parse_month_is_strict():
    assert statements.parse_month("2024-02") == date(2024, 2, 1)
    for bad in ("2024-2", "2024-02 ", "+024-02", "2024-0x"):
        with pytest.raises(statements.InvalidMonth):
            statements.parse_month(bad)


def test_csv_cells_cannot_become_formulas(client, db, login, run_jobs, stripe_emulator):
    ada = make_artist(db, display_name='=HYPERLINK("http://evil")')
    buyer = make_user(db, role=UserRole.BUYER, organization_name="@SUM(A1)")
    sell(db, buyer, ada, 2500, run_jobs)
    login(ada)
    rows = read_csv(client.get(f"/artists/payouts/statements/{THIS_MONTH}.csv").data)
    assert rows[0][1] == '\'=HYPERLINK("http://evil")'
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert exports.safe_cell(value) == "'" + value
    assert exports.safe_cell("Order 12 paid") == "Order 12 paid"
    for row in rows:
        for i, cell in enumerate(row):
            if cell[:1] in ("=", "+", "@", "\t", "\r"):
                pytest.fail(f"formula-like cell {cell!r}")
            if cell.startswith("-"):  # only our own amounts may be negative numbers
                assert minor(cell) < 0, (row, i)


def test_amounts_are_formatted_from_integers():
    assert statements.major_units(0, "usd") == "0.00"
    assert statements.major_units(-5, "usd") == "-0.05"
    assert statements.major_units(123456789, "usd", grouped=True) == "1,234,567.89"
    assert statements.major_units(1234, "jpy") == "1234"
    assert statements.major_units(10**17 + 1, "usd") == "1000000000000000.01"


def test_the_pdf_shows_the_closing_balance(app, db, run_jobs, stripe_emulator):
    ada, buyer = make_artist(db, display_name="Zoë Ångström"), make_buyer(db)
    sell(db, buyer, ada, 2500, run_jobs)
    ada_id = artist_id(db, ada)
    with app.app_context():
        st = statements.statement(
            db, ada_id, "Zoë Ångström 夕焼け", utcnow().date().replace(day=1), "usd"
        )
        data = exports.statement_pdf(st, compress=False)
    assert data.startswith(b"%PDF-")
    assert b"20.00 USD" in data  # the closing balance, as text in the page
    assert b"Closing balance" in data


def test_another_artist_gets_their_own_statement(client, db, login, run_jobs, stripe_emulator):
    ada, ben, buyer = make_artist(db), make_artist(db), make_buyer(db)
    sell(db, buyer, ada, 2500, run_jobs)
    login(ben)
    rows = read_csv(client.get(f"/artists/payouts/statements/{THIS_MONTH}.csv").data)
    assert facts(rows)["Closing balance"] == "0.00"
    assert section(rows, "Date (UTC)") == []
    assert (
        client.get(f"/artists/payouts/statements/{THIS_MONTH}.csv?currency=eur").status_code == 404
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_gives_balances_payouts_and_statements(client, db, run_jobs, stripe_emulator):
    ada, ben, buyer = make_artist(db), make_artist(db), make_buyer(db)
    onboard(db, ada, stripe_emulator)
    order_id = sell(db, buyer, ada, 2500, run_jobs)
    assert run(db).paid == 1
    refund(db, order_id, 1250)
    run_jobs()
    db.rollback()
    ada_id = artist_id(db, ada)
    token = make_api_token(db, ada)

    body = client.get("/api/v1/artist/payouts", headers=auth(token)).get_json()
    assert body["account"]["payouts_enabled"] is True
    [usd] = body["balances"]
    assert (usd["paid_minor"], usd["reversed_minor"], usd["owed_back_minor"]) == (1000, 1000, 0)
    [payout] = body["payouts"]
    assert payout["status"] == "paid"
    assert payout["transfers"][0]["stripe_transfer_id"].startswith("tr_")
    assert payout["reversals"][0]["stripe_reversal_id"].startswith("trr_")
    assert body["next_cursor"] is None

    st = client.get(f"/api/v1/artist/statements/{THIS_MONTH}", headers=auth(token)).get_json()
    assert st["account"] == f"artist_payable:{ada_id}:usd"
    assert (
        st["opening_minor"] + sum(line["amount_minor"] for line in st["lines"])
        == (st["closing_minor"])
    )
    assert st["closing_minor"] == money.balance(db, money.artist_payable(ada_id, "usd"))
    assert st["credits_minor"] - st["debits_minor"] == st["closing_minor"] - st["opening_minor"]
    assert [t["order_id"] for t in st["transfers"]] == [order_id]
    assert st["reversals"][0]["status"] == "reversed"

    other = client.get(
        f"/api/v1/artist/statements/{THIS_MONTH}", headers=auth(make_api_token(db, ben))
    )
    assert other.get_json()["lines"] == []
    assert (
        client.get("/api/v1/artist/payouts", headers=auth(make_api_token(db, ben))).get_json()[
            "payouts"
        ]
        == []
    )


def test_the_api_refuses_buyers_bad_months_and_bad_cursors(client, db):
    artist_token = make_api_token(db, make_artist(db))
    buyer_token = make_api_token(db, make_buyer(db))
    for url in ("/api/v1/artist/payouts", f"/api/v1/artist/statements/{THIS_MONTH}"):
        assert client.get(url).status_code == 401
        refused = client.get(url, headers=auth(buyer_token))
        assert refused.status_code == 403
        assert refused.get_json()["error"]["code"] == "artist_token_required"
    for month in ("2026-13", "1999-01", "3000-01"):
        response = client.get(f"/api/v1/artist/statements/{month}", headers=auth(artist_token))
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "statement_not_found"
    malformed = client.get("/api/v1/artist/statements/2026-1", headers=auth(artist_token))
    assert malformed.status_code == 400
    forged = client.get("/api/v1/artist/payouts?cursor=abc", headers=auth(artist_token))
    assert forged.status_code == 422
