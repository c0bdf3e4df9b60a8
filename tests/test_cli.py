from __future__ import annotations

from sqlalchemy import func, select

from marketplace.accounts.models import Organization, User, UserRole
from marketplace.artists.models import Work
from marketplace.catalog.models import CatalogItem
from tests.conftest import PASSWORD


def test_demo_seeds_once_and_changes_nothing_when_run_again(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    users = db.scalar(select(func.count()).select_from(User))
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert "created" not in second.output
    assert "0 new works" in second.output
    assert "stock: 0 new records" in second.output
    db.rollback()
    assert db.scalar(select(func.count()).select_from(User)) == users
    assert db.scalar(select(func.count()).select_from(Organization)) == 1
    roles = set(db.scalars(select(User.role)))
    assert roles == {UserRole.ARTIST, UserRole.BUYER, UserRole.ADMIN}
    stock = db.scalars(select(CatalogItem).where(CatalogItem.source == "cleveland")).all()
    assert len(stock) == 4
    assert all(item.has_image and item.available for item in stock)
    kinds = [w.current_terms.kind.value for w in db.scalars(select(Work))]
    assert sorted(kinds) == ["donate", "donate", "license", "license", "license", "not_available"]


def test_demo_accounts_can_log_in(app, client):
    app.test_cli_runner().invoke(args=["demo"])
    response = client.post(
        "/accounts/login", data={"email": "buyer@demo.example", "password": "demo-password-2026"}
    )
    assert response.status_code == 302


def test_demo_prints_an_admin_login_that_opens_the_admin_pages(app, client):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert "admin admin@demo.example: created" in result.output
    assert "password 'demo-password-2026'" in result.output
    response = client.post(
        "/accounts/login", data={"email": "admin@demo.example", "password": "demo-password-2026"}
    )
    assert response.status_code == 302
    assert client.get("/admin").status_code == 200


def test_create_admin_then_admin_page(app, client, db):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "--email", "root@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    again = runner.invoke(
        args=["create-admin", "--email", "root@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert again.exit_code != 0
    assert "already exists" in again.output
    client.post("/accounts/login", data={"email": "root@example.com", "password": PASSWORD})
    page = client.get("/admin")
    assert page.status_code == 200
    assert b"Administration" in page.data


def test_worker_without_redis_explains_itself(database_url, tmp_path):
    from tests.conftest import make_test_app

    app = make_test_app(database_url, tmp_path, REDIS_URL=None)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0
    assert "REDIS_URL is not set" in result.output
