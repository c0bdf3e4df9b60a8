from __future__ import annotations

import re

from sqlalchemy import func, select

from marketplace.accounts.models import Organization, OrganizationRole, User, UserRole
from marketplace.artists.models import Artist
from tests.conftest import PASSWORD
from tests.factories import make_artist, make_buyer, make_user


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def signup(client, **fields):
    data = {
        "role": "artist",
        "display_name": "Ada Okafor",
        "email": "ada@example.com",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    data.update(fields)
    return client.post("/accounts/signup", data=data)


def test_artist_signs_up_gets_profile_and_verification_mail(client, db, outbox):
    response = signup(client)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/artists/dashboard")
    user = db.scalar(select(User).where(User.email == "ada@example.com"))
    assert user.role is UserRole.ARTIST
    assert user.email_verified_at is None
    assert user.password_hash.startswith("$argon2id$")
    assert db.scalar(select(Artist).where(Artist.user_id == user.id)).display_name == "Ada Okafor"
    mails = outbox()
    assert len(mails) == 1
    assert mails[0]["To"] == "ada@example.com"
    assert "/accounts/verify/" in mails[0].get_content()
    page = client.get("/artists/dashboard")
    assert page.status_code == 200
    assert b"Please confirm your email address" in page.data


def test_verification_link_from_the_outbox_verifies_the_email(client, db, outbox):
    signup(client)
    link = re.search(r"http://localhost(/accounts/verify/\S+)", outbox()[0].get_content())
    response = client.get(link.group(1))
    assert response.status_code == 302
    user = db.scalar(select(User).where(User.email == "ada@example.com"))
    assert user.email_verified_at is not None
    assert b"Please confirm" not in client.get("/artists/dashboard").data


def test_buyer_signup_creates_an_organization_and_a_colleague_joins_with_its_code(client, db):
    response = signup(
        client,
        role="buyer",
        email="dana@lab.example",
        display_name="Dana",
        organization_name="Open Vision Labs",
    )
    assert response.status_code == 302
    owner = db.scalar(select(User).where(User.email == "dana@lab.example"))
    assert owner.organization.name == "Open Vision Labs"
    assert owner.organization_role is OrganizationRole.OWNER
    code = owner.organization.join_code
    client.post("/accounts/logout", data={})
    response = signup(
        client, role="buyer", email="eli@lab.example", display_name="Eli", join_code=code
    )
    assert response.status_code == 302
    colleague = db.scalar(select(User).where(User.email == "eli@lab.example"))
    assert colleague.organization_id == owner.organization_id
    assert colleague.organization_role is OrganizationRole.MEMBER
    assert _count(db, Organization) == 1


def test_buyer_with_unknown_join_code_is_refused_and_nothing_is_written(client, db):
    response = signup(client, role="buyer", email="x@lab.example", join_code="nope")
    assert response.status_code == 422
    assert b"That join code does not match any organization" in response.data
    assert _count(db, User) == 0
    assert _count(db, Organization) == 0


def test_buyer_without_organization_is_asked_for_one(client, db):
    response = signup(client, role="buyer", email="x@lab.example")
    assert response.status_code == 422
    assert b"Name your organization" in response.data
    assert _count(db, User) == 0


def test_duplicate_email_is_a_conflict_whatever_its_case(client, db, outbox):
    make_artist(db, email="ada@example.com")
    response = signup(client, email="ADA@Example.com")
    assert response.status_code == 409
    assert b"An account with this email already exists" in response.data
    assert _count(db, User) == 1
    assert _count(db, Artist) == 1


def test_weak_password_is_refused_with_a_reason(client, db):
    for password, reason in [
        ("short", b"Use at least 10 characters"),
        ("password123", b"too common"),
        ("aaaaaaaaaaaa", b"too common"),
        ("ada@example.com", b"must not be your email"),
    ]:
        response = signup(client, password=password, confirm=password)
        assert response.status_code == 422, password
        assert reason in response.data
    assert _count(db, User) == 0
    assert _count(db, Artist) == 0


def test_mismatched_confirmation_and_bad_email_are_refused(client, db):
    assert signup(client, confirm="something else entirely").status_code == 422
    response = signup(client, email="not-an-email")
    assert response.status_code == 422
    assert _count(db, User) == 0


def test_login_and_logout(client, db):
    user = make_artist(db)
    response = client.post("/accounts/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/artists/dashboard")
    assert client.get("/artists/dashboard").status_code == 200
    assert client.post("/accounts/logout").status_code == 302
    response = client.get("/artists/dashboard")
    assert response.status_code == 302
    assert "/accounts/login" in response.headers["Location"]


def test_wrong_password_and_unknown_email_get_the_same_answer(client, db):
    user = make_artist(db)
    wrong = client.post("/accounts/login", data={"email": user.email, "password": "x" * 12})
    unknown = client.post(
        "/accounts/login", data={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert b"Email or password is not correct" in wrong.data
    assert b"Email or password is not correct" in unknown.data


def test_remember_me_sets_a_lasting_cookie(client, db):
    user = make_artist(db)
    response = client.post(
        "/accounts/login", data={"email": user.email, "password": PASSWORD, "remember": "y"}
    )
    assert "remember_token=" in " ".join(response.headers.getlist("Set-Cookie"))


def test_login_redirects_only_to_local_next(client, db):
    user = make_artist(db)
    data = {"email": user.email, "password": PASSWORD}
    response = client.post("/accounts/login?next=https://evil.example/x", data=data)
    assert response.headers["Location"].endswith("/artists/dashboard")
    client.post("/accounts/logout")
    response = client.post("/accounts/login?next=/buyers/organization", data=data)
    assert response.headers["Location"] == "/buyers/organization"


def test_password_guessing_is_throttled(client, db):
    user = make_artist(db)
    statuses = [
        client.post(
            "/accounts/login", data={"email": user.email, "password": f"guess-{i:04d}-xx"}
        ).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    # Even the right password waits until the window passes.
    response = client.post("/accounts/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many attempts" in response.data


def test_roles_guard_pages(client, db, login):
    artist = make_artist(db)
    login(artist)
    assert client.get("/buyers/organization").status_code == 403
    assert client.get("/admin").status_code == 403
    client.post("/accounts/logout")
    buyer = make_buyer(db)
    login(buyer)
    assert client.get("/artists/dashboard").status_code == 403
    assert client.get("/buyers/organization").status_code == 200


def test_unverified_user_sees_a_resend_button_that_sends_a_new_link(client, db, login, outbox):
    user = make_user(db, verified=False)
    login(user)
    before = len(outbox())
    response = client.post("/accounts/verify/resend")
    assert response.status_code == 302
    assert len(outbox()) == before + 1


def field_errors(html: str) -> dict[str, str]:
    """The error shown under each field, by field id."""
    return dict(re.findall(r'id="([a-z_]+)-error" role="alert">([^<]+)<', html))


def focused_field(html: str) -> str:
    (tag,) = re.findall(r"<input[^>]*\bautofocus\b[^>]*>", html)[:1]
    return re.search(r'name="([a-z_]+)"', tag).group(1)


def test_sign_up_shows_every_problem_at_once_and_focuses_the_first_wrong_field(client, db):
    make_artist(db, email="taken@example.com")
    response = signup(
        client,
        role="buyer",
        display_name="",
        email="taken@example.com",
        password="short",
        confirm="short",
    )

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    problems = field_errors(html)
    assert set(problems) == {"display_name", "email", "password", "organization_name"}
    assert "already exists" in problems["email"]
    assert "at least 10 characters" in problems["password"]
    assert focused_field(html) == "display_name"
    assert _count(db, User) == 1


def test_after_a_wrong_password_the_password_field_has_the_focus(client, db):
    html = signup(client, password="short", confirm="short").get_data(as_text=True)
    assert set(field_errors(html)) == {"password"}
    assert focused_field(html) == "password"
