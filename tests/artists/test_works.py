"""Artists upload works, choose and change their terms, and withdraw consent."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from marketplace import storage
from marketplace.amounts import AmountInvalid, parse_amount
from marketplace.artists.consent import (
    DataMining,
    encode_with_xmp,
    read_consent_signals,
    xmp_packet,
)
from marketplace.artists.forms import price_token
from marketplace.artists.models import TermsKind, Work, WorkStatus, WorkTerms
from marketplace.ledger.models import LedgerEntry
from tests import images
from tests.factories import make_artist, make_buyer

LICENSE = {
    "kind": "license",
    "price": "2.50",
    "generative_training": "y",
    "commercial_use": "y",
}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def confirmed(client, fields: dict) -> dict:
    """`fields` as the artist sends them once the price has been read back to them: with the
    token of the amount (absent when the price does not read as an amount at all)."""
    if fields.get("kind") != "license" or "price_confirmation" in fields:
        return fields
    with client.application.test_request_context():
        try:
            amount = parse_amount(fields.get("price", ""), "usd", "en_US")
        except AmountInvalid:
            return fields
        return {**fields, "price_confirmation": price_token(amount, "usd")}


def post_terms(client, url: str, fields: dict):
    """Save terms on a terms form (a work's, the batch's or the defaults), price confirmed."""
    return client.post(url, data=confirmed(client, fields))


def upload(client, *files: tuple[bytes, str], csv: bytes | None = None, **fields):
    fields = confirmed(client, fields)
    data = {"images": [(io.BytesIO(content), name) for content, name in files], **fields}
    if csv is not None:
        data["metadata_csv"] = (io.BytesIO(csv), "works.csv")
    return client.post("/artists/works/new", data=data, content_type="multipart/form-data")


def stored_keys(app) -> list[str]:
    with app.app_context():
        return storage.backend().keys()


@pytest.fixture
def artist(db, login):
    user = make_artist(db, display_name="Ada Okafor")
    login(user)
    return user


def test_upload_records_the_file_its_terms_and_its_provenance(app, client, db, artist, run_jobs):
    response = upload(client, (images.png(1, (1600, 1200)), "dusk.png"), **LICENSE)
    assert response.status_code == 200
    assert b"dusk.png</strong>: uploaded" in response.data
    run_jobs()
    work = db.scalar(select(Work))
    assert (work.title, work.format, work.width, work.height) == ("dusk", "PNG", 1600, 1200)
    assert len(work.sha256) == 64
    assert work.status is WorkStatus.ACTIVE
    terms = work.current_terms
    assert (terms.kind, terms.price_minor, terms.version) == (TermsKind.LICENSE, 250, 1)
    assert (terms.generative_training, terms.commercial_use, terms.fine_tuning) == (
        True,
        True,
        False,
    )
    kinds = list(db.scalars(select(LedgerEntry.kind).where(LedgerEntry.work_id == work.id)))
    assert kinds == ["work.registered", "work.terms_set"]
    assert f"originals/{work.id}" in stored_keys(app)
    assert work.derivatives_ready
    thumb = client.get(f"/works/{work.id}/thumb.webp")
    preview = client.get(f"/works/{work.id}/preview.webp")
    assert thumb.status_code == preview.status_code == 200
    assert max(Image.open(io.BytesIO(thumb.data)).size) == 256
    assert max(Image.open(io.BytesIO(preview.data)).size) == 1024


def test_derivatives_carry_consent_and_no_exif(app, client, db, artist, run_jobs):
    upload(client, (images.jpeg_with_gps(3), "holiday.jpg"), **LICENSE)
    run_jobs()
    work = db.scalar(select(Work))
    for name in ("thumb", "preview"):
        data = client.get(f"/works/{work.id}/{name}.webp").data
        picture = Image.open(io.BytesIO(data))
        assert not picture.getexif()
        assert b"PhoneMaker" not in data
        signals = read_consent_signals(data, "image/webp")
        assert signals.xmp_data_mining == DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR
        assert f"/terms/{work.current_terms.id}".encode() in data


def test_priced_previews_are_watermarked_and_donated_ones_are_not(
    app, client, db, artist, run_jobs
):
    pictures = [images.png(4, (800, 600)), images.png(5, (800, 600))]
    upload(client, (pictures[0], "a.png"), **LICENSE)
    upload(client, (pictures[1], "b.png"), kind="donate")
    run_jobs()
    priced, donated = db.scalars(select(Work).order_by(Work.id)).all()

    def difference(work: Work) -> float:
        """Mean absolute pixel difference between the preview and the original."""
        original = Image.open(io.BytesIO(pictures[work.id - priced.id])).convert("RGB")
        preview = Image.open(io.BytesIO(client.get(f"/works/{work.id}/preview.webp").data))
        resized = original.resize(preview.size)
        pixels = zip(
            resized.get_flattened_data(), preview.convert("RGB").get_flattened_data(), strict=True
        )
        return sum(abs(a - b) for p, q in pixels for a, b in zip(p, q, strict=True)) / (
            preview.width * preview.height
        )

    assert difference(priced) > 2 * difference(donated)
    donated_signals = read_consent_signals(
        client.get(f"/works/{donated.id}/thumb.webp").data, "image/webp"
    )
    assert donated_signals.xmp_data_mining == DataMining.ALLOWED


def test_batch_with_csv_puts_good_files_in_and_reports_each_bad_one(app, client, db, artist):
    csv = (
        b"filename,title,description,tags\n"
        b'one.png,Morning fog,Over the river,"fog, river"\n'
        b"ghost.png,Never uploaded,,\n"
    )
    response = upload(
        client,
        (images.png(10), "one.png"),
        (b"this is not an image", "two.png"),
        (images.jpeg(11), "three.jpg"),
        (images.bomb(), "bomb.png"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated.png"),
        csv=csv,
        **LICENSE,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "two.png is not a PNG, JPEG, WebP or TIFF image" in html
    assert "bomb.png has more than 100 megapixels, the limit" in html
    assert "truncated.png is not a readable PNG image" in html
    assert "describes &#39;ghost.png&#39;, which was not uploaded" in html
    works = db.scalars(select(Work).order_by(Work.id)).all()
    assert [(w.title, w.tags) for w in works] == [("Morning fog", "fog,river"), ("three", "")]
    assert works[0].description == "Over the river"
    assert len([k for k in stored_keys(app) if k.startswith("originals/")]) == 2
    assert count(db, WorkTerms) == 2


def test_every_file_failing_is_422_and_leaves_nothing(app, client, db, artist):
    response = upload(client, (b"GIF89a....", "anim.gif"), (b"", "empty.png"), **LICENSE)
    assert response.status_code == 422
    assert count(db, Work) == 0
    assert count(db, LedgerEntry) == 0
    assert stored_keys(app) == []


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_BYTES": 50_000}])
def test_oversized_file_is_refused(app, client, db, artist):
    response = upload(client, (images.png(1, (1200, 900)), "big.png"), **LICENSE)
    assert response.status_code == 422
    assert b"the limit is 50 KB per file" in response.data
    assert b"big.png is " in response.data
    assert count(db, Work) == 0


def test_same_file_twice_by_the_same_artist_is_refused(client, db, artist):
    picture = images.png(20)
    upload(client, (picture, "a.png"), **LICENSE)
    response = upload(client, (picture, "again.png"), **LICENSE)
    assert response.status_code == 422
    assert b"is already uploaded as work" in response.data
    assert count(db, Work) == 1


def test_another_accounts_file_or_look_alike_goes_to_review(app, client, db, login):
    picture = images.noise(30, (640, 480))
    first = make_artist(db)
    login(first)
    upload(client, (images.encode(picture, "PNG"), "original.png"), **LICENSE)
    client.post("/accounts/logout")
    second = make_artist(db)
    login(second)
    upload(client, (images.encode(picture, "PNG"), "copy.png"), **LICENSE)
    upload(client, (images.encode(picture, "JPEG", quality=70), "reencoded.jpg"), **LICENSE)
    upload(client, (images.png(31, (640, 480)), "different.png"), **LICENSE)
    works = db.scalars(select(Work).order_by(Work.id)).all()
    assert [w.status for w in works] == [
        WorkStatus.ACTIVE,
        WorkStatus.REVIEW,
        WorkStatus.REVIEW,
        WorkStatus.ACTIVE,
    ]
    assert works[1].review_reason == "The same file is already registered by another account."
    assert "looks almost identical" in works[2].review_reason
    page = client.get(f"/artists/works/{works[2].id}")
    assert b"Not for sale until an administrator reviews it" in page.data
    assert not works[1].is_available


def test_admin_clears_a_review(app, client, db, login):
    from tests.factories import make_admin

    picture = images.png(40)
    owner, copier = make_artist(db), make_artist(db)
    for user in (owner, copier):
        login(user)
        upload(client, (picture, "p.png"), **LICENSE)
        client.post("/accounts/logout")
    held = db.scalar(select(Work).where(Work.status == WorkStatus.REVIEW))
    login(make_admin(db))
    assert held.title.encode() in client.get("/admin/reviews").data
    response = client.post(f"/admin/reviews/{held.id}/clear", data={"note": "licensed copy"})
    assert response.status_code == 302
    db.refresh(held)
    assert held.status is WorkStatus.ACTIVE
    entry = db.scalar(select(LedgerEntry).where(LedgerEntry.kind == "work.review_cleared"))
    assert json.loads(entry.entry)["payload"]["note"] == "licensed copy"


def test_terms_versions_are_immutable_and_each_has_a_stable_url(app, client, db, artist):
    upload(client, (images.png(50), "w.png"), **LICENSE)
    work = db.scalar(select(Work))
    first = work.current_terms.id
    response = post_terms(
        client,
        f"/artists/works/{work.id}/terms",
        {"kind": "license", "price": "12", "non_generative_training": "y"},
    )
    assert response.status_code == 302
    client.post(f"/artists/works/{work.id}/terms", data={"kind": "donate"})
    versions = db.scalars(select(WorkTerms).where(WorkTerms.work_id == work.id)).all()
    assert [(t.version, t.kind, t.price_minor) for t in versions] == [
        (1, TermsKind.LICENSE, 250),
        (2, TermsKind.LICENSE, 1200),
        (3, TermsKind.DONATE, None),
    ]
    old = client.get(f"/terms/{first}.json").get_json()
    assert (old["version"], old["price_minor"], old["generative_training"]) == (1, 250, True)
    assert "$2.50 per image" in client.get(f"/terms/{first}").get_data(as_text=True)
    assert "CC0 1.0" in client.get(f"/terms/{versions[2].id}").get_data(as_text=True)
    # Saving the same terms again makes no new version.
    client.post(f"/artists/works/{work.id}/terms", data={"kind": "donate"})
    assert count(db, WorkTerms) == 3
    assert count(db, LedgerEntry) == 4  # registered + 3 terms versions


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "license", "price": "0.04", "generative_training": "y"}, b"between $0.05"),
        ({"kind": "license", "price": "1000.01", "generative_training": "y"}, b"$1,000.00"),
        (
            {"kind": "license", "price": "3", "commercial_use": "y"},
            b"at least one kind of training",
        ),
        ({"kind": "license", "price": "1.234", "generative_training": "y"}, b"as 2.50 or 1,000.00"),
        ({"kind": "license", "price": "", "generative_training": "y"}, b"as 2.50 or 1,000.00"),
    ],
)
def test_bad_terms_are_refused_with_a_reason(client, db, artist, fields, message):
    upload(client, (images.png(60), "w.png"), kind="donate")
    work = db.scalar(select(Work))
    response = client.post(f"/artists/works/{work.id}/terms", data=fields)
    assert response.status_code == 422
    assert message in response.data
    assert count(db, WorkTerms) == 1


def test_not_available_lists_the_work_in_the_registry_until_offered(client, db, artist):
    picture = images.png(70)
    upload(client, (picture, "private.png"), kind="not_available")
    import hashlib

    sha = hashlib.sha256(picture).hexdigest()
    check = client.post("/api/v1/optout/check", json={"sha256": sha})
    assert check.get_json()["opted_out"] is True
    work = db.scalar(select(Work))
    post_terms(
        client,
        f"/artists/works/{work.id}/terms",
        {"kind": "license", "price": "1", "generative_training": "y"},
    )
    assert (
        client.post("/api/v1/optout/check", json={"sha256": sha}).get_json()["opted_out"] is False
    )


def test_uploads_without_a_choice_are_not_offered(client, db, artist):
    upload(client, (images.png(80), "w.png"))
    work = db.scalar(select(Work))
    assert work.current_terms.kind is TermsKind.NOT_AVAILABLE
    assert not work.is_available


def test_default_terms_apply_to_new_uploads(client, db, artist):
    response = post_terms(
        client,
        "/artists/defaults",
        {
            "kind": "license",
            "price": "0.75",
            "fine_tuning": "y",
            "non_generative_training": "y",
        },
    )
    assert response.status_code == 302
    upload(client, (images.png(81), "w.png"))
    terms = db.scalar(select(Work)).current_terms
    assert (terms.kind, terms.price_minor, terms.fine_tuning) == (TermsKind.LICENSE, 75, True)


def test_withdrawing_consent_takes_the_work_off_offer(app, client, db, artist, run_jobs):
    upload(client, (images.png(90), "w.png"), **LICENSE)
    run_jobs()
    work = db.scalar(select(Work))
    assert b"w</span>" in client.get(f"/artists/{work.artist_id}").data
    # One click on the work page only opens the confirmation step.
    page = client.get(f"/artists/works/{work.id}").get_data(as_text=True)
    assert f'href="/artists/works/{work.id}/withdraw">Withdraw consent…</a>' in page
    unconfirmed = client.post(f"/artists/works/{work.id}/withdraw")
    assert unconfirmed.status_code == 200
    assert "Withdraw consent for “w”?" in unconfirmed.get_data(as_text=True)
    db.refresh(work)
    assert work.status is WorkStatus.ACTIVE
    assert count(db, LedgerEntry) == 2
    response = client.post(f"/artists/works/{work.id}/withdraw", data={"confirm": "withdraw"})
    assert response.status_code == 302
    db.refresh(work)
    assert work.status is WorkStatus.WITHDRAWN
    assert work.withdrawn_at is not None
    assert db.scalar(select(LedgerEntry.kind).order_by(LedgerEntry.seq.desc())) == (
        "work.consent_withdrawn"
    )
    client.post("/accounts/logout")
    assert b"w</span>" not in client.get(f"/artists/{work.artist_id}").data
    assert client.get(f"/works/{work.id}/thumb.webp").status_code == 404


def test_file_that_says_no_training_needs_explicit_confirmation(client, db, artist):
    xmp = xmp_packet(DataMining.PROHIBITED_AIML_TRAINING, "https://example.org/rights")
    picture = encode_with_xmp(images.noise(100), "PNG", xmp)
    response = upload(client, (picture, "marked.png"), **LICENSE)
    assert response.status_code == 422
    assert b"must not be used for AI training" in response.data
    assert count(db, Work) == 0
    response = upload(client, (picture, "marked.png"), confirm_override="y", **LICENSE)
    assert response.status_code == 200
    work = db.scalar(select(Work))
    assert work.file_prohibits_training
    assert work.current_terms.overrides_file_signal
    entry = db.scalar(select(LedgerEntry).where(LedgerEntry.kind == "work.terms_set"))
    assert json.loads(entry.entry)["payload"]["overrides_file_signal"] is True
    # Keeping it out of training needs no confirmation.
    other = encode_with_xmp(images.noise(101), "PNG", xmp)
    assert upload(client, (other, "kept.png"), kind="not_available").status_code == 200


def test_someone_elses_work_answers_as_if_absent(client, db, login):
    owner = make_artist(db)
    login(owner)
    upload(client, (images.png(110), "mine.png"), **LICENSE)
    work = db.scalar(select(Work))
    client.post("/accounts/logout")
    login(make_artist(db))
    assert client.get(f"/artists/works/{work.id}").status_code == 404
    assert client.post(f"/artists/works/{work.id}", data={"title": "Mine now"}).status_code == 404
    assert (
        client.post(f"/artists/works/{work.id}/terms", data={"kind": "donate"}).status_code == 404
    )
    assert client.post(f"/artists/works/{work.id}/withdraw").status_code == 404
    assert client.get(f"/artists/works/{work.id}/original").status_code == 404
    batch = {"kind": "donate", "work_ids": [str(work.id)]}
    assert client.post("/artists/works/terms", data=batch).status_code == 404
    assert client.get("/artists/works/999999").status_code == 404
    db.refresh(work)
    assert work.title == "mine"
    assert work.status is WorkStatus.ACTIVE


def test_buyers_cannot_upload(client, db, login):
    login(make_buyer(db))
    assert upload(client, (images.png(120), "x.png"), **LICENSE).status_code == 403


def test_owner_downloads_the_original_by_a_signed_link(client, db, artist):
    picture = images.png(130)
    upload(client, (picture, "orig.png"), **LICENSE)
    work = db.scalar(select(Work))
    response = client.get(f"/artists/works/{work.id}/original")
    assert response.status_code == 302
    download = client.get(response.headers["Location"])
    assert download.status_code == 200
    assert download.data == picture
    assert "orig.png" in download.headers["Content-Disposition"]


@pytest.mark.parametrize("name", ["page.html", "script.js", "no-extension", "photo.jpg"])
def test_the_original_is_served_as_the_format_its_bytes_are(client, db, artist, name):
    picture = images.png(131)
    upload(client, (picture, name), **LICENSE)
    work = db.scalar(select(Work))
    download = client.get(client.get(f"/artists/works/{work.id}/original").headers["Location"])
    assert download.data == picture
    assert download.mimetype == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    stem = name.split(".")[0]
    assert f'filename="{stem}.png"' in download.headers["Content-Disposition"]


def test_profile_edit_and_public_page(client, db, artist):
    response = client.post(
        "/artists/profile",
        data={
            "display_name": "Ada O.",
            "bio": "Paints harbours.",
            "links": "https://ada.example\nftp://nope",
            "country": "NG",
        },
    )
    assert response.status_code == 422
    assert b"Links must be http(s) addresses" in response.data
    response = client.post(
        "/artists/profile",
        data={
            "display_name": "Ada O.",
            "bio": "Paints harbours.",
            "links": "https://ada.example",
            "country": "ng",
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ada O." in page
    assert "Paints harbours." in page
    assert "https://ada.example" in page


def test_ids_beyond_any_row_are_404_not_errors(client, db, artist):
    for path in (
        "/artists/works/99999999999",
        "/terms/99999999999",
        "/terms/99999999999.json",
        "/works/99999999999/thumb.webp",
        "/artists/99999999999",
    ):
        assert client.get(path).status_code == 404, path
    response = client.post(
        "/artists/works/terms", data={"work_ids": "99999999999", "kind": "donate"}
    )
    assert response.status_code == 303


def test_the_terms_shown_on_the_upload_form_are_the_terms_recorded(client, db, artist):
    post_terms(
        client,
        "/artists/defaults",
        {"kind": "license", "price": "0.75", "fine_tuning": "y", "non_generative_training": "y"},
    )
    page = client.get("/artists/works/new").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="license"', page)  # starts from the defaults
    assert 'value="0.75"' in page
    assert "Use my default terms" not in page  # no second control that could contradict it
    # An old form or a script may still send the retired checkbox: the chosen terms win.
    upload(client, (images.png(82), "w.png"), kind="donate", use_default_terms="y")
    assert db.scalar(select(Work)).current_terms.kind is TermsKind.DONATE


def test_each_file_of_a_batch_in_any_image_mode_succeeds_or_fails_alone(
    app, client, db, artist, run_jobs
):
    modes = [(mode, fmt) for mode, fmt in images.MODES]
    files = [
        (images.in_mode(mode, fmt, seed=200 + i), f"{i}-{mode.replace(';', '')}.{fmt.lower()}")
        for i, (mode, fmt) in enumerate(modes)
    ]
    tiny = (images.png(198, (1, 1)), "probe.png")
    narrow = (images.png(199, (2000, 255)), "strip.png")
    broken = (images.in_mode("LAB", "TIFF", seed=197)[:300], "cut.tif")
    response = upload(client, files[0], tiny, *files[1:], narrow, broken, kind="donate")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for _, name in files:
        assert f"{name}</strong>: uploaded" in page, name
    assert "probe.png is 1 x 1 px; works need at least 256 px on the short side" in page
    assert "strip.png is 2000 x 255 px" in page
    assert "cut.tif is not a readable TIFF image" in page
    run_jobs()
    works = db.scalars(select(Work).order_by(Work.id)).all()
    assert len(works) == len(files)
    assert all(work.derivatives_ready for work in works)
    preview = client.get(f"/works/{works[-1].id}/preview.webp")
    assert Image.open(io.BytesIO(preview.data)).mode == "RGB"


def test_the_minimum_image_size_is_configurable(app, client, db, artist):
    app.config["MIN_IMAGE_SIDE_PX"] = 32
    assert "uploaded" in upload(
        client, (images.png(196, (40, 32)), "small.png"), kind="donate"
    ).get_data(as_text=True)
    assert count(db, Work) == 1


def test_a_csv_written_with_lone_carriage_returns_is_read(client, db, artist):
    csv = b"filename,title\rdusk.png,Dusk over the bay\rdawn.png,Dawn\r"
    response = upload(
        client, (images.png(12), "dusk.png"), (images.png(13), "dawn.png"), csv=csv, kind="donate"
    )
    assert response.status_code == 200
    titles = db.scalars(select(Work.title).order_by(Work.id)).all()
    assert titles == ["Dusk over the bay", "Dawn"]


@pytest.mark.parametrize(
    ("csv", "reason"),
    [
        (
            b"filename,description\nfog.png," + b"a" * 131_073 + b"\n",
            "The CSV cannot be read at line 2: a field is longer than 131,072 characters.",
        ),
        (b"filename,title\nfog.png,\xff\xfe\n", "The CSV is not UTF-8 text"),
        (b"title\nFog\n", "The CSV needs a header row with a &#39;filename&#39; column."),
    ],
)
def test_an_unreadable_csv_refuses_the_batch_and_uploads_nothing(
    app, client, db, artist, csv, reason
):
    response = upload(client, (images.png(14), "fog.png"), csv=csv, kind="donate")
    assert response.status_code == 422
    assert reason in response.get_data(as_text=True)
    assert count(db, Work) == 0
    assert stored_keys(app) == []


def test_a_job_holding_the_work_from_before_a_withdrawal_does_not_list_it_again(
    app, client, db, artist, run_jobs
):
    """The derivatives job loads the work, renders for seconds, then indexes it: a withdrawal
    committed meanwhile must win (the job's copy of the work is stale by then)."""
    from marketplace.artists import services as artists
    from marketplace.catalog import services as catalog
    from marketplace.catalog.models import CatalogItem
    from marketplace.db import get_database, transaction

    upload(client, (images.png(91), "w.png"), **LICENSE)
    run_jobs()
    work_id = db.scalar(select(Work.id))
    with app.app_context():
        job = get_database().sessions()  # the job's own session, as a worker has
        stale = job.get(Work, work_id)
        job.commit()  # sessions keep loaded values on commit: this copy is the job's
        with transaction() as other:
            work = other.get(Work, work_id)
            artists.withdraw_consent(other, work, work.artist.user)
        catalog.index_work(job, stale)
        job.commit()
        job.close()
    db.rollback()
    assert db.scalar(select(CatalogItem.available).where(CatalogItem.work_id == work_id)) is False
