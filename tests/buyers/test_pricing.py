"""The money rule: artists' shares plus the platform's share equal the charge, to the cent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.buyers import pricing

prices = st.integers(min_value=1, max_value=100_000)
items = st.lists(
    st.builds(pricing.PricedItem, price_minor=prices, licensed=st.booleans()), max_size=200
)
commissions = st.integers(min_value=0, max_value=10_000)
fees = st.integers(min_value=0, max_value=500)
minimums = st.integers(min_value=0, max_value=1_000)


@given(items, commissions, fees, minimums)
def test_artists_and_platform_shares_add_up_to_the_charge(items, commission, fee, minimum):
    free_items = [pricing.PricedItem(0, False) if not i.licensed else i for i in items]
    totals = pricing.totals(
        free_items, commission_bps=commission, handling_fee_minor=fee, minimum_charge_minor=minimum
    )
    shares = [pricing.artist_share(i.price_minor, commission) for i in free_items if i.licensed]
    assert totals.artists_minor == sum(shares)
    assert totals.artists_minor + totals.platform_minor == totals.total_minor
    assert totals.platform_minor >= 0
    assert totals.total_minor == 0 or totals.total_minor >= minimum
    for item in free_items:
        if item.licensed:
            share = pricing.artist_share(item.price_minor, commission)
            assert 0 <= share <= item.price_minor
            # Rounded down by less than a cent: the artist never loses a whole minor unit.
            exact = item.price_minor * (10_000 - commission)
            assert share * 10_000 <= exact < (share + 1) * 10_000


@given(
    st.dictionaries(st.integers(1, 50), st.integers(1, 10_000), max_size=8),
    st.integers(0, 10_000),
    st.lists(st.integers(1, 100), min_size=1, max_size=10),
)
def test_refunds_never_take_more_than_an_artist_got_and_a_full_refund_reverses_exactly(
    shares, platform, steps
):
    total = sum(shares.values()) + platform
    if total == 0:
        return
    taken: dict[int, int] = {}
    platform_taken, refunded = 0, 0
    weights = sum(steps)
    for n, step in enumerate(steps):
        last = n == len(steps) - 1
        amount = total - refunded if last else min(total - refunded, total * step // weights)
        if amount <= 0:
            continue
        parts, platform_part = pricing.refund_parts(
            shares, taken, refund_minor=amount, refunded_before=refunded, total_minor=total
        )
        assert sum(parts.values()) + platform_part == amount
        for artist, part in parts.items():
            assert part > 0
            taken[artist] = taken.get(artist, 0) + part
            assert taken[artist] <= shares[artist]
        platform_taken += platform_part
        refunded += amount
    assert refunded == total
    assert taken == {a: s for a, s in shares.items() if s}
    assert platform_taken == platform


def test_default_commission_gives_artists_eighty_percent_rounded_down():
    assert pricing.artist_share(300, 2000) == 240
    assert pricing.artist_share(5, 2000) == 4  # 4.0
    assert pricing.artist_share(7, 2000) == 5  # 5.6 rounds down; the platform keeps 2


def test_a_small_total_is_raised_to_the_card_minimum_as_its_own_line():
    totals = pricing.totals(
        [pricing.PricedItem(20, True)],
        commission_bps=2000,
        handling_fee_minor=0,
        minimum_charge_minor=50,
    )
    assert (totals.licensed_minor, totals.minimum_adjustment_minor, totals.total_minor) == (
        20,
        30,
        50,
    )
    assert totals.artists_minor == 16
    assert totals.platform_minor == 34


def test_free_items_cost_only_the_handling_fee():
    items = [pricing.PricedItem(0, False)] * 3
    assert pricing.totals(
        items, commission_bps=2000, handling_fee_minor=0, minimum_charge_minor=50
    ).free
    with_fee = pricing.totals(
        items, commission_bps=2000, handling_fee_minor=25, minimum_charge_minor=50
    )
    assert (with_fee.handling_minor, with_fee.total_minor, with_fee.artists_minor) == (75, 75, 0)


@pytest.mark.parametrize("bad", [-1, 10_001])
def test_commission_outside_basis_points_is_refused(bad):
    with pytest.raises(ValueError, match="basis points"):
        pricing.artist_share(100, bad)
