"""The upload's own limits: a manifest may exceed the app-wide request limit up to
COMPLIANCE_UPLOAD_MAX_BYTES, and the page's form is CSRF-protected."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from marketplace.compliance.models import ComplianceCheck
from tests.conftest import PASSWORD
from tests.factories import make_api_token, make_buyer


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "MAX_CONTENT_LENGTH": 2_000,
        "COMPLIANCE_UPLOAD_MAX_BYTES": 50_000,
        "WTF_CSRF_ENABLED": True,
    }


def _manifest(rows: int) -> bytes:
    return b"url\n" + b"".join(b"https://a.example/%d.jpg\n" % n for n in range(rows))


def test_a_manifest_larger_than_other_uploads_is_accepted_up_to_its_own_limit(client, db):
    token = make_api_token(db, make_buyer(db))
    headers = {"Authorization": f"Bearer {token}"}
    fits = _manifest(1_000)  # ~27 KB: over MAX_CONTENT_LENGTH, under the compliance limit
    response = client.post(
        "/api/v1/compliance/checks",
        data={"manifest": (io.BytesIO(fits), "m.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    too_big = client.post(
        "/api/v1/compliance/checks",
        data={"manifest": (io.BytesIO(_manifest(3_000)), "m.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"]
    assert db.scalar(select(func.count()).select_from(ComplianceCheck)) == 1


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_the_upload_form_needs_its_csrf_token(client, db):
    buyer = make_buyer(db)
    token = _csrf(client.get("/accounts/login").get_data(as_text=True))
    logged_in = client.post(
        "/accounts/login", data={"csrf_token": token, "email": buyer.email, "password": PASSWORD}
    )
    assert logged_in.status_code == 302

    refused = client.post(
        "/compliance",
        data={"manifest": (io.BytesIO(_manifest(2)), "m.csv")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    assert db.scalar(select(func.count()).select_from(ComplianceCheck)) == 0

    token = _csrf(client.get("/compliance").get_data(as_text=True))
    accepted = client.post(
        "/compliance",
        data={"csrf_token": token, "manifest": (io.BytesIO(_manifest(2)), "m.csv")},
        content_type="multipart/form-data",
    )
    assert accepted.status_code == 302
    assert db.scalar(select(func.count()).select_from(ComplianceCheck)) == 1
