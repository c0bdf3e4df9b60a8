"""URL normalisation on its own: the spellings the registry must see as one address, and the
inputs it must refuse line by line (the bulk check turns BadUrl into a per-URL error)."""

from __future__ import annotations

import pytest

from marketplace.optout.urls import BadUrl, normalize_host, normalize_url

SAME_ADDRESS = [
    ("https://WWW.Example.com:443/a?x=1#top", "www.example.com", "www.example.com/a?x=1"),
    ("www.example.com/a?x=1", "www.example.com", "www.example.com/a?x=1"),
    ("http://example.com.:80", "example.com", "example.com/"),
    ("https://example.com:8443/x", "example.com:8443", "example.com:8443/x"),
    ("https://Bücher.example./a/./b/../c?q=%7e#x", "xn--bcher-kva.example", None),
    ("http://example.com/a b", "example.com", "example.com/a%20b"),
    ("HTTP://EXAMPLE.com/%7Efoo/%41", "example.com", "example.com/%7Efoo/%41"),
    ("http://example.com?", "example.com", "example.com/"),
    ("http://0x7f.1/", "127.0.0.1", "127.0.0.1/"),
    ("http://[::1]:8080/x", "[::1]:8080", "[::1]:8080/x"),
    # As a browser reads it: the backslash ends the host, so a.example is what a crawler reaches.
    ("https://a.example\\@evil.com/", "a.example", "a.example/@evil.com/"),
    ("http://" + "a" * 63 + ".com/", "a" * 63 + ".com", "a" * 63 + ".com/"),
]


@pytest.mark.parametrize(("url", "host", "key"), SAME_ADDRESS)
def test_normalize_url_spells_each_address_one_way(url, host, key):
    normalized = normalize_url(url)
    assert normalized.host == host
    assert normalized.key == (key or "xn--bcher-kva.example/a/c?q=%7e")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/",
        "mailto:ada@example.com",
        "not a url",
        "http://example.com:99999/",
        "http://ex ample.com/",
        "http://a..b/",  # an empty label, as the idna codec refuses it
        "http://" + "a" * 64 + ".com/",  # a label over 63 characters
        # Invalid punycode: the Ada release behind can_ada refuses it, as the URL Standard's
        # UTS #46 processing does (the ada-url build we used before let it through).
        "http://xn--zz.com/",
        "http://exa\u0000mple.com/",
        "",
        "http://example.com/" + "a" * 2048,
    ],
)
def test_normalize_url_refuses_what_cannot_be_checked(url):
    with pytest.raises(BadUrl):
        normalize_url(url)


def test_normalize_host_checks_ascii_hosts_as_the_idna_codec_does():
    assert normalize_host(" Example.COM. ") == "example.com"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"
    for bad in ("", ".", "a..b", "a" * 64 + ".com", "a b.com", "a/b.com"):
        with pytest.raises(BadUrl):
            normalize_host(bad)
