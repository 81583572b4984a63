"""The simulator's local shock: one county (admin2 area) and its neighbours, smaller than any
region, with the accounts in those areas as the worker's region lookup places them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest

from core.geo import haversine_array_km
from monitor.regions import admin_area
from simulator import Shock, default_shock, generate_company, generate_events, local_shock
from simulator.company import admin2_of
from simulator.truth import is_shocked


@pytest.fixture(scope="module")
def company():
    return generate_company(seed=7, n_accounts=800)


@pytest.fixture(scope="module")
def shock(company):
    return local_shock(company)


def test_a_local_shock_is_a_few_neighbouring_counties_of_one_region(company, shock):
    hit = shock.covers(company.accounts)
    potential = np.array([a.true_potential for a in company.accounts])
    in_region = np.array([a.region == shock.region for a in company.accounts])
    share = potential[hit].sum() / potential.sum()
    assert 0.05 <= share <= 0.15
    assert potential[hit].sum() <= 0.5 * potential[in_region].sum()  # smaller than its region
    assert shock.areas and all(area.startswith(f"{company.country}-{shock.region}-") for area in shock.areas)
    # Exactly the accounts the worker's lookup puts in those counties.
    assert {a.account_id for a, h in zip(company.accounts, hit) if h} == {
        a.account_id for a in company.accounts if admin_area(a.lat, a.lon).admin2 in shock.areas
    }
    # Neighbours: every shocked account lies within 60 km of the shocked accounts' centre.
    lat = np.array([a.lat for a in company.accounts])[hit]
    lon = np.array([a.lon for a in company.accounts])[hit]
    centre = np.average(lat, weights=potential[hit]), np.average(lon, weights=potential[hit])
    assert haversine_array_km(lat, lon, *centre).max() < 60.0
    assert shock.start == datetime(2025, 3, 15, tzinfo=timezone.utc) and shock.factor == pytest.approx(0.7)


def test_a_larger_local_shock_takes_more_neighbours(company, shock):
    larger = local_shock(company, min_share=0.12)
    potential = np.array([a.true_potential for a in company.accounts])
    assert len(larger.areas) > len(shock.areas)
    assert 0.12 <= potential[larger.covers(company.accounts)].sum() / potential.sum() <= 0.15


def test_the_ground_truth_agrees_with_the_events_on_who_is_shocked(company, shock):
    hit = shock.covers(company.accounts)
    assert [is_shocked(a, shock) for a in company.accounts] == hit.tolist()


def test_only_the_shocked_counties_buy_less(company, shock):
    events = generate_events(company, months=24, shock=shock, seed=7)
    hit = {a.account_id for a, h in zip(company.accounts, shock.covers(company.accounts)) if h}
    same_region = {a.account_id for a in company.accounts if a.region == shock.region} - hit
    orders: dict[tuple[str, str], int] = defaultdict(int)
    for _, _, envelope in events:
        if envelope["type"] == "order.placed":
            account = envelope["data"]["account_id"]
            group = "shocked" if account in hit else "region" if account in same_region else "rest"
            orders[(group, envelope["occurred_at"][:4])] += 1

    def ratio(group: str) -> float:  # 2025 (shocked from mid-March) against 2024
        return orders[(group, "2025")] / orders[(group, "2024")]

    assert ratio("shocked") < 0.85 * ratio("rest")  # about 0.7 x 9.5 / 12 + 2.5 / 12 = 0.76
    assert 0.9 < ratio("region") < 1.1 and 0.9 < ratio("rest") < 1.1


def test_a_shock_in_order_size_keeps_every_order_and_shrinks_the_shocked_ones(company):
    """The real case of issue 15: each county kept its order count and every order was 30 %
    smaller. The same draw as without a shock: the same orders, and after the start the
    shocked accounts' amounts are 0.7 times theirs (to the cent)."""
    shock = local_shock(company, shows_as="order_size")
    hit = {a.account_id for a, h in zip(company.accounts, shock.covers(company.accounts)) if h}

    def orders(with_shock: Shock | None) -> dict[str, tuple[str, str, float]]:
        return {
            e["data"]["order_id"]: (e["data"]["account_id"], e["occurred_at"], e["data"]["amount"])
            for _, _, e in generate_events(company, months=18, shock=with_shock, seed=7)
            if e["type"] == "order.placed"
        }

    shocked, plain = orders(shock), orders(None)
    assert shocked.keys() == plain.keys()
    after = shock.start.isoformat()
    changed = 0
    for order_id, (account, when, amount) in shocked.items():
        expected = plain[order_id][2] * (0.7 if account in hit and when >= after else 1.0)
        assert amount == pytest.approx(max(round(expected, 2), 1.0), abs=0.011), order_id
        changed += amount != plain[order_id][2]
    assert changed > 50  # 86 orders of the shocked accounts in its first four months
    with pytest.raises(ValueError, match="shows_as"):
        Shock(region=shock.region, start=shock.start, factor=0.7, shows_as="prices")


def test_the_regional_shock_stays_regional(company):
    shock = default_shock(company)
    assert shock.areas == frozenset()
    assert shock.covers(company.accounts).tolist() == [a.region == shock.region for a in company.accounts]


def test_areas_outside_the_region_are_refused(company):
    outside = next(area for area in admin2_of(company.accounts) if area and not area.startswith("DE-07-"))
    with pytest.raises(ValueError, match="not admin2 areas of region"):
        Shock(region="07", start=datetime(2025, 1, 1, tzinfo=timezone.utc), factor=0.7, areas=frozenset({outside}))
