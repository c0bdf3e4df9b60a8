"""Our fast canonical encoder writes exactly what the reference RFC 8785 package writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from marketplace.ledger.canonical import (
    MAX_SAFE_INTEGER,
    NotCanonical,
    canonical_json,
    entry_bytes,
    entry_encoder,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"])), children)
    ),
    max_leaves=30,
)


@given(json_values)
def test_matches_rfc8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_sort_by_utf16_code_units_outside_the_bmp():
    # U+1F600 sorts before U+FF61 in UTF-16 (a surrogate 0xD83D) but after it by code point.
    value = {"\U0001f600": 1, "\uff61": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index(
        "\uff61".encode()
    )


def test_control_characters_are_escaped_like_es6():
    assert canonical_json({"a": '\u0001\n\t"\\/'}) == b'{"a":"\\u0001\\n\\t\\"\\\\/"}'


@pytest.mark.parametrize(
    "value", [1.5, {"a": 0.1}, [2**53], {"a": object()}, "\ud800", {1: "a"}, float("nan")]
)
def test_values_without_a_canonical_form_are_refused(value):
    with pytest.raises(NotCanonical):
        canonical_json(value)


subjects = st.dictionaries(
    st.sampled_from(["work", "artist", "order", "organization", "a", "a_b", "ab", "Z"])
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    st.integers(min_value=-(2**60), max_value=2**60),
)
payloads = st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"])), json_values)


@given(
    seq=st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
    kind=st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    log=st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    subject=subjects,
    payload=payloads,
)
def test_batch_encoder_writes_entry_bytes(seq, kind, log, subject, payload):
    stamp = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
    encode = entry_encoder(log=log, timestamp=stamp)

    def outcome(write):
        try:
            return write()
        except NotCanonical:
            return NotCanonical

    assert outcome(lambda: encode(seq, kind, subject, payload)) == outcome(
        lambda: entry_bytes(
            log=log, seq=seq, timestamp=stamp, kind=kind, subject=subject, payload=payload
        )
    )


@pytest.mark.parametrize("payload", [{"amount": 1.5}, {"n": 2**53}, {"s": "\ud800"}])
def test_batch_encoder_refuses_what_entry_bytes_refuses(payload):
    encode = entry_encoder(log="log", timestamp="2026-12-03T12:00:00.000000Z")
    with pytest.raises(NotCanonical):
        encode(0, "kind", {}, payload)
