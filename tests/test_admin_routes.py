"""Every administrator's route, found in the URL map (so a new one is covered the day it is
added): not for visitors (log in), not for artists or buyers (403)."""

from __future__ import annotations

import pytest
from flask import url_for
from werkzeug.routing import AnyConverter

from tests.factories import make_artist, make_buyer


def admin_requests(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        values = {}
        for name, converter in rule._converters.items():
            if isinstance(converter, AnyConverter):
                values[name] = sorted(converter.items)[0]
            else:
                values[name] = 1
        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


def test_the_url_map_has_admin_routes(app):
    assert len(list(admin_requests(app))) >= 8


@pytest.mark.parametrize("who", ["visitor", "artist", "buyer"])
def test_no_admin_route_answers_anyone_but_an_administrator(app, client, db, login, who):
    if who == "artist":
        login(make_artist(db))
    elif who == "buyer":
        login(make_buyer(db))
    for method, url in admin_requests(app):
        response = client.open(url, method=method)
        if who == "visitor":
            assert response.status_code in (302, 401), (method, url)
            if response.status_code == 302:
                assert "/accounts/login" in response.headers["Location"], (method, url)
        else:
            assert response.status_code in (403, 404), (method, url, response.status_code)
