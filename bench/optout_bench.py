"""Opt-out registry benchmark: bulk URL checks against a registry of a million rules.

    python bench/optout_bench.py [--rules 1000000] [--urls 10000] [--runs 7]
                                 [--backend sqlite postgresql]

Builds a fresh, migrated database, fills it with bulk inserts (no ledger entries: the check
never reads them) and times POST /api/v1/optout/check/urls through the Flask test client, then
`services.check_urls` alone, then `services.check_image` for 200 look-alikes of registered
images. The registry mixes 60% exact URLs, 25% prefixes, 10% domains and 5% image hashes over
~200,000 sites, 1% of them withdrawn; the URLs to check mix hits by each kind, misses on
registered hosts, siblings of prefixes, look-alike domains, unknown hosts, withdrawn rules and
a few malformed lines. Every answer is checked against the expected one. With 7 runs, p95 is
the slowest run.

Floors from the same run, with the ratio: `check_urls` beside the in-memory floor, the same
live address rules in Python dicts and sets answering the same URLs (normalise, look up the
key, every suffix of the host and the host's prefixes), once with the project's normaliser
(can_ada) and once with the ada-url one it replaced (skipped when ada-url is not installed; it
is a dev dependency for this); also one plain SQL read of every live rule on the checked URLs'
hosts. The image check is beside one plain indexed lookup of the probe's first pHash band.
"first check" is the first `check_urls` of a process (it loads the registry copy); "after a
write" is a check right after a rule was registered (it reads the changed rules only).

Target (issue #14, 2-core machine): `check_urls` within 1.5x the in-memory floor. PostgreSQL is
taken from BENCH_POSTGRES_URL (default: the local trust-auth server); a scratch database is
created and dropped.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import database, print_table
from sqlalchemy import Engine, bindparam, insert, text

from marketplace import create_app, imaging
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User, UserRole
from marketplace.db import get_database, transaction
from marketplace.migrate import upgrade
from marketplace.optout import services, snapshot
from marketplace.optout.models import OptOutRule, RuleKind
from marketplace.optout.urls import BadUrl, NormalizedUrl, host_suffixes, normalize_url

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENDPOINT = "/api/v1/optout/check/urls"
COLUMNS = (
    "owner_id",
    "kind",
    "value",
    "host",
    "phash",
    "phash_b0",
    "phash_b1",
    "phash_b2",
    "phash_b3",
    "label",
    "created_at",
    "removed_at",
    "ledger_seq",
)
TLDS = ("com", "net", "org", "de", "fr", "co.uk", "jp", "io", "art", "com.br")
WORDS = (
    "atelier", "studio", "gallery", "pixel", "ink", "canvas", "folio", "sketch", "lumen",
    "prism", "brush", "verse", "motif", "hue", "grain", "frame", "mural", "quill",
)  # fmt: skip
BATCH = 20_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Registry:
    """What was inserted, kept only as far as the URL sample needs it."""

    urls: list[tuple[str, str]] = field(default_factory=list)  # (host, path) of url rules
    prefixes: list[tuple[str, str]] = field(default_factory=list)  # (host, path prefix)
    domains: list[str] = field(default_factory=list)
    withdrawn_urls: list[tuple[str, str]] = field(default_factory=list)
    phashes: list[int] = field(default_factory=list)  # of active phash rules
    url_hosts: list[str] = field(default_factory=list)
    rows: int = 0
    # The floor's copy of the live address rules, as plain dicts.
    exact: dict[str, list[datetime]] = field(default_factory=dict)
    by_domain: dict[str, list[datetime]] = field(default_factory=dict)
    by_host: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)


def _host(rng: random.Random, i: int) -> str:
    return f"{rng.choice(WORDS)}{rng.choice(WORDS)}{i}.{rng.choice(TLDS)}"


def _row(
    owner: int, kind: RuleKind, value: str, host: str | None, n: int, phash: int | None = None
) -> tuple[Any, ...]:
    created = EPOCH + timedelta(seconds=n)
    removed = created + timedelta(days=1) if n % 100 == 99 else None  # 1% withdrawn
    bands = imaging.phash_bands(phash) if phash is not None else [None] * 4
    signed = imaging.to_signed64(phash) if phash is not None else None
    return (owner, kind.value, value, host, signed, *bands, "", created, removed, n + 1)


def generate(
    total: int, owners: list[int], rng: random.Random, registry: Registry
) -> Iterator[tuple[Any, ...]]:
    """Rows in the column order of COLUMNS: 60% url, 25% prefix, 10% domain, 5% hashes."""
    n_url, n_prefix, n_domain = int(total * 0.60), int(total * 0.25), int(total * 0.10)
    n_hash = total - n_url - n_prefix - n_domain
    url_hosts = [_host(rng, i) for i in range(max(1, total // 10))]  # a site per 10 rules
    registry.url_hosts = url_hosts
    n = 0
    for i in range(n_url):
        host = ("www." if i % 3 == 0 else "") + url_hosts[rng.randrange(len(url_hosts))]
        path = f"/works/{rng.choice(WORDS)}-{i}.jpg" + (f"?v={i % 7}" if i % 5 == 0 else "")
        row = _row(owners[i % len(owners)], RuleKind.URL, host + path, host, n)
        (registry.withdrawn_urls if row[11] else registry.urls).append((host, path))
        if not row[11]:
            registry.exact.setdefault(host + path, []).append(row[10])
        n += 1
        yield row
    for i in range(n_prefix):
        host = url_hosts[rng.randrange(len(url_hosts))]
        path = f"/gallery-{i}/"
        row = _row(owners[i % len(owners)], RuleKind.PREFIX, host + path, host, n)
        if not row[11]:
            registry.prefixes.append((host, path))
            registry.by_host.setdefault(host, []).append((host + path, row[10]))
        n += 1
        yield row
    for i in range(n_domain):  # as many sites again, opted out whole
        domain = f"{rng.choice(WORDS)}-{i}.{rng.choice(TLDS)}"
        row = _row(owners[i % len(owners)], RuleKind.DOMAIN, domain, domain, n)
        if not row[11]:
            registry.domains.append(domain)
            registry.by_domain.setdefault(domain, []).append(row[10])
        n += 1
        yield row
    for i in range(n_hash // 2 + n_hash % 2):
        digest = hashlib.sha256(f"image {i}".encode()).hexdigest()
        phash = rng.getrandbits(64)
        owner = owners[i % len(owners)]
        yield _row(owner, RuleKind.SHA256, digest, None, n, phash=phash)
        n += 1
        if n < total:
            row = _row(owner, RuleKind.PHASH, imaging.format_phash(phash), None, n, phash=phash)
            if not row[11]:
                registry.phashes.append(phash)
            n += 1
            yield row
    registry.rows = n


def _batches(rows: Iterator[tuple[Any, ...]], size: int = BATCH) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk_insert(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    """COPY on PostgreSQL; one executemany transaction on SQLite."""
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            copy_sql = f"COPY optout_rules ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
    else:
        statement = insert(OptOutRule)
        with engine.begin() as connection:
            for batch in _batches(rows):
                connection.execute(
                    statement,
                    [
                        dict(zip(COLUMNS, row, strict=True)) | {"kind": RuleKind(row[1])}
                        for row in batch
                    ],
                )
    with engine.begin() as connection:  # as autovacuum, or SQLite's PRAGMA optimize, would
        connection.execute(text("ANALYZE"))


def sample_urls(
    registry: Registry, count: int, rng: random.Random
) -> list[tuple[str, bool | None]]:
    """(url, expected opted_out): a quarter exact hits, a fifth each prefix and domain hits,
    the rest misses of several sorts and 1% malformed lines, shuffled."""
    out: list[tuple[str, bool | None]] = []

    def spell(host: str, path: str) -> str:  # the spellings normalization must see through
        variant = rng.randrange(4)
        if variant == 0:
            return f"https://{host}{path}"
        if variant == 1:
            return f"http://{host.upper()}{path}#top"
        if variant == 2:
            return f"https://{host}:443{path}"
        return f"{host}{path}"

    for host, path in rng.sample(registry.urls, count * 25 // 100):
        out.append((spell(host, path), True))
    for host, path in rng.sample(registry.prefixes, count * 20 // 100):
        out.append((spell(host, f"{path}{rng.randrange(10**6)}/detail.png?w=800"), True))
    for domain in rng.sample(registry.domains, count * 20 // 100):
        sub = rng.choice(("", "www.", "cdn.", "img.static."))
        out.append((spell(sub + domain, f"/p/{rng.randrange(10**6)}"), True))
    misses = count - len(out) - count // 100
    for i in range(misses):
        kind = i % 5
        if kind == 0:  # a registered host, a page nobody opted out
            host = rng.choice(registry.url_hosts)
            out.append((spell(host, f"/blog/{i}"), False))
        elif kind == 1:  # a sibling of a prefix
            host, path = rng.choice(registry.prefixes)
            out.append((spell(host, path.rstrip("/") + "-old/x.png"), False))
        elif kind == 2:  # a look-alike of an opted-out domain
            out.append((spell("bad" + rng.choice(registry.domains), "/"), False))
        elif kind == 3 and registry.withdrawn_urls:  # withdrawn: no longer opted out
            host, path = rng.choice(registry.withdrawn_urls)
            out.append((spell(host, path), False))
        else:
            out.append((spell(f"unknown-{i}.example", f"/{i}.png"), False))
    for i in range(count // 100):
        out.append(
            (("ftp://files.example/", "not a url", "http://example.com:99999/")[i % 3], None)
        )
    rng.shuffle(out)
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


HOST_RULES = text(
    "SELECT kind, value FROM optout_rules WHERE kind IN ('url', 'prefix', 'domain') "
    "AND host IN :hosts AND removed_at IS NULL"
).bindparams(bindparam("hosts", expanding=True))
# One indexed band lookup: a quarter of what the near-duplicate search asks of the database.
PHASH_BAND = text("SELECT id, phash FROM optout_rules WHERE phash_b0 = :band")


def floor_host_rules(session: Any, urls: list[str]) -> float:
    """Seconds for plain SQL to fetch every live rule on the URLs' hosts, 500 hosts a query."""
    hosts = sorted({(urlsplit(u).hostname or "") for u in urls if "://" in u})
    t = time.perf_counter()
    for i in range(0, len(hosts), 500):
        session.execute(HOST_RULES, {"hosts": hosts[i : i + 500]}).all()
    elapsed = time.perf_counter() - t
    session.rollback()
    return elapsed


def ada_url_normalize(url: str) -> NormalizedUrl:
    """The normaliser before can_ada (ada-url's cffi bindings), for the floor's comparison."""
    import ada_url  # type: ignore[import-not-found]

    from marketplace.optout.urls import _OTHER_SCHEME, MAX_URL_LENGTH
    from marketplace.text import control_character_problem

    if control_character_problem(url) is not None:
        raise BadUrl("control character")
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise BadUrl("too long")
    if not _OTHER_SCHEME.match(url):
        url = "http://" + url
    try:
        parsed = ada_url.URL(url)
    except ValueError as exc:
        raise BadUrl("not a URL") from exc
    if parsed.protocol not in ("http:", "https:") or not parsed.hostname:
        raise BadUrl("not http(s)")
    host = parsed.hostname.strip().rstrip(".").lower()
    if not host or len(host) > 253 or any(c in host for c in " /\\@?#"):
        raise BadUrl("not a valid host name")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadUrl("not a valid host name") from exc
    if parsed.port not in ("", "80", "443"):
        host = f"{host}:{parsed.port}"
    search = parsed.search if parsed.search != "?" else ""
    return NormalizedUrl(host=host, key=f"{host}{parsed.pathname or '/'}{search}")


def has_ada_url() -> bool:
    try:
        import ada_url  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def floor_in_memory(registry: Registry, urls: list[str], normalize: Any) -> tuple[float, list]:
    """Seconds for the same live rules in Python dicts to answer `urls`: (kind, registered)
    of every match per URL, None for a malformed one."""
    exact, by_domain, by_host = registry.exact, registry.by_domain, registry.by_host
    t = time.perf_counter()
    answers: list[list[tuple[str, datetime]] | None] = []
    for url in urls:
        try:
            n = normalize(url)
        except BadUrl:
            answers.append(None)
            continue
        key, host = n.key, n.host
        found = [("url", c) for c in exact.get(key, ())]
        found += [("prefix", c) for p, c in by_host.get(host, ()) if key.startswith(p)]
        for suffix in host_suffixes(host):
            found += [("domain", c) for c in by_domain.get(suffix, ())]
        answers.append(found)
    return time.perf_counter() - t, answers


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}x" if floor else "-"


def bench_backend(name: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True, "RATELIMIT_ENABLED": False},
        instance_path=str(workdir / f"instance-{name}"),
    )
    engine = get_database(app).engine
    upgrade(engine)
    rng = random.Random(20261125)
    with app.app_context(), transaction() as session:
        owners = []
        for i in range(10):
            user = accounts.sign_up(
                session,
                email=f"bench-artist-{i}@example.com",
                password=secrets.token_urlsafe(16),
                role=UserRole.ARTIST,
                display_name=f"Bench artist {i}",
            )
            owners.append(user.id)
    registry = Registry()
    t0 = time.perf_counter()
    bulk_insert(engine, generate(args.rules, owners, rng, registry))
    build_seconds = time.perf_counter() - t0

    # The floor's dicts are millions of objects that the garbage collector would otherwise walk
    # on every full collection, in the floor's timings and ours alike; a web process has no
    # such heap (the project's copy is a few numpy arrays).
    gc.collect()
    gc.freeze()
    sample = sample_urls(registry, args.urls, rng)
    urls = [u for u, _ in sample]
    expected = [e for _, e in sample]
    client = app.test_client()

    def request() -> float:
        t = time.perf_counter()
        response = client.post(ENDPOINT, json=urls)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        answers = [r["opted_out"] for r in response.get_json()["results"]]
        assert answers == expected, "the check's answers differ from the registry built"
        return elapsed

    request()  # warm-up: caches, statement compilation, the database's pages
    request_times = [request() for _ in range(args.runs)]

    service_times, image_times, floor_times, equal_times = [], [], [], []
    memory_times: list[float] = []
    ada_times: list[float] = []
    looks = rng.sample(registry.phashes, min(200, len(registry.phashes)))
    probes = [p ^ (1 << rng.randrange(64)) for p in looks]
    with app.app_context():
        session = get_database(app).sessions()
        snapshot.forget(engine)  # as a fresh worker process would
        t = time.perf_counter()
        results = services.check_urls(session, urls)
        first_check = time.perf_counter() - t
        session.rollback()
        for _ in range(args.runs):
            t = time.perf_counter()
            results = services.check_urls(session, urls)
            service_times.append(time.perf_counter() - t)
            session.rollback()
            floor_times.append(floor_host_rules(session, urls))
            elapsed, answers = floor_in_memory(registry, urls, normalize_url)
            memory_times.append(elapsed)
            if has_ada_url():
                ada_times.append(floor_in_memory(registry, urls, ada_url_normalize)[0])
        assert [None if a is None else bool(a) for a in answers] == expected
        assert [
            None if r.error else sorted((m.kind, m.registered_at) for m in r.matches)
            for r in results
        ] == [None if a is None else sorted(a) for a in answers], "matches differ from the floor"
        with transaction() as writing:  # one new rule: the next check reads it alone
            owner = writing.get(User, owners[0])
            services.register_address(
                writing, owner, RuleKind.URL, "https://bench-new.example/after-write.png"
            )
        t = time.perf_counter()
        after = services.check_urls(session, [*urls[:-1], "bench-new.example/after-write.png"])
        after_write = time.perf_counter() - t
        assert after[-1].opted_out
        assert [r.opted_out for r in after[:-1]] == expected[:-1]
        session.rollback()
        for probe in probes:  # a look-alike of a registered image, one bit off
            t = time.perf_counter()
            found = services.check_image(session, sha256=None, phash=probe, max_distance=6)
            image_times.append(time.perf_counter() - t)
            assert found.opted_out, "a near-duplicate of a registered image was not found"
            t = time.perf_counter()
            session.execute(PHASH_BAND, {"band": imaging.phash_bands(probe)[0]}).all()
            equal_times.append(time.perf_counter() - t)
        session.close()
    assert [r.opted_out for r in results] == expected
    engine.dispose()
    gc.unfreeze()
    median = statistics.median(request_times)
    service_median, floor_median = statistics.median(service_times), statistics.median(floor_times)
    memory_median = statistics.median(memory_times)
    ada_median = statistics.median(ada_times) if ada_times else 0.0
    image_median, equal_median = statistics.median(image_times), statistics.median(equal_times)
    return {
        "backend": name,
        "rules": f"{registry.rows:,}",
        "build": f"{build_seconds:.0f} s",
        "URLs": f"{len(urls):,} ({sum(1 for e in expected if e):,} hits)",
        "request median": f"{median * 1000:.0f} ms",
        "request p95": f"{_p95(request_times) * 1000:.0f} ms",
        "check_urls median": f"{service_median * 1000:.0f} ms",
        "in-memory floor (can_ada)": f"{memory_median * 1000:.0f} ms "
        f"({ratio(service_median, memory_median)})",
        "in-memory floor (ada-url)": f"{ada_median * 1000:.0f} ms "
        f"({ratio(service_median, ada_median)})"
        if ada_times
        else "-",
        "within 1.5x floor": "yes" if service_median <= 1.5 * memory_median else "NO",
        "host rules SQL": f"{floor_median * 1000:.0f} ms",
        "check_urls p95": f"{_p95(service_times) * 1000:.0f} ms",
        "first check": f"{first_check * 1000:.0f} ms",
        "after a write": f"{after_write * 1000:.0f} ms",
        "check_image median": f"{image_median * 1000:.1f} ms",
        "pHash band SQL floor": f"{equal_median * 1000:.2f} ms "
        f"({ratio(image_median, equal_median)})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for backend in args.backend:
            with database(backend, workdir) as url:
                rows.append(bench_backend(backend, url, args, workdir))
    print_table(
        f"Opt-out bulk check, {args.urls:,} URLs against {args.rules:,} rules, "
        f"{args.runs} runs after a warm-up:",
        rows,
    )


if __name__ == "__main__":
    main()
