"""Reservation index benchmark: URLs matched against many sites' reservation files, in memory.

    python bench/reservations_bench.py [--sites 100000] [--urls 200000] [--runs 5]

Builds a ReservationIndex (as `ReservationIndex.from_session` would, without the database) for
`--sites` hosts, each with a realistic mix: 40% a robots.txt naming AI crawlers (some with
Allow exceptions and "$" patterns), 30% a Spawning-style ai.txt (file types), 20% a TDMRep
file (first match wins, a tdm-policy), 10% all three. The URLs mix hosts with files (half) and
hosts without (half), as a scraped manifest does. Every answer is checked against a second
pass on an unpickled copy.

Figures (medians of `--runs`): `match(url)` in rows/s; the floor in the same run is the part
every row pays anyway, the opt-out registry's `normalize_url` plus one dict lookup by host;
the ratio is floor time / match time. Then `match_normalized` for a classifier that has
normalised the URL already (for the opt-out checks), beside the bare dict lookup by host.
Also the pickled size and build time (a Spark broadcast).
Issue #15's exact checks must run at >= 100,000 rows/s in all.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import statistics
import time

from common import print_table

from marketplace.optout.urls import normalize_url
from marketplace.reservations.matching import ReservationIndex
from marketplace.reservations.parsers import ReservationKind, parse

ROBOTS = (
    "User-agent: *\nDisallow: /admin/\n\n"
    "User-agent: GPTBot\nUser-agent: CCBot\nUser-agent: Google-Extended\n"
    "Disallow: /\nAllow: /public/\nAllow: /*.css$\n"
)
AI_TXT = (
    "# Spawning AI\n/\nUser-agent: *\n/\n"
    + "".join(f"Disallow: *.{ext}\n" for ext in ("jpg", "jpeg", "png", "gif", "webp", "tif"))
    + "Allow: *.txt\nAllow: /\n"
)
TDMREP = json.dumps(
    [
        {"location": "/blog/*.jpg", "tdm-reservation": 0},
        {"location": "/images/", "tdm-reservation": 1, "tdm-policy": "https://x.example/p"},
        {"location": "/", "tdm-reservation": 0},
    ]
)
PATHS = [
    "/images/2024/cat.jpg",
    "/blog/2023/post-title",
    "/blog/photo.JPG",
    "/public/index.html",
    "/static/site.css",
    "/static/site.css?v=3",
    "/uploads/painting.png",
    "/about",
]


def build(sites: int, rng: random.Random) -> tuple[ReservationIndex, list[str]]:
    parsed = {
        ReservationKind.ROBOTS: parse(ReservationKind.ROBOTS, ROBOTS.encode()).rules,
        ReservationKind.AI_TXT: parse(ReservationKind.AI_TXT, AI_TXT.encode()).rules,
        ReservationKind.TDMREP: parse(ReservationKind.TDMREP, TDMREP.encode()).rules,
    }
    files = []
    hosts = []
    for n in range(sites):
        host = f"site{n}.example"
        hosts.append(host)
        roll = rng.random()
        kinds = (
            [ReservationKind.ROBOTS]
            if roll < 0.4
            else [ReservationKind.AI_TXT]
            if roll < 0.7
            else [ReservationKind.TDMREP]
            if roll < 0.9
            else list(ReservationKind)
        )
        files.extend((host, kind, parsed[kind]) for kind in kinds)
    started = time.perf_counter()
    index = ReservationIndex.from_rules(files)
    build_seconds = time.perf_counter() - started
    print(f"built {len(index)} hosts in {build_seconds:.2f} s")
    return index, hosts


def urls_for(hosts: list[str], count: int, rng: random.Random) -> list[str]:
    urls = []
    for n in range(count):
        host = rng.choice(hosts) if n % 2 == 0 else f"cdn{n}.other.example"
        urls.append(f"https://{host}{rng.choice(PATHS)}")
    return urls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--urls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(15)
    index, hosts = build(args.sites, rng)
    urls = urls_for(hosts, args.urls, rng)

    blob = pickle.dumps(index)
    copy = pickle.loads(blob)  # noqa: S301 (our own bytes)
    expected = [index.match(u) for u in urls]
    assert [copy.match(u) for u in urls] == expected
    hits = sum(1 for hit in expected if hit is not None)

    def floor() -> None:
        entries = index._entries
        for url in urls:
            entries.get(normalize_url(url).host)

    def matching() -> None:
        match = copy.match
        for url in urls:
            match(url)

    normalized = [normalize_url(u) for u in urls]

    def lookup_floor() -> None:
        entries = index._entries
        for n in normalized:
            entries.get(n.host)

    def matching_normalized() -> None:
        match = copy.match_normalized
        for n in normalized:
            match(n.host, n.key)

    timings: dict[str, list[float]] = {"floor": [], "match": [], "lookup": [], "normalized": []}
    for _ in range(args.runs):
        for name, run in (
            ("floor", floor),
            ("match", matching),
            ("lookup", lookup_floor),
            ("normalized", matching_normalized),
        ):
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    floor_s = statistics.median(timings["floor"])
    match_s = statistics.median(timings["match"])
    lookup_s = statistics.median(timings["lookup"])
    normalized_s = statistics.median(timings["normalized"])
    print_table(
        f"Reservation index, {args.sites:,} sites, {args.urls:,} URLs ({hits:,} reserved)",
        [
            {
                "what": "ReservationIndex.match(url)",
                "rows/s": f"{args.urls / match_s:,.0f}",
                "floor": "normalize_url + dict lookup by host",
                "floor rows/s": f"{args.urls / floor_s:,.0f}",
                "floor / match time": f"{floor_s / match_s:.2f}",
                "pickled": f"{len(blob) / 1e6:.1f} MB",
            },
            {
                "what": "match_normalized(host, key), URL already normalised",
                "rows/s": f"{args.urls / normalized_s:,.0f}",
                "floor": "dict lookup by host",
                "floor rows/s": f"{args.urls / lookup_s:,.0f}",
                "floor / match time": f"{lookup_s / normalized_s:.2f}",
                "pickled": "",
            },
        ],
    )


if __name__ == "__main__":
    main()
