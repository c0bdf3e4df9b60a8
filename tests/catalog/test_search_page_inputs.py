"""The catalog page reads what people and their links send it: the page's own radio buttons,
a newsletter's tracking tags, numbers typed with odd digits."""

from __future__ import annotations

import re

import pytest

from tests.buyers.support import DONATE, work_item
from tests.factories import make_artist


@pytest.fixture
def catalog(db, run_jobs):
    artist = make_artist(db)
    work_item(db, artist, DONATE, title="Harbour at dusk")
    run_jobs()


@pytest.mark.parametrize("value", ["true", "false", "1", "yes", "TRUE"])
def test_the_has_image_filter_answers_and_checks_its_button(client, catalog, value):
    response = client.get("/catalog", query_string={"has_image": value})
    assert response.status_code == 200
    chosen = "true" if value.lower() in ("true", "1", "yes") else "false"
    page = response.get_data(True)
    button = re.search(
        rf'type="radio" id="f-has_image-\d+" name="has_image" value="{chosen}"[^>]*', page
    )
    if button:  # offered when some work has that value
        assert button[0].endswith("checked")
    else:
        assert chosen == "false"  # every work here has its image


@pytest.mark.parametrize("tag", ["utm_source", "fbclid", "gclid"])
def test_tracking_tags_on_a_shared_link_do_not_fail_the_page(client, catalog, tag):
    response = client.get("/catalog", query_string={"q": "harbour", tag: "newsletter"})
    assert response.status_code == 200
    assert "Harbour at dusk" in response.get_data(True)


@pytest.mark.parametrize(
    "typed", ["5_0", "\u0661\u0668\u0663\u0660", "\uff11\uff18\uff13\uff10", "+-5", "1e3"]
)
def test_years_are_ascii_digits_only(client, catalog, typed):
    """`int()` reads "5_0" as 50 and Arabic-Indic or full-width digits as numbers: the class
    of "2,50" becoming 250. The field says what is wrong; the rest of the page stays."""
    response = client.get("/catalog", query_string={"q": "harbour", "year_from": typed})
    assert response.status_code == 400
    page = response.get_data(True)
    assert "From year must be a whole number" in page
    assert "Harbour at dusk" in page


def test_a_negative_year_is_still_a_year(client, catalog):
    assert client.get("/catalog", query_string={"year_from": "-500"}).status_code == 200
