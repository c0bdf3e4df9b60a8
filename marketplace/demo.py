"""A small demo data set for `make run`, made through the same services as the pages."""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw
from sqlalchemy import select

from marketplace import imaging
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User, UserRole
from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind
from marketplace.artists.terms import TermsSpec
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.models import MirrorStatus, StockRecord
from marketplace.catalog.sources import get_adapter
from marketplace.catalog.tasks import store_stock_image
from marketplace.db import transaction

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed on purpose; demo accounts only

LICENSED = TermsSpec(
    TermsKind.LICENSE,
    price_minor=250,
    generative_training=True,
    non_generative_training=True,
    commercial_use=True,
    attribution_required=True,
)
DONATED = TermsSpec(TermsKind.DONATE)
KEPT_OUT = TermsSpec(TermsKind.NOT_AVAILABLE)

DEMO_ARTISTS = [
    ("ada@demo.example", "Ada Okafor", [("Harbour lights", LICENSED), ("Salt flats", DONATED)]),
    ("bruno@demo.example", "Bruno Lindqvist", [("Birch study", LICENSED), ("Fjord", LICENSED)]),
    ("chen@demo.example", "Chen Wei", [("Ink rain", KEPT_OUT), ("Lantern street", DONATED)]),
]
DEMO_BUYER = ("buyer@demo.example", "Dana Buyer", "Open Vision Labs")
DEMO_ADMIN = ("admin@demo.example", "Demo Administrator")


def demo_picture(seed: int, size: tuple[int, int] = (1200, 800)) -> bytes:
    """An abstract picture drawn here (the demo needs no network and ships no images)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top = tuple(rng.randrange(40, 220) for _ in range(3))
    bottom = tuple(rng.randrange(40, 220) for _ in range(3))
    for y in range(size[1]):
        t = y / size[1]
        draw.line(
            [(0, y), (size[0], y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    for _ in range(14):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(30, 220)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=rng.randrange(2, 12))
    for i in range(0, size[0], 6):
        wave = size[1] / 2 + math.sin(i / (30 + seed)) * 120
        draw.point((i, int(wave)), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _ensure_user(email: str, **kwargs: object) -> tuple[User, bool]:
    with transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is not None:
            return user, False
        user = accounts.sign_up(session, email=email, password=DEMO_PASSWORD, **kwargs)  # type: ignore[arg-type]
        accounts.verify_email_now(session, user)
        return user, True


def _ensure_admin(email: str, display_name: str) -> bool:
    """The demo's administrator (reviews, the admin overview); True if made now."""
    with transaction() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            return False
        accounts.create_admin(
            session, email=email, password=DEMO_PASSWORD, display_name=display_name
        )
        return True


def _ensure_works(user: User, works: list[tuple[str, TermsSpec]], seed: int) -> int:
    made = 0
    for offset, (title, terms) in enumerate(works):
        try:
            with transaction() as session:
                owner = session.get(User, user.id)
                assert owner is not None
                assert owner.artist is not None
                artists.register_work(
                    session,
                    owner.artist,
                    owner,
                    demo_picture(seed * 10 + offset),
                    filename=f"{title.lower().replace(' ', '-')}.png",
                    title=title,
                    tags="demo",
                    terms=terms,
                )
            made += 1
        except artists.DuplicateUpload:
            continue
    return made


DEMO_STOCK = [
    ("Study of clouds over a harbour", "Anonymous", 1820, "oil on paper"),
    ("Mountain pass in winter", "Unknown Swiss artist", 1850, "watercolour"),
    ("Botanical plate: wild roses", "Anonymous engraver", 1790, "hand-coloured engraving"),
    ("Harbour lighthouse at dusk", "Anonymous", 1872, "oil on canvas"),
]


def _ensure_stock() -> int:
    """A few public-domain-style stock records, as `marketplace ingest` would load them, with
    pictures drawn here standing in for mirrored museum images (no network at seed time)."""
    import json
    import tempfile
    from pathlib import Path

    records = [
        {
            "id": 900_000 + n,
            "accession_number": f"demo.{n}",
            "title": title,
            "creation_date": str(year),
            "creation_date_earliest": year,
            "creation_date_latest": year,
            "creators": [{"description": creator, "role": "artist"}],
            "technique": medium,
            "type": "Painting",
            "share_license_status": "CC0",
            "url": "",
            "images": {"web": {"url": f"http://127.0.0.1:5000/static/demo-{n}.jpg"}},
        }
        for n, (title, creator, year, medium) in enumerate(DEMO_STOCK)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        report = ingest_file(get_adapter("cleveland"), path)
    with transaction() as session:
        pending = session.scalars(
            select(StockRecord).where(
                StockRecord.source_id.in_([str(r["id"]) for r in records]),
                StockRecord.mirror_status != MirrorStatus.MIRRORED,
            )
        ).all()
        for record in pending:
            picture = demo_picture(record.id * 7, (1400, 1000))
            inspected = imaging.inspect_image(picture, max_bytes=10**8, max_pixels=10**8)
            store_stock_image(session, record, picture, inspected)
    return report.added


def seed_demo() -> list[str]:
    """Create what is missing, report what exists; safe to run any number of times."""
    lines = []
    for number, (email, name, works) in enumerate(DEMO_ARTISTS, start=1):
        user, made = _ensure_user(email, role=UserRole.ARTIST, display_name=name)
        new_works = _ensure_works(user, works, number)
        lines.append(f"artist {email}: {'created' if made else 'exists'}, {new_works} new works")
    email, name, org = DEMO_BUYER
    _user, made = _ensure_user(email, role=UserRole.BUYER, display_name=name, organization_name=org)
    lines.append(f"buyer {email} of {org}: {'created' if made else 'exists'}")
    email, name = DEMO_ADMIN
    lines.append(f"admin {email}: {'created' if _ensure_admin(email, name) else 'exists'}")
    lines.append(f"public-domain stock: {_ensure_stock()} new records")
    lines.append(f"Demo accounts log in with the password {DEMO_PASSWORD!r}.")
    return lines
