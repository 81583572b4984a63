"""One meaning of "share" and "fair share": the imbalance detector's aggregates (monitor.state)
and the rebalancer's balances (rebalancer.values) report the same figures for the same company,
also while some accounts have no active rep (their rep left)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from monitor.state import AccountState, RepState, territory_aggregates
from rebalancer import Account, Rep, balance_of

WATERMARK = datetime(2025, 6, 30, 23, 59, tzinfo=timezone.utc)


def company() -> tuple[list[AccountState], list[RepState]]:
    """Three active reps (one half-time) and one who left, whose three accounts are orphaned."""
    reps = [
        RepState("R1", 48.1, 11.5, 1.0),
        RepState("R2", 48.2, 11.6, 0.5),
        RepState("R3", 48.3, 11.7, 1.0),
        RepState("GONE", 48.4, 11.8, 1.0, active=False),
    ]
    owners = ["R1"] * 4 + ["R2"] * 3 + ["R3"] * 2 + ["GONE"] * 3
    accounts = [
        AccountState(
            f"a{i:02d}",
            lat=48.0 + i / 100,
            lon=11.0 + i / 100,
            rep_id=rep_id,
            known=True,
            monthly_sales={"2025-05": 100.0 + 37.5 * i, "2025-03": 10.1 * i},
            monthly_minutes={"2025-04": 30.0 + 7 * i},
        )
        for i, rep_id in enumerate(owners)
    ]
    return accounts, reps


def rebalancer_input(accounts: list[AccountState], reps: list[RepState]) -> tuple[list[Account], list[Rep]]:
    """What the planner hands the rebalancer: every known open account, the active reps."""
    return (
        [
            Account(
                a.account_id,
                potential=sum(a.monthly_sales.values()),
                workload=sum(a.monthly_minutes.values()),
                lat=a.lat,
                lon=a.lon,
                rep_id=a.rep_id,
                locked=a.locked,
            )
            for a in accounts
        ],
        [Rep(r.rep_id, r.home_lat, r.home_lon, r.capacity_fte, r.max_travel_km) for r in reps if r.active],
    )


def test_detector_and_rebalancer_report_the_same_shares_while_a_reps_accounts_are_orphaned():
    accounts, reps = company()
    aggregates = territory_aggregates(accounts, reps, watermark=WATERMARK)
    balances = {b.rep_id: b for b in balance_of(*rebalancer_input(accounts, reps))}

    assert set(aggregates) == set(balances) == {"R1", "R2", "R3"}
    for rep_id, aggregate in aggregates.items():
        balance = balances[rep_id]
        assert (aggregate.potential, aggregate.workload_min) == (balance.potential, balance.workload), rep_id
        assert (aggregate.share, aggregate.fair_share, aggregate.deviation) == (
            balance.share,
            balance.fair_share,
            balance.deviation,
        ), rep_id
    # Shares are of what the active reps serve: like fair shares, they sum to 1.
    assert sum(b.share for b in balances.values()) == pytest.approx(1.0)
    assert sum(b.workload_share for b in balances.values()) == pytest.approx(1.0)
    assert sum(a.fair_share for a in aggregates.values()) == pytest.approx(1.0)


def test_a_balanced_team_reads_balanced_although_a_reps_accounts_are_orphaned():
    # Orphans are a coverage gap (signalled and placed on their own), not an imbalance of the
    # reps who remain: R1 and R2 carry exactly their capacity's part of what they serve.
    reps = [Rep("R1", 0, 0, 1.0), Rep("R2", 0, 0, 0.5)]
    accounts = [Account("A", 60, rep_id="R1"), Account("B", 30, rep_id="R2"), Account("C", 900, rep_id="GONE")]
    assert [(b.rep_id, b.share, b.deviation) for b in balance_of(accounts, reps)] == [
        ("R1", pytest.approx(2 / 3), pytest.approx(0.0)),
        ("R2", pytest.approx(1 / 3), pytest.approx(0.0)),
    ]
    states = [
        AccountState(a.account_id, rep_id=a.rep_id, known=True, monthly_sales={"2025-06": a.potential})
        for a in accounts
    ]
    rep_states = [RepState("R1", 0, 0, 1.0), RepState("R2", 0, 0, 0.5), RepState("GONE", 0, 0, 1.0, active=False)]
    aggregates = territory_aggregates(states, rep_states, watermark=WATERMARK)
    assert [aggregates[r].deviation for r in ("R1", "R2")] == [pytest.approx(0.0), pytest.approx(0.0)]


def test_with_nothing_to_share_no_rep_is_off_its_fair_share():
    reps = [Rep("R1", 0, 0), Rep("R2", 0, 0)]
    accounts = [Account("A", 0, rep_id="R1")]
    assert [(b.share, b.deviation) for b in balance_of(accounts, reps)] == [(0.0, 0.0), (0.0, 0.0)]
    aggregates = territory_aggregates(
        [AccountState("A", rep_id="R1", known=True)], [RepState("R1", 0, 0), RepState("R2", 0, 0)], watermark=WATERMARK
    )
    assert [(a.share, a.fair_share, a.deviation) for a in aggregates.values()] == [(0.0, 0.5, 0.0)] * 2
