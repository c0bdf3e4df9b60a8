"""Parsing and matching reservation files as the specs read them: no database here.

TDMRep (W3C final community group report): first matching location wins, 0 is "not reserved".
robots.txt (RFC 9309): longest match wins, Allow on a tie, `*` and a final `$`; only groups
naming AI crawlers count. ai.txt (Spawning): robots grammar, file types by extension.
"""

from __future__ import annotations

import json
import pickle
import random

import pytest
from protego import Protego

from marketplace.optout.urls import BadUrl
from marketplace.reservations.crawlers import AI_CRAWLERS
from marketplace.reservations.matching import ReservationHit, ReservationIndex
from marketplace.reservations.parsers import (
    ReservationFileError,
    ReservationKind,
    parse,
    parse_robots,
    parse_tdmrep,
)

TDMREP = ReservationKind.TDMREP
AI_TXT = ReservationKind.AI_TXT
ROBOTS = ReservationKind.ROBOTS


def index(*files: tuple[str, ReservationKind, str | bytes]) -> ReservationIndex:
    return ReservationIndex.from_rules(
        (domain, kind, parse(kind, body if isinstance(body, bytes) else body.encode()).rules)
        for domain, kind, body in files
    )


def tdmrep(*rules: dict[str, object]) -> str:
    return json.dumps(list(rules))


# --- TDMRep ---------------------------------------------------------------------------------

# Three groups of files, as in the report's own example: PDFs reserved without a policy,
# HTML reserved with one, JPEGs under /directory-b/images not reserved.
SITE = tdmrep(
    {"location": "/directory-a/", "tdm-reservation": 1},
    {
        "location": "/directory-b/html/",
        "tdm-reservation": 1,
        "tdm-policy": "https://publisher.example/policies/policy.json",
    },
    {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0},
    {"location": "/directory-b/", "tdm-reservation": 1},
)


def test_tdmrep_reserves_by_location_and_keeps_the_policy_as_evidence():
    idx = index(("publisher.example", TDMREP, SITE))
    assert idx.match("https://publisher.example/directory-a/paper.pdf") == ReservationHit(
        "tdmrep", "publisher.example", "/directory-a/", None
    )
    hit = idx.match("https://publisher.example/directory-b/html/page.html")
    assert hit is not None
    assert hit.policy_url == "https://publisher.example/policies/policy.json"
    assert idx.match("https://publisher.example/elsewhere.html") is None


def test_tdmrep_first_match_wins_so_a_zero_before_a_one_leaves_the_path_unreserved():
    idx = index(("publisher.example", TDMREP, SITE))
    # "/directory-b/" (rule 4) reserves, but rule 3 comes first and says 0 for JPEGs.
    assert idx.match("https://publisher.example/directory-b/images/cat.jpg") is None
    assert idx.match("https://publisher.example/directory-b/images/cat.png") == ReservationHit(
        "tdmrep", "publisher.example", "/directory-b/", None
    )
    # Order matters: the same rules with the reservation first reserve the JPEG.
    flipped = index(
        (
            "publisher.example",
            TDMREP,
            tdmrep(
                {"location": "/directory-b/", "tdm-reservation": 1},
                {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0},
            ),
        )
    )
    assert flipped.match("https://publisher.example/directory-b/images/cat.jpg") is not None


def test_tdmrep_wildcards_dollar_and_case_sensitive_paths():
    idx = index(
        (
            "a.example",
            TDMREP,
            tdmrep(
                {"location": "/exact/path$", "tdm-reservation": 1},
                {"location": "/*/raw/*.tif", "tdm-reservation": 1},
                {"location": "/Private", "tdm-reservation": 1},
            ),
        )
    )
    assert idx.match("http://a.example/exact/path") is not None
    assert idx.match("http://a.example/exact/path/more") is None
    assert idx.match("http://a.example/2024/raw/scan.tif") is not None
    assert idx.match("http://a.example/2024/raw/scan.tiff") is not None  # a prefix match
    assert idx.match("http://a.example/raw/scan.tif") is None  # "/*/" needs a segment
    assert idx.match("http://a.example/Private/x") is not None
    assert idx.match("http://a.example/private/x") is None


def test_tdmrep_compares_percent_encoding_as_rfc_3986_reads_it():
    rule = {"location": "/caf%c3%a9/%7Euser", "tdm-reservation": 1}
    idx = index(("a.example", TDMREP, tdmrep(rule)))
    assert idx.match("http://a.example/café/~user/pic.png") is not None
    assert idx.match("http://a.example/caf%C3%A9/%7euser/pic.png") is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"location": "/", "tdm-reservation": 1}', "JSON array"),
        (b"[1]", "Rule 1 is not a JSON object"),
        (b'[{"tdm-reservation": 1}]', "Rule 1 has no location"),
        (b'[{"location": "/", "tdm-reservation": 1}, {"location": "/"}]', "Rule 2: tdm-"),
        (b'[{"location": "/", "tdm-reservation": 2}]', "must be 1 (reserved) or 0"),
        (b'[{"location": "/", "tdm-reservation": true}]', "must be 1 (reserved) or 0"),
        (b'[{"location": "/", "tdm-reservation": "1"}]', "must be 1 (reserved) or 0"),
        (b'[{"location": "https://a.example/x", "tdm-reservation": 1}]', "starting with /"),
        (b'[{"location": "/", "tdm-reservation": 1, "tdm-policy": 5}]', "http(s) URL"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b'[{"location": "/a\\u0000b", "tdm-reservation": 1}]', "the location: "),
    ],
)
def test_malformed_tdmrep_files_are_refused_with_a_reason(body, message):
    with pytest.raises(ReservationFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tdmrep(body)


def test_an_empty_tdmrep_array_is_valid_and_reserves_nothing():
    assert parse_tdmrep(b"[]").rules == []
    assert parse_tdmrep(b"\xef\xbb\xbf[]").rules == []  # with a byte order mark


# --- robots.txt -----------------------------------------------------------------------------

ROBOTS_TXT = """\
# Search engines welcome; AI crawlers kept to /public/.
User-agent: *
Disallow: /admin/

User-agent: GPTBot
User-agent: CCBot
Disallow: /
Allow: /public/
Allow: /*.css$

User-agent: Google-Extended
Disallow: /gallery/
"""


def test_robots_groups_naming_ai_crawlers_reserve_and_the_star_group_does_not():
    idx = index(("shop.example", ROBOTS, ROBOTS_TXT))
    hit = idx.match("https://shop.example/products/1")
    assert hit == ReservationHit(
        "robots", "shop.example", "Disallow: / (User-agent: GPTBot, line 7)", None
    )
    assert idx.match("https://shop.example/public/catalog.html") is None  # longest: Allow
    assert idx.match("https://shop.example/assets/site.css") is None
    assert idx.match("https://shop.example/assets/site.css?v=2") is not None  # "$" ends it
    # /admin/ is closed to every crawler by the * group; GPTBot's own group already closes it.
    only_star = index(("blog.example", ROBOTS, "User-agent: *\nDisallow: /\n"))
    assert only_star.match("https://blog.example/post") is None


def test_a_crawler_named_in_its_own_group_follows_only_that_group():
    idx = index(
        (
            "news.example",
            ROBOTS,
            "User-agent: Google-Extended\nDisallow: /archive/\n\nUser-agent: *\nDisallow: /\n",
        )
    )
    assert idx.match("https://news.example/archive/1999") is not None
    assert idx.match("https://news.example/today") is None


def test_robots_ties_go_to_allow_and_groups_for_one_crawler_merge():
    idx = index(
        (
            "a.example",
            ROBOTS,
            "User-agent: gptbot\nDisallow: /page\n\nUser-agent: GPTBot/1.1\nAllow: /page\n"
            "Disallow: /secret\n",
        )
    )
    assert idx.match("http://a.example/page") is None  # equal length: Allow
    assert idx.match("http://a.example/secret/1") is not None  # from the second group


def test_robots_rules_without_a_group_empty_disallow_and_unknown_lines_are_skipped():
    parsed = parse_robots(
        b"Disallow: /early\nUser-agent: ClaudeBot\nDisallow:\nCrawl-delay: 5\nNonsense\n"
        b"Sitemap: https://a.example/sitemap.xml\n"
    )
    assert parsed.rules == []
    assert parsed.skipped_lines == [1, 5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!doctype html><html><body>Not found</body></html>", "HTML page"),
        (b"hello world\nthis is not a robots file\n", "No User-agent, Allow or Disallow"),
        (b"User-agent: *\x00", "binary"),
        (b"User-agent: \xe9\n", "not UTF-8"),
        (b"User-agent: " + b"x" * 300 + b"\nDisallow: /\n", "user agent is over 255"),
    ],
)
def test_malformed_robots_files_are_refused_with_a_reason(body, message):
    with pytest.raises(ReservationFileError, match=message):
        parse_robots(body)


def test_an_empty_robots_txt_is_valid_and_reserves_nothing():
    assert parse_robots(b"# nothing here\n\n").rules == []


def test_every_listed_ai_crawler_is_read_and_others_are_not():
    for crawler in sorted(AI_CRAWLERS):
        idx = index(("a.example", ROBOTS, f"User-agent: {crawler.upper()}\nDisallow: /\n"))
        assert idx.match("http://a.example/x") is not None, crawler
    assert (
        index(("a.example", ROBOTS, "User-agent: Googlebot\nDisallow: /\n")).match(
            "http://a.example/x"
        )
        is None
    )


# Differential check: on generated rules and paths, our longest-match reading of one group
# agrees with protego, a maintained robots.txt parser that implements `*` and `$` as Google
# and RFC 9309 do (urllib.robotparser does not implement wildcards at all).
_PIECES = ["/", "a", "b", "*", ".", "jpg", "x/", "$", "%41", "-"]


def _random_pattern(rng: random.Random) -> str:
    pattern = "/" + "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 5)))
    pattern = pattern.replace("$", "")  # "$" only at the end
    return pattern + ("$" if rng.random() < 0.2 else "")


def _random_path(rng: random.Random) -> str:
    pieces = ["a", "b", "/", ".jpg", "x/", "-", "A"]
    return "/" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))


def test_robots_matching_agrees_with_protego_on_generated_rules():
    rng = random.Random(15)
    compared = 0
    for _ in range(300):
        lines = [
            f"{rng.choice(['Allow', 'Disallow'])}: {_random_pattern(rng)}"
            for _ in range(rng.randint(1, 4))
        ]
        text = "User-agent: GPTBot\n" + "\n".join(lines) + "\n"
        ours = index(("a.example", ROBOTS, text))
        theirs = Protego.parse(text)
        for _ in range(10):
            path = _random_path(rng)
            reserved = ours.match(f"http://a.example{path}") is not None
            assert reserved == (not theirs.can_fetch(f"http://a.example{path}", "GPTBot")), (
                text,
                path,
            )
            compared += 1
    assert compared == 3000


# --- ai.txt ---------------------------------------------------------------------------------

# What Spawning's generator writes when images are reserved and text is not (its stray "/"
# lines included).
SPAWNING_AI_TXT = """\
# Spawning AI
/

User-agent: *
/
Disallow: *.jpg
Disallow: *.jpeg
Disallow: *.png
Allow: *.txt
Allow: /
"""


def test_ai_txt_file_types_match_by_extension_case_insensitively():
    idx = index(("art.example", AI_TXT, SPAWNING_AI_TXT))
    assert idx.match("https://art.example/uploads/IMG_0001.JPG") == ReservationHit(
        "ai.txt", "art.example", "Disallow: *.jpg (User-agent: *, line 6)", None
    )
    assert idx.match("https://art.example/a/b.png?size=large") is not None
    assert idx.match("https://art.example/a/b.jpg.html") is None  # an HTML page, not a JPEG
    assert idx.match("https://art.example/notes.txt") is None
    assert idx.match("https://art.example/about") is None


def test_ai_txt_with_everything_reserved_reserves_pages_without_an_extension():
    idx = index(("art.example", AI_TXT, "User-agent: *\nDisallow: *\nDisallow: /\n"))
    assert idx.match("https://art.example/about") is not None
    assert idx.match("https://art.example/") is not None


def test_ai_txt_a_longer_path_allow_beats_a_file_type_disallow():
    idx = index(("art.example", AI_TXT, "User-agent: *\nDisallow: *.png\nAllow: /press-kit/\n"))
    assert idx.match("https://art.example/press-kit/logo.png") is None
    assert idx.match("https://art.example/portfolio/logo.png") is not None


def test_ai_txt_named_agent_groups_count_too():
    idx = index(("art.example", AI_TXT, "User-agent: SomeNewAIBot\nDisallow: /drafts/\n"))
    assert idx.match("https://art.example/drafts/1.png") is not None


# --- Precedence, hosts, pickling ------------------------------------------------------------


def test_precedence_is_tdmrep_then_ai_txt_then_robots():
    files = [
        ("site.example", ROBOTS, "User-agent: GPTBot\nDisallow: /\n"),
        ("site.example", AI_TXT, "User-agent: *\nDisallow: /art/\n"),
        (
            "site.example",
            TDMREP,
            tdmrep(
                {
                    "location": "/art/reserved/",
                    "tdm-reservation": 1,
                    "tdm-policy": "https://site.example/p",
                },
                {"location": "/art/open/", "tdm-reservation": 0},
            ),
        ),
    ]
    idx = index(*files)
    assert idx.match("https://site.example/art/reserved/1.png").kind == "tdmrep"
    assert idx.match("https://site.example/art/other/1.png").kind == "ai.txt"
    assert idx.match("https://site.example/blog/").kind == "robots"
    # TDMRep's 0 ends TDMRep's answer; the site's ai.txt still reserves the path.
    assert idx.match("https://site.example/art/open/1.png").kind == "ai.txt"


def test_files_speak_for_their_own_host_only_with_the_registry_s_url_normalisation():
    idx = index(("www.example.com", ROBOTS, "User-agent: CCBot\nDisallow: /\n"))
    assert idx.match("HTTPS://WWW.Example.COM:443/a#frag") is not None
    assert idx.match("www.example.com/a") is not None  # a bare host/path is read as http
    assert idx.match("https://example.com/a") is None
    assert idx.match("https://cdn.www.example.com/a") is None
    with pytest.raises(BadUrl):
        idx.match("mailto:ada@example.com")


def test_the_index_survives_pickling_with_the_same_answers():
    idx = index(
        ("site.example", TDMREP, SITE.replace("publisher", "site")),
        ("site.example", ROBOTS, ROBOTS_TXT),
        ("art.example", AI_TXT, SPAWNING_AI_TXT),
    )
    copy = pickle.loads(pickle.dumps(idx))  # noqa: S301 (our own bytes)
    urls = [
        "https://site.example/directory-a/x.pdf",
        "https://site.example/directory-b/images/a.jpg",
        "https://site.example/public/a",
        "https://site.example/other",
        "https://art.example/x.png",
        "https://art.example/x.txt",
        "https://elsewhere.example/",
    ]
    assert [copy.match(u) for u in urls] == [idx.match(u) for u in urls]
    assert len(copy) == 2
    assert any(copy.match(u) for u in urls)
