from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from marketplace.accounts.models import ApiToken
from tests.factories import make_api_token, make_buyer


def test_buyer_creates_a_token_shown_once_and_stored_hashed(client, db, login):
    buyer = make_buyer(db)
    login(buyer)
    response = client.post("/accounts/tokens", data={"name": "crawler"})
    assert response.status_code == 201
    plaintext = re.search(r'data-testid="new-token">(mkt_[^<]+)<', response.get_data(as_text=True))
    assert plaintext
    token = db.scalar(select(ApiToken))
    assert token.token_sha256 == hashlib.sha256(plaintext.group(1).encode()).hexdigest()
    assert plaintext.group(1) not in client.get("/buyers/organization").get_data(as_text=True)
    api = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext.group(1)}"})
    assert api.status_code == 200
    assert api.get_json()["organization"]["id"] == buyer.organization_id


def test_revoked_token_stops_working(client, db, login):
    buyer = make_buyer(db)
    plaintext = make_api_token(db, buyer)
    token = db.scalar(select(ApiToken))
    login(buyer)
    assert client.post(f"/accounts/tokens/{token.id}/revoke").status_code == 302
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"


def test_another_organizations_token_is_not_found(client, db, login):
    owner = make_buyer(db)
    make_api_token(db, owner)
    token = db.scalar(select(ApiToken))
    stranger = make_buyer(db)
    login(stranger)
    assert client.post(f"/accounts/tokens/{token.id}/revoke").status_code == 404
    assert token.name not in client.get("/buyers/organization").get_data(as_text=True)
    db.refresh(token)
    assert token.revoked_at is None


def test_token_name_is_required(client, db, login):
    login(make_buyer(db))
    response = client.post("/accounts/tokens", data={"name": ""})
    assert response.status_code == 422
    assert db.scalar(select(ApiToken)) is None


def test_owner_regenerates_the_join_code_and_members_cannot(client, db, login):
    owner = make_buyer(db)
    old_code = owner.organization.join_code
    member = make_buyer(db, join_code=old_code)
    login(member)
    assert client.post("/buyers/organization/join-code").status_code == 403
    client.post("/accounts/logout")
    login(owner)
    assert client.post("/buyers/organization/join-code").status_code == 302
    db.refresh(owner.organization)
    assert owner.organization.join_code != old_code
