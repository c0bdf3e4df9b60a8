"""Source adapters on the real samples (counts from the samples' README) and hand-made cases."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections import Counter

import pytest

from marketplace.catalog.sources import ADAPTERS, get_adapter
from marketplace.catalog.sources.base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from tests.catalog.sources_support import FIXTURES, labelled, mapped, outcomes, shared_data, tally

# --- Registry ----------------------------------------------------------------------------------


def test_every_source_is_registered_under_its_own_name():
    assert sorted(ADAPTERS) == ["aic", "cleveland", "cmoa", "met", "smithsonian", "tate"]
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name
        assert get_adapter(name) is adapter
        assert adapter.institution


def test_an_unknown_source_is_a_key_error_naming_the_known_ones():
    with pytest.raises(KeyError, match="known sources: aic, cleveland, cmoa, met, smithsonian"):
        get_adapter("louvre")


# --- The real samples --------------------------------------------------------------------------

SAMPLES = {
    "tate": (["tate_artworks.jsonl"], {"skipped: not open access": 3000}),
    # The README counts 3,000 not open; 13 of them also have a null title, and a broken record
    # is reported as such before its licence is considered.
    "cmoa": (
        ["cmoa_objects.jsonl"],
        {"skipped: not open access": 2987, "malformed: missing title": 13},
    ),
    "aic": (["aic_artworks.jsonl"], {"mapped": 10}),
    "cleveland": (
        [
            "api_samples/clevelandmuseum/handle_response_data.json",
            "api_samples/clevelandmuseum/response_success.json",
        ],
        {"mapped": 101},
    ),
    "met": (
        [
            "api_samples/metropolitan_museum_of_art/sample_response.json",
            "api_samples/metropolitan_museum_of_art/sample_response_without_additional.json",
        ],
        {"mapped": 2},
    ),
    "smithsonian": (
        [
            "api_samples/smithsonian/actual_record_data.json",
            "api_samples/smithsonian/sub_provider_example.json",
        ],
        {"mapped": 2},
    ),
}


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_sample_counts_match_the_readme(source):
    data = shared_data()
    files, expected = SAMPLES[source]
    assert tally(outcomes(get_adapter(source), *(data / f for f in files))) == Counter(expected)


@pytest.mark.parametrize("source", ["aic", "cleveland", "met", "smithsonian"])
def test_mapped_samples_are_cc0_with_images_and_plain_json(source):
    data = shared_data()
    files, _ = SAMPLES[source]
    for fields in mapped(get_adapter(source), *(data / f for f in files)).values():
        assert fields.rights_uri == CC0_URI
        assert fields.rights_statement
        assert fields.image_urls
        assert all(url.startswith(("https://", "http://")) for url in fields.image_urls)
        assert fields.page_url.startswith(("https://", "http://"))
        assert fields.institution
        json.dumps(fields.raw, allow_nan=False)  # storable as JSON


def test_cmoa_records_without_a_title_are_reported_by_line():
    data = shared_data()
    broken = [
        line
        for line, outcome in outcomes(get_adapter("cmoa"), data / "cmoa_objects.jsonl")
        if isinstance(outcome, Malformed)
    ]
    assert broken == [615, 749, 865, 1036, 1212, 1302, 1571, 1687, 2005, 2272, 2655, 2664, 2999]


def test_cleveland_thomas_cole():
    data = shared_data()
    records = mapped(
        get_adapter("cleveland"), data / "api_samples/clevelandmuseum/handle_response_data.json"
    )
    cole = records["93014"]
    assert cole.title == "View of Schroon Mountain, Essex County, New York, After a Storm"
    assert cole.creator == "Thomas Cole (American, 1801-1848)"
    assert (cole.date_text, cole.year_start, cole.year_end) == ("1838", 1838, 1838)
    assert cole.medium == "oil on canvas"
    assert cole.dimensions.startswith("Framed: 132.5 x 193.5 x 13 cm")
    assert cole.page_url == "https://clevelandart.org/art/1335.1917"
    assert cole.image_urls == (
        "https://openaccess-cdn.clevelandart.org/1335.1917/1335.1917_print.jpg",
        "https://openaccess-cdn.clevelandart.org/1335.1917/1335.1917_web.jpg",
    )
    assert cole.institution == "Cleveland Museum of Art"
    assert cole.description.startswith("Championing the unspoiled American wilderness")
    # type, culture and department: "American painting" finds it
    assert cole.tags == ("Painting", "America, 19th century", "American Painting and Sculpture")
    assert cole.raw["accession_number"] == "1335.1917"
    assert cole.raw["images"]["full"]["url"].endswith("_full.tif")  # kept in raw, not offered


def test_cleveland_bc_dates_become_negative_years_and_html_is_stripped():
    data = shared_data()
    records = mapped(
        get_adapter("cleveland"), data / "api_samples/clevelandmuseum/handle_response_data.json"
    )
    assert (records["124135"].year_start, records["124135"].year_end) == (-400, -375)
    assert (records["130133"].year_start, records["130133"].year_end) == (-1391, -1353)
    assert "<em>" not in records["123168"].description
    assert "The Call belongs to a series" in records["123168"].description
    scent_bottle = mapped(
        get_adapter("cleveland"), data / "api_samples/clevelandmuseum/response_success.json"
    )["96887"]
    assert (scent_bottle.title, scent_bottle.year_start, scent_bottle.year_end) == (
        "Scent Bottle",
        1700,
        1799,
    )


def test_aic_records_build_iiif_urls_and_drop_the_cc_by_description():
    data = shared_data()
    records = mapped(get_adapter("aic"), data / "aic_artworks.jsonl")
    assert sorted(records, key=int) == ["4", "9", "11", "16", "19", "20", "22", "23", "24", "25"]
    print_ = records["25"]
    assert print_.title == "Jeronimo de Bran"
    assert print_.creator == "Lucas Emil Vorsterman"
    assert (print_.date_text, print_.year_start, print_.year_end) == ("c. 1615\u201375", 1615, 1675)
    assert print_.page_url == "https://www.artic.edu/artworks/25"
    base = "https://www.artic.edu/iiif/2/b9be1be9-e78e-1681-723d-197d7983b23b/full"
    assert print_.image_urls == (f"{base}/1686,/0/default.jpg", f"{base}/843,/0/default.jpg")
    small = records["4"]  # 557 px wide: no 1686 px version
    assert small.image_urls == (
        "https://www.artic.edu/iiif/2/1753b638-d4fb-8e45-3db9-92dde7f053da/full/843,/0/default.jpg",
    )
    assert (small.date_text, small.year_start, small.year_end) == ("n.d.", 1865, 1880)
    self_portrait = records["11"]  # one alternative view
    assert self_portrait.image_urls[-1].startswith(
        "https://www.artic.edu/iiif/2/3b212d9c-cac1-d846-367d-68ca6cd6c74f/"
    )
    giants = records["16"]  # has a (CC BY) description at source
    assert giants.description == ""
    assert "description" not in giants.raw
    assert giants.raw["main_reference_number"] == "1887.249"


def test_met_objects():
    data = shared_data()
    folder = data / "api_samples/metropolitan_museum_of_art"
    records = mapped(get_adapter("met"), *sorted(folder.glob("*.json")))
    quail = records["45734"]
    assert quail.title == "Quail and Millet"
    assert quail.creator == "Kiyohara Yukinobu"
    assert (quail.date_text, quail.year_start, quail.year_end) == ("late 17th century", 1667, 1682)
    assert quail.image_urls == (
        "https://images.metmuseum.org/CRDImages/as/original/DP251139.jpg",
        "https://images.metmuseum.org/CRDImages/as/original/DP251138.jpg",
        "https://images.metmuseum.org/CRDImages/as/original/DP251120.jpg",
    )
    # recorded on the staging host; we link the public one
    assert quail.page_url == "https://www.metmuseum.org/art/collection/search/45734"
    # the Met's subject tags, then what the object is and where and when it was made
    assert quail.tags == (
        "Birds",
        "Leaves",
        "Hanging scroll",
        "Paintings",
        "Japan",
        "Edo period (1615\u20131868)",
        "Asian Art",
    )
    assert quail.institution == "The Metropolitan Museum of Art"
    cover = records["47533"]
    assert (cover.creator, cover.date_text) == ("", "")
    # no subject tags, but its culture and classification make it a Chinese ceramic
    assert cover.tags == (
        "Cover",
        "Ceramics",
        "China",
        "Qing dynasty (1644\u20131911), Kangxi period (1662\u20131722)",
        "Asian Art",
    )
    assert (cover.year_start, cover.year_end) == (1662, 1722)
    assert len(cover.image_urls) == 1


def test_aic_tags_hold_subjects_terms_type_department_and_origin():
    records = mapped(get_adapter("aic"), shared_data() / "aic_artworks.jsonl")
    # classification, subject and style titles, then the AAT terms not already there, then
    # type (here the same word as "painting": kept once), department and place of origin
    assert records["9"].tags == (
        "painting",
        "american arts",
        "interiors",
        "architecture",
        "religion",
        "Venice, Italy",
        "churches",
        "cathedrals",
        "oil paint (paint)",
        "organic material",
        "Arts of the Americas",
        "Munich",
    )
    assert records["20"].tags == (
        "etching",
        "print",
        "prints and drawing",
        "19th century",
        "paper (fiber product)",
        "Prints and Drawings",
        "France",
    )


def test_smithsonian_rows():
    data = shared_data()
    folder = data / "api_samples/smithsonian"
    records = mapped(get_adapter("smithsonian"), *sorted(folder.glob("*.json")))
    bird = records["nmnhvz_14800560"]
    assert bird.title == "Passerculus sandwichensis nevadensis"
    assert bird.institution == "Smithsonian Institution (NMNHBIRDS)"
    assert bird.page_url == "http://n2t.net/ark:/65665/34857ca78-9195-4156-849b-1ec47f7cd1ce"
    assert bird.image_urls == ("https://collections.nmnh.si.edu/media/?irn=15814382",)
    assert (bird.year_start, bird.year_end) == (1958, 1958)
    assert bird.creator == "Seymour H. Levy (collector)"
    elephant = records["siris_arc_291918"]
    assert elephant.institution == "Smithsonian Institution (SIA)"
    assert elephant.page_url == (
        "https://collections.si.edu/search/detail/edanmdm:siris_arc_291918"
    )
    assert elephant.creator == "Gruber, Martin A"  # the Zoo is the subject, not a creator
    assert (elephant.date_text, elephant.year_start, elephant.year_end) == (
        "1919; C. 1920-1924",
        1919,
        1924,
    )
    assert elephant.tags == ("Animals", "Archival materials", "Photographs")
    # a specimen is found by its common name and where it was collected
    assert bird.tags == (
        "Animals",
        "Birds",
        "Savannah Sparrow",
        "Savannah Sparrow (Ipswich)",
        "United States",
        "Pinal",
        "North America",
        "Arizona",
    )


# --- Hand-made cases ---------------------------------------------------------------------------


def test_tate_cases():
    assert labelled(get_adapter("tate"), FIXTURES / "tate/cases.jsonl") == [
        (1, "skipped: not open access"),
        (2, "malformed: missing title"),
        (3, "malformed: invalid JSON"),
        (5, "malformed: broken encoding"),
        (6, "skipped: not open access"),  # an unreadable year never makes a record malformed
        (7, "malformed: not an object"),
        (8, "malformed: invalid JSON"),
        (9, "skipped: not open access"),
        (10, "malformed: missing id"),
    ]


def test_tate_metadata_is_described_with_its_subjects_though_never_offered():
    adapter = get_adapter("tate")
    blake = next(
        item
        for item in adapter.read(shared_data() / "tate_artworks.jsonl")
        if isinstance(item, RawRecord) and item.data["acno"] == "A00005"
    )
    assert adapter.map(blake) == Skipped("not open access", "A00005")
    fields = adapter.describe(blake)
    assert isinstance(fields, StockFields)
    assert fields.source_id == "A00005"
    assert fields.title.startswith("The Circle of the Lustful")
    assert fields.creator == "William Blake"
    assert (fields.year_start, fields.year_end) == (1826, 1827)
    assert fields.medium == "Line engraving on paper"
    assert (fields.image_urls, fields.rights_uri) == ((), "")  # Tate's images are not open
    # The subject tree below its broad areas (groups, then leaves), and the kind of work
    # without "on paper": "river", "woman" and "print" find it.
    assert fields.tags[:4] == ("characters", "Dante", "Francesca da Rimini", "Paolo da Rimini")
    assert {"river", "woman", "nudes", "love", "print"} <= set(fields.tags)
    assert not {"subject", "nature", "people", "on paper"} & set(fields.tags)


def test_tate_subject_qualifiers_and_unique_works_are_tidied():
    record = RawRecord(
        1,
        {
            "acno": "T1",
            "title": "A dog",
            "all_artists": "Jane Doe",
            "contributors": [],
            "classification": "on paper, unique",
            "movements": [{"id": 1, "name": "Pre-Raphaelite"}],
            "subjects": {
                "name": "subject",
                "children": [
                    {
                        "name": "nature",
                        "children": [
                            {
                                "name": "animals: mammals",
                                "children": [{"name": "dog - non-specific"}],
                            }
                        ],
                    }
                ],
            },
        },
    )
    fields = get_adapter("tate").describe(record)
    assert isinstance(fields, StockFields)
    assert fields.creator == "Jane Doe"  # no contributors: the display string
    assert fields.tags == ("animals: mammals", "dog", "Pre-Raphaelite")


def test_tate_describe_reports_a_broken_record_as_map_does():
    record = RawRecord(4, {"acno": "T1", "title": ""})
    assert get_adapter("tate").describe(record) == Malformed(4, "missing title")


def test_cmoa_metadata_is_described_with_classification_department_and_nationality():
    adapter = get_adapter("cmoa")
    guanyin = next(
        item
        for item in adapter.read(shared_data() / "cmoa_objects.jsonl")
        if isinstance(item, RawRecord) and item.data["title"] == "Guanyin"
    )
    assert isinstance(adapter.map(guanyin), Skipped)
    fields = adapter.describe(guanyin)
    assert isinstance(fields, StockFields)
    assert (fields.creator, fields.medium) == ("unknown Chinese", "porcelain")
    assert fields.tags == ("Ceramics", "Decorative Arts and Design", "Chinese")
    assert fields.page_url.startswith("http://collection.cmoa.org/")
    assert (fields.image_urls, fields.rights_uri) == ((), "")
    broken = RawRecord(2, {"title": None, "id": "cmoa:things/x"})
    assert adapter.describe(broken) == Malformed(2, "missing title")


def test_cmoa_cases():
    assert labelled(get_adapter("cmoa"), FIXTURES / "cmoa/cases.jsonl") == [
        (1, "skipped: not open access"),
        (2, "malformed: missing title"),
        (3, "skipped: not open access"),
        (4, "skipped: not open access"),  # an unreadable year never makes a record malformed
        (5, "malformed: missing id"),
    ]


def test_aic_cases():
    adapter = get_adapter("aic")
    path = FIXTURES / "aic/artworks.jsonl"
    assert labelled(adapter, path) == [
        (1, "mapped"),
        (2, "skipped: not open access"),
        (3, "skipped: no image URL"),
        (4, "malformed: missing title"),
        (5, "mapped"),  # "c. 1850" is no structured year: the date text gives the years
        (6, "mapped"),
    ]
    records = mapped(adapter, path)
    assert (records["105"].year_start, records["105"].year_end) == (1850, 1855)
    harbour = records["101"]
    assert harbour.image_urls == (
        "https://www.artic.edu/iiif/2/00000000-aaaa-bbbb-cccc-000000000101/full/1686,/0/default.jpg",
        "https://www.artic.edu/iiif/2/00000000-aaaa-bbbb-cccc-000000000101/full/843,/0/default.jpg",
    )
    assert harbour.description == ""
    assert "description" not in harbour.raw
    assert harbour.tags == ("painting", "harbors")
    undated = records["106"]
    assert undated.creator == "Jane Doe"  # first line of artist_display
    assert (undated.year_start, undated.year_end) == (None, None)
    assert undated.image_urls == (
        "https://www.artic.edu/iiif/2/00000000-aaaa-bbbb-cccc-000000000101/full/843,/0/default.jpg",
        "https://www.artic.edu/iiif/2/00000000-aaaa-bbbb-cccc-000000000999/full/843,/0/default.jpg",
    )


def test_aic_takes_the_iiif_base_from_the_config_beside_the_file():
    fields = mapped(get_adapter("aic"), FIXTURES / "aic/with_config/artworks.jsonl")["101"]
    assert fields.image_urls[0].startswith("https://iiif.example.org/iiif/2/00000000-aaaa-")


def test_aic_falls_back_to_the_default_base_when_the_config_is_broken(caplog):
    with caplog.at_level(logging.WARNING):
        fields = mapped(get_adapter("aic"), FIXTURES / "aic/broken_config/artworks.jsonl")["101"]
    assert fields.image_urls[0].startswith("https://www.artic.edu/iiif/2/")
    assert "unreadable" in caplog.text


def test_aic_maps_a_plain_raw_record_with_the_default_base():
    line = (FIXTURES / "aic/artworks.jsonl").read_text(encoding="utf-8").splitlines()[0]
    fields = get_adapter("aic").map(RawRecord(1, json.loads(line)))
    assert isinstance(fields, StockFields)
    assert fields.image_urls[-1].startswith("https://www.artic.edu/iiif/2/")


def test_aic_accepts_an_api_response_envelope():
    assert list(mapped(get_adapter("aic"), FIXTURES / "aic/response.json")) == ["107"]


def test_cleveland_cases():
    adapter = get_adapter("cleveland")
    path = FIXTURES / "cleveland/cases.jsonl"
    assert labelled(adapter, path) == [
        (1, "skipped: not open access"),
        (2, "skipped: no image URL"),
        (3, "skipped: no image URL"),  # the full-size TIFF alone is not offered
        (4, "mapped"),
        (5, "malformed: missing title"),
        (6, "mapped"),  # "c. 1800" is no structured year: the date text gives the years
        (7, "mapped"),
        (8, "mapped"),
    ]
    records = mapped(adapter, path)
    assert records["14"].image_urls == (
        "https://openaccess-cdn.clevelandart.org/1911.4/1911.4_web.jpg",
    )
    assert records["14"].description == "A portrait of a friend & fellow artist."
    assert (records["16"].year_start, records["16"].year_end) == (1765, 1765)
    assert (records["17"].year_start, records["17"].year_end) == (-400, -375)
    assert (records["18"].year_start, records["18"].year_end) == (1700, 1799)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("response.json", [(1, "1"), (2, "2")]),  # envelope, "info" before "data"
        ("record.json", [(1, "1")]),  # a single record, pretty-printed
        ("records_list.json", [(1, "1"), (2, "2")]),  # a bare array
        ("records.jsonl", [(1, "1"), (2, "2")]),  # JSON Lines of records
        ("responses.jsonl", [(1, "1"), (1, "2"), (2, "3"), (2, "4")]),  # JSON Lines of responses
    ],
)
def test_cleveland_reads_every_layout(fixture, expected):
    adapter = get_adapter("cleveland")
    got = [
        (line, outcome.source_id)
        for line, outcome in outcomes(adapter, FIXTURES / "cleveland" / fixture)
        if isinstance(outcome, StockFields)
    ]
    assert got == expected


def test_cleveland_truncated_response_keeps_what_came_before_the_break():
    assert labelled(get_adapter("cleveland"), FIXTURES / "cleveland/truncated.json") == [
        (1, "mapped"),
        (2, "malformed: invalid JSON"),
    ]


def test_met_object_cases():
    adapter = get_adapter("met")
    assert labelled(adapter, FIXTURES / "met/objects.jsonl") == [
        (1, "mapped"),
        (2, "skipped: not open access"),
        (3, "skipped: no image URL"),
        (4, "malformed: missing title"),
        (5, "mapped"),  # an unreadable structured year: the date text gives the years
        (6, "mapped"),
    ]
    bce = mapped(adapter, FIXTURES / "met/objects.jsonl")["507"]
    assert (bce.year_start, bce.year_end) == (-300, -200)


def test_met_single_object_and_list_files():
    adapter = get_adapter("met")
    single = mapped(adapter, FIXTURES / "met/object.json")["501"]
    assert single.page_url == "https://www.metmuseum.org/art/collection/search/501"
    assert single.image_urls == (
        "https://images.metmuseum.org/CRDImages/ep/original/DT501.jpg",
        "https://images.metmuseum.org/CRDImages/ep/original/DT501a.jpg",
    )
    assert single.tags == ("Landscapes",)
    assert list(mapped(adapter, FIXTURES / "met/objects_list.json")) == ["508", "509"]


def test_met_bulk_csv_has_no_image_column_so_open_rows_are_skipped():
    assert labelled(get_adapter("met"), FIXTURES / "met/MetObjects.csv") == [
        (2, "skipped: no image URL"),
        (3, "skipped: not open access"),
        (4, "skipped: no image URL"),  # a quoted field spanning lines 4 and 5
        (6, "malformed: missing title"),
        (7, "skipped: no image URL"),  # "ca. 1853" as Object Begin Date: text used
        (8, "malformed: wrong column set"),
        (9, "malformed: broken encoding"),
        (10, "skipped: no image URL"),
    ]


def test_met_csv_with_an_image_column_maps_its_rows():
    adapter = get_adapter("met")
    path = FIXTURES / "met/MetObjects_with_images.csv"
    assert labelled(adapter, path) == [(2, "mapped"), (3, "skipped: no image URL")]
    coin = mapped(adapter, path)["9"]
    assert coin.title == "Coin with a picture"
    assert coin.creator == "James Barton Longacre; Jane Doe"
    assert (coin.date_text, coin.year_start, coin.year_end) == ("1853", 1853, 1853)
    assert coin.image_urls == ("https://images.metmuseum.org/CRDImages/ad/original/DP9.jpg",)
    # the Met's tags, then object name, classification and department
    assert coin.tags == ("Coins", "Birds", "Coin", "Metal", "The American Wing")
    assert coin.raw["Object Number"] == "1979.486.1"  # the BOM is not part of the first column


def test_met_csv_without_the_required_columns_is_one_problem():
    assert labelled(get_adapter("met"), FIXTURES / "met/MetObjects_missing_columns.csv") == [
        (1, "malformed: missing columns: Object ID, Is Public Domain, Title"),
    ]


def test_met_detects_csv_by_content_when_the_name_says_nothing():
    assert labelled(get_adapter("met"), FIXTURES / "met/export") == [(2, "skipped: no image URL")]


def test_smithsonian_cases():
    adapter = get_adapter("smithsonian")
    path = FIXTURES / "smithsonian/rows.jsonl"
    assert labelled(adapter, path) == [
        (1, "mapped"),
        (2, "skipped: not open access"),  # the record is not CC0
        (3, "skipped: not open access"),  # its only image is not CC0
        (4, "skipped: no image URL"),  # a sound recording
        (5, "malformed: missing title"),
        (6, "mapped"),  # a search response on one line
    ]
    toy = mapped(adapter, path)["nmah_1"]
    assert toy.creator == "Jane Doe"
    assert (toy.medium, toy.dimensions, toy.description) == ("tin", "5 x 7 cm", "A tin toy horse.")
    assert (toy.year_start, toy.year_end) == (1890, 1890)
    assert toy.page_url == "https://collections.si.edu/search/detail/edanmdm:nmah_1"
    assert list(mapped(adapter, FIXTURES / "smithsonian/rows.json")) == ["nmah_7", "nmah_8"]


def test_every_artist_of_a_multi_artist_work_is_kept():
    aic = get_adapter("aic").map(
        RawRecord(
            1,
            {
                "id": 77,
                "title": "Joint work",
                "is_public_domain": True,
                "image_id": "abc",
                "artist_display": "Ann Lee\nand Bo Chen",
                "artist_title": "Ann Lee",
                "artist_titles": ["Ann Lee", "Bo Chen"],
            },
        )
    )
    assert isinstance(aic, StockFields)
    assert aic.creator == "Ann Lee; Bo Chen"
    met = get_adapter("met").map(
        RawRecord(
            1,
            {
                "objectID": 78,
                "title": "Joint print",
                "isPublicDomain": True,
                "primaryImage": "https://images.metmuseum.org/x.jpg",
                "artistDisplayName": "Ann Lee",
                "constituents": [
                    {"name": "Ann Lee", "role": "Artist"},
                    {"name": "Bo Chen", "role": "Artist"},
                    {"name": "Print House", "role": "Publisher"},
                ],
            },
        )
    )
    assert isinstance(met, StockFields)
    assert met.creator == "Ann Lee; Bo Chen; Print House (Publisher)"


def test_cleveland_bulk_csv_export_is_read():
    adapter = get_adapter("cleveland")
    path = FIXTURES / "cleveland/data.csv"
    assert labelled(adapter, path) == [
        (2, "mapped"),  # a label spanning lines 2-3
        (4, "mapped"),
        (5, "skipped: not open access"),
        (6, "skipped: no image URL"),  # the full-size TIFF alone is not offered
    ]
    records = mapped(adapter, path)
    river = records["91"]
    assert river.creator == "Jane Doe (American, 1801-1870); Bo Chen (American, 1810-1880)"
    assert river.image_urls == (
        "https://cdn.example/91_print.jpg",
        "https://cdn.example/91_web.jpg",
    )
    assert (river.year_start, river.year_end) == (1851, 1851)
    assert river.tags == ("Painting", "America, 19th century")
    assert river.description == "A river. Two lines of label."
    assert river.raw["creators"].startswith('[{"description"')  # the row as read
    literal = records["92"]
    assert literal.creator == "Ann Lee (British)"
    assert (literal.year_start, literal.year_end) == (1700, 1700)
    assert literal.tags == ("Drawing", "Britain")


def test_cleveland_csv_and_json_of_the_same_records_map_alike(tmp_path):
    """Real API records, written out as the CSV export lays them: the same catalog fields."""
    adapter = get_adapter("cleveland")
    source = shared_data() / "api_samples/clevelandmuseum/handle_response_data.json"
    from_json = mapped(adapter, source)
    records = json.loads(source.read_text(encoding="utf-8"))["data"]
    columns = sorted({key for record in records for key in record if key != "images"})
    path = tmp_path / "data.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*columns, "image_web", "image_print", "image_full"])
        for record in records:
            images = record.get("images") or {}
            writer.writerow(
                [_csv_cell(record.get(column)) for column in columns]
                + [(images.get(size) or {}).get("url", "") for size in ("web", "print", "full")]
            )
    from_csv = mapped(adapter, path)
    assert len(from_csv) == len(from_json) == 100
    for source_id, fields in from_json.items():
        other = from_csv[source_id]
        # The CSV states no image sizes, and keeps its own row as raw.
        expected = dataclasses.replace(fields, image_width=None, image_height=None, raw={})
        assert dataclasses.replace(other, raw={}) == expected


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
