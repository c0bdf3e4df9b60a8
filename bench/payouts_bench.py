"""Payout run benchmark: one run paying many artists through the Stripe emulator.

    python bench/payouts_bench.py [--artists 200 1000] [--backend sqlite postgresql]

For each size: that many artists, each onboarded (Express account, onboarding completed) and
each with one licensed work in one bundle that a buyer pays for; then `run_payouts` pays every
artist their share with one Stripe transfer each (intent committed before the call, the answer
recorded after: three ledger transactions' worth of writes per artist). Beside it, as a floor
measured in the same run against the same emulator, the Stripe calls alone: as many
`gateway.create_transfer` calls to the same accounts, with nothing recorded. The ratio is what
our bookkeeping costs on top of talking to Stripe (whose real latency, ~0.3-1 s per call, would
dwarf both).

No target is set by the issue; the figures go in the README's performance table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

from common import bench_buyer, database, print_table
from PIL import Image
from sqlalchemy import select

from marketplace import create_app
from marketplace.accounts import services as accounts
from marketplace.accounts.models import UserRole
from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import TermsSpec
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle
from marketplace.db import get_database, transaction
from marketplace.migrate import upgrade
from marketplace.payments import gateway
from marketplace.payouts import services as payouts
from marketplace.payouts.models import PayoutAccount


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "marketplace.payments.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "listening on " not in line:
        raise SystemExit(f"the Stripe emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def noise_png(size: int = 256) -> bytes:
    """A distinct image (random noise), so that no upload is taken for another's duplicate."""
    out = BytesIO()
    Image.frombytes("L", (size, size), os.urandom(size * size)).save(out, "PNG")
    return out.getvalue()


def visit(link: str) -> None:
    parts = urlsplit(link)
    connection = HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("GET", parts.path)
        connection.getresponse().read()
    finally:
        connection.close()


def bench(backend: str, url: str, count: int, emulator: str, workdir: Path) -> dict[str, str]:
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "PACKAGE_AUTO_BUILD": False,
            "STORAGE_DIR": str(workdir / f"objects-{backend}-{count}"),
            "OUTBOX_DIR": str(workdir / f"outbox-{backend}-{count}"),
            "STRIPE_API_BASE": emulator,
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "STRIPE_IDEMPOTENCY_PREFIX": f"bench-{backend}-{count}-{time.time_ns()}:",
            "PAYOUT_HOLD_DAYS": 0,
            "PAYOUT_MINIMUM_MINOR": 100,
        },
        instance_path=str(workdir / f"instance-{backend}-{count}"),
    )
    upgrade(get_database(app).engine)
    with app.app_context():
        session = get_database(app).sessions()
        work_ids: list[int] = []
        for n in range(count):
            with transaction(session):
                user = accounts.sign_up(
                    session,
                    email=f"artist{n}@example.com",
                    password="bench-password-2026",  # noqa: S106
                    role=UserRole.ARTIST,
                    display_name=f"Artist {n}",
                )
                assert user.artist is not None
                work = artists.register_work(
                    session,
                    user.artist,
                    user,
                    noise_png(),
                    title=f"Work {n}",
                    terms=TermsSpec(TermsKind.LICENSE, price_minor=500, generative_training=True),
                )
                work_ids.append(work.id)
                link = payouts.start_onboarding(
                    session,
                    user.artist,
                    email=user.email,
                    refresh_url="http://localhost/r",
                    return_url="http://localhost/done",
                )
                account = payouts.payout_account(session, user.artist.id)
                assert account is not None
                account_id = account.stripe_account_id
            visit(link)
            with transaction(session):
                payouts.sync_account(session, account_id)
        with transaction(session):
            buyer = bench_buyer(session)
            bundle = buyers.create_bundle(
                session,
                buyer,
                buyers.BundleRequest(
                    name="All artists", intended_uses=["generative_training"], work_ids=work_ids
                ),
            )
            bundle_id = bundle.id
        session.expire_all()
        bundle = session.get(Bundle, bundle_id)
        assert bundle is not None
        assert bundle.included_count == count, bundle.error
        quote = buyers.current_quote(session, bundle)
        assert quote is not None
        with transaction(session):
            order = buyers.checkout(session, buyer, bundle, quote.public_id).order
            assert buyers.record_payment(
                session,
                order,
                payment_intent_id=f"pi_bench_{time.time_ns()}",
                amount_minor=order.total_minor,
                currency=order.currency,
            )
            order_id = order.id
        session.close()

        t0 = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            profiler = cProfile.Profile()
            outcome = profiler.runcall(payouts.run_payouts, trigger="bench")
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
        else:
            outcome = payouts.run_payouts(trigger="bench")
        run_seconds = time.perf_counter() - t0
        assert outcome.paid == count, outcome

        session = get_database(app).sessions()
        destinations = list(session.scalars(select(PayoutAccount)))
        session.close()
        timings = []
        t0 = time.perf_counter()
        for row in destinations:
            t1 = time.perf_counter()
            gateway.create_transfer(
                amount_minor=400,
                currency="usd",
                destination=row.stripe_account_id,
                transfer_group=f"order_{order_id}",
                idempotency_key=f"floor-{row.id}",
                metadata={"floor": "1"},
            )
            timings.append(time.perf_counter() - t1)
        floor_seconds = time.perf_counter() - t0
    get_database(app).engine.dispose()
    per_artist = run_seconds / count * 1000
    return {
        "backend": backend,
        "artists": f"{count:,}",
        "payout run": f"{run_seconds:.1f} s ({per_artist:.1f} ms per artist)",
        "Stripe calls alone (floor)": (
            f"{floor_seconds:.1f} s (median {statistics.median(timings) * 1000:.1f} ms per call)"
        ),
        "ratio": f"{run_seconds / floor_seconds:.1f}x",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artists", type=int, nargs="+", default=[200, 1000])
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    process, emulator = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for count in args.artists:
                for backend in args.backend:
                    with database(backend, workdir) as url:
                        rows.append(bench(backend, url, count, emulator, workdir))
                    print(rows[-1], flush=True)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print_table("A payout run (one transfer per artist) against the Stripe emulator:", rows)


if __name__ == "__main__":
    main()
