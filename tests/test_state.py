"""Account state and territory aggregates: event-time months, trailing windows, fair shares."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.contract import parse_event
from monitor.state import (
    AccountState,
    RepState,
    apply_account_event,
    apply_rep_event,
    month_index,
    month_key_of_index,
    territory_aggregates,
    trailing_sum,
)
from core import topics


def order(event_id: str, when: str, amount: float, account_id: str = "acc-1"):
    document = {
        "event_id": event_id,
        "type": "order.placed",
        "occurred_at": when,
        "data": {"order_id": event_id, "account_id": account_id, "amount": amount},
    }
    return parse_event(json.dumps(document).encode(), topic=topics.ORDERS, key=account_id.encode())


def test_late_order_lands_in_the_month_it_happened():
    state = apply_account_event(None, order("o1", "2025-03-10T00:00:00+00:00", 100))
    state = apply_account_event(state, order("o2", "2025-01-15T09:00:00+01:00", 50))
    state = apply_account_event(state, order("o3", "2025-01-31T23:30:00-02:00", 7))  # Feb 1 in UTC: months are UTC
    assert state.monthly_sales == {"2025-03": 100.0, "2025-01": 50.0, "2025-02": 7.0}
    assert state.last_event_at.startswith("2025-03-10")


def test_trailing_sum_counts_whole_months_ending_at_the_watermark():
    buckets = {"2024-02": 1.0, "2024-03": 10.0, "2025-02": 100.0, "2025-03": 1000.0}
    watermark = datetime(2025, 2, 14, tzinfo=timezone.utc)
    assert trailing_sum(buckets, watermark, 12) == 110.0  # 2024-03 .. 2025-02


@settings(max_examples=200, deadline=None)
@given(
    months=st.lists(st.integers(12, 9999 * 12 + 11), max_size=30, unique=True),
    at=st.integers(12, 9999 * 12 + 11),
    window=st.integers(-2, 40),
)
@example(months=[12012], at=119997, window=-2)  # an empty window whose first month would be past 9999
def test_trailing_sum_is_the_window_of_month_indices_from_year_1_to_9999(months, at, window):
    buckets = {month_key_of_index(idx): float(idx % 97) for idx in months}
    watermark = datetime(at // 12, at % 12 + 1, 28, 23, 59, tzinfo=timezone.utc)
    expected = sum(value for key, value in buckets.items() if 0 <= at - month_index(key) < window)
    assert trailing_sum(buckets, watermark, window) == expected


def test_aggregates_weight_fair_share_by_capacity_and_skip_inactive_reps():
    watermark = datetime(2025, 6, 1, tzinfo=timezone.utc)
    reps = [RepState("R1", 0, 0, 1.0), RepState("R2", 0, 0, 0.5), RepState("R3", 0, 0, 1.0, active=False)]
    accounts = [
        AccountState("a", rep_id="R1", known=True, monthly_sales={"2025-05": 200.0}),
        AccountState("b", rep_id="R2", known=True, monthly_sales={"2025-05": 100.0}, monthly_minutes={"2025-04": 30}),
        AccountState("c", rep_id="R3", known=True, monthly_sales={"2025-05": 999.0}),
        AccountState("d", rep_id="R1", known=False, monthly_sales={"2025-05": 999.0}),  # no upsert yet
    ]
    aggregates = territory_aggregates(accounts, reps, watermark=watermark)
    assert set(aggregates) == {"R1", "R2"}
    assert aggregates["R1"].fair_share == pytest.approx(2 / 3)
    assert aggregates["R2"].share == pytest.approx(1 / 3)
    assert aggregates["R2"].deviation == pytest.approx(0.0)
    assert aggregates["R2"].workload_min == 30


def test_segment_follows_the_newest_profile_and_rep_rows_keep_segments_and_caps():
    def upsert(event_id: str, when: str, **data: object):
        document = {
            "event_id": event_id,
            "type": "account.upserted",
            "occurred_at": when,
            "data": {"account_id": "acc-1", "lat": 48.1, "lon": 11.6, **data},
        }
        return parse_event(json.dumps(document).encode(), topic=topics.ACCOUNTS, key=b"acc-1")

    state = apply_account_event(None, upsert("u2", "2025-02-01T00:00:00Z", segment="key account"))
    state = apply_account_event(state, upsert("u1", "2025-01-01T00:00:00Z", segment="retail"))  # older: ignored
    assert state.segment == "key account"
    assert AccountState.from_dict(state.to_dict()).segment == "key account"
    state = apply_account_event(state, upsert("u3", "2025-03-01T00:00:00Z"))  # a newer profile without one
    assert state.segment is None

    rep = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R1", "home_lat": 48.1, "home_lon": 11.6, "segments": ["retail"], "max_accounts": 9},
    }
    row = apply_rep_event(parse_event(json.dumps(rep).encode(), topic=topics.REPS, key=b"R1")).to_dict()
    assert (row["segments"], row["min_accounts"], row["max_accounts"]) == (["retail"], None, 9)
    assert row["travel_factor"] == 1.0
    # A row written before these fields existed still loads: any segment, no caps.
    old = {key: value for key, value in row.items() if key not in ("segments", "min_accounts", "max_accounts")}
    assert RepState.from_dict(old).segments == [] and RepState.from_dict(old).max_accounts is None


def test_rep_state_keeps_workload_caps_and_sales_region_and_older_rows_load_without_them():
    rep = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {
            "rep_id": "R1",
            "home_lat": 48.1,
            "home_lon": 11.6,
            "district": "Nord",
            "sales_region": "North",
            "min_workload": 600,
            "max_workload": 2400,
        },
    }
    state = apply_rep_event(parse_event(json.dumps(rep).encode(), topic=topics.REPS, key=b"R1"))
    assert (state.min_workload, state.max_workload, state.sales_region) == (600.0, 2400.0, "North")
    row = state.to_dict()
    assert RepState.from_dict(row) == state
    old = {key: value for key, value in row.items() if key not in ("min_workload", "max_workload", "sales_region")}
    loaded = RepState.from_dict(old)
    assert (loaded.min_workload, loaded.max_workload, loaded.sales_region) == (None, None, None)


def test_district_aggregates_share_within_the_district():
    watermark = datetime(2025, 6, 1, tzinfo=timezone.utc)
    reps = [
        RepState("N1", 0, 0, district="North"),
        RepState("N2", 0, 0, district="North"),
        RepState("S1", 0, 0, district="South"),
    ]
    accounts = [
        AccountState("a", rep_id="N1", known=True, monthly_sales={"2025-05": 300.0}),
        AccountState("b", rep_id="N2", known=True, monthly_sales={"2025-05": 100.0}),
        AccountState("c", rep_id="S1", known=True, monthly_sales={"2025-05": 100.0}),
    ]
    company = territory_aggregates(accounts, reps, watermark=watermark)
    assert company["S1"].fair_share == pytest.approx(1 / 3) and company["S1"].share == pytest.approx(0.2)
    district = territory_aggregates(accounts, reps, watermark=watermark, groups={r.rep_id: r.district for r in reps})
    assert district["S1"].fair_share == 1.0 and district["S1"].deviation == 0.0
    assert district["N1"].fair_share == 0.5 and district["N1"].share == pytest.approx(0.75)
    assert district["N1"].district == "North"


def test_rep_rows_keep_the_quota_and_older_rows_load_without_one():
    rep = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "R1", "home_lat": 48.1, "home_lon": 11.6, "quota": 900000},
    }
    row = apply_rep_event(parse_event(json.dumps(rep).encode(), topic=topics.REPS, key=b"R1")).to_dict()
    assert row["quota"] == 900000.0
    assert RepState.from_dict(row).quota == 900000.0
    # An upsert without it: no quota (each upsert replaces the whole profile).
    del rep["data"]["quota"]
    assert apply_rep_event(parse_event(json.dumps(rep).encode(), topic=topics.REPS, key=b"R1")).quota is None
    # A row written before the field existed still loads: no quota.
    old = {key: value for key, value in row.items() if key != "quota"}
    assert RepState.from_dict(old).quota is None
