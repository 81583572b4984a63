"""Sales intelligence on hand-built territories whose classes are known, and the proposal
context (planner.planner) the intelligence is computed from."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from alerts.intelligence import abc_classes, lapsed_accounts, sleeping_giants, territory_intelligence
from planner.planner import Planner, account_context_row, proposal_context, select_context_accounts
from monitor.state import AccountState, RepState
from rebalancer import Account, minimal_moves
from core.clock import ManualClock
from core.settings import Settings


def row(
    account_id: str,
    rep_id: str | None = "R1",
    *,
    potential: float = 0.0,
    sales: float = 0.0,
    minutes: float = 0.0,
    last: str | None = "2025-06",
    gap: float | None = 1.0,
) -> dict:
    return {
        "account_id": account_id,
        "lat": 50.0,
        "lon": 8.0,
        "rep_id": rep_id,
        "potential": potential,
        "sales_12m": sales,
        "active_months_12m": 6,
        "last_order_month": last,
        "typical_gap_months": gap,
        "activity_minutes_12m": minutes,
    }


# ---------------------------------------------------------------------------- ABC


def test_abc_follows_the_pareto_split():
    # 50 + 30 = 80% -> A; 10 + 5 -> the next 15% -> B; 3 + 2 -> C.
    values = pd.Series({"a": 50.0, "b": 30.0, "c": 10.0, "d": 5.0, "e": 3.0, "f": 2.0})
    assert abc_classes(values).to_dict() == {"a": "A", "b": "A", "c": "B", "d": "B", "e": "C", "f": "C"}
    # The input order does not matter.
    shuffled = values.loc[["e", "b", "f", "a", "d", "c"]]
    assert abc_classes(shuffled).to_dict() == abc_classes(values).to_dict()


def test_abc_the_account_crossing_a_line_keeps_the_class_it_starts_in():
    # One account makes 90%: it is A; the next starts at 90% (< 95%) -> B; the last starts at 95% -> C.
    assert abc_classes(pd.Series([90.0, 5.0, 5.0], index=["x", "y", "z"])).tolist() == ["A", "B", "C"]


def test_abc_worthless_accounts_are_c_and_ties_rank_by_id():
    assert abc_classes(pd.Series([0.0, 0.0], index=["a", "b"])).tolist() == ["C", "C"]
    assert abc_classes(pd.Series([10.0, 0.0], index=["a", "b"])).tolist() == ["A", "C"]
    # Five equal accounts, ranked by id: the 4th starts at 60% -> A, the 5th at exactly 80% -> B.
    assert abc_classes(pd.Series([1.0] * 5, index=list("edcba"))).sort_index().tolist() == ["A", "A", "A", "A", "B"]


# ---------------------------------------------------------------------------- lapsed


def test_lapsed_against_each_accounts_own_rhythm():
    rows = [
        row("monthly-3", last="2025-03", gap=1.0, potential=10),  # silent 3 > max(2, 1.5) -> lapsed
        row("monthly-2", last="2025-04", gap=1.0, potential=20),  # silent 2, not > 2
        row("quarterly-5", last="2025-01", gap=3.0, potential=30),  # silent 5 > 4.5 -> lapsed
        row("quarterly-4", last="2025-02", gap=3.0, potential=40),  # silent 4 <= 4.5
        row("never", last=None, gap=None, potential=50),  # never ordered: not lapsed
        row("single-9", last="2024-09", gap=None, potential=60),  # one order: assumed 6 -> 9, not > 9
        row("single-10", last="2024-08", gap=None, potential=70),  # silent 10 > 9 -> lapsed
        row("this-month", last="2025-06", gap=1.0, potential=80),
    ]
    lapsed = lapsed_accounts(pd.DataFrame(rows), as_of="2025-06")
    assert lapsed["account_id"].tolist() == ["single-10", "quarterly-5", "monthly-3"]  # largest potential first
    assert lapsed["months_since_order"].tolist() == [10, 5, 3]
    assert lapsed["lapse_after_months"].tolist() == [9.0, 4.5, 2.0]
    assert list(lapsed.columns) == [
        "account_id",
        "rep_id",
        "last_order_month",
        "months_since_order",
        "typical_gap_months",
        "lapse_after_months",
        "sales_12m",
        "potential",
    ]


def test_lapsed_of_nothing_is_an_empty_table():
    assert lapsed_accounts(pd.DataFrame([]), as_of="2025-06").empty


# ---------------------------------------------------------------------------- sleeping giants


def territory_of_ten() -> list[dict]:
    """Ten accounts, potential 100..10: the top 20% are g1 and g2. g1 is not worked at all
    (no activity), g2 is; activity and sales follow potential."""
    rows = []
    for i in range(10):
        potential = 100.0 - 10 * i
        minutes = 0.0 if i == 0 else 10.0 * potential
        rows.append(row(f"g{i + 1}", potential=potential, sales=potential, minutes=minutes))
    return rows


def test_sleeping_giant_has_top_potential_and_bottom_activity():
    giants = sleeping_giants(pd.DataFrame(territory_of_ten()))
    assert giants["account_id"].tolist() == ["g1"]
    assert giants.iloc[0]["quiet_on"] == "activity" and giants.iloc[0]["potential_rank"] == 1


def test_sleeping_giant_by_sales():
    rows = territory_of_ten()
    rows[1]["sales_12m"] = 0.0  # g2: top potential, worked, but buys nothing
    giants = sleeping_giants(pd.DataFrame(rows)).set_index("account_id")["quiet_on"].to_dict()
    assert giants == {"g1": "activity", "g2": "sales"}


def test_a_measure_that_does_not_vary_calls_nobody_quiet():
    rows = [row(f"x{i}", potential=100.0 - i, sales=100.0 - i, minutes=0.0) for i in range(6)]  # no activity logged
    assert sleeping_giants(pd.DataFrame(rows)).empty


# ---------------------------------------------------------------------------- per territory


def test_territory_intelligence_per_rep():
    rows = territory_of_ten() + [
        row("b1", "R2", potential=60, sales=0, last="2024-12", gap=1.0),
        row("b2", "R2", potential=40, sales=40),
        row("orphan", None, potential=999),
    ]
    intel = territory_intelligence(rows, as_of="2025-06", rep_ids=["R1", "R2", "R3"])
    assert list(intel) == ["R1", "R2", "R3"]
    r1, r2, r3 = intel["R1"], intel["R2"], intel["R3"]
    assert len(r1.accounts) == 10 and r1.potential == pytest.approx(550.0)
    assert r1.sleeping_giants["account_id"].tolist() == ["g1"]
    assert r1.accounts.set_index("account_id").loc["g1", "sleeping_giant"]
    # R1 by potential 100..10 (total 550): A while < 440 precedes -> g1..g6 (100+90+80+70+60+50 = 450 >= 440 after g6).
    assert r1.accounts.set_index("account_id")["abc_potential"].value_counts().to_dict() == {"A": 6, "B": 3, "C": 1}
    assert r1.abc.loc["A", "accounts_by_potential"] == 6
    assert r1.abc["potential_share"].sum() == pytest.approx(1.0)
    # R2: b1 has potential but no sales in the window: A by potential, C by sales; lapsed 6 months.
    b1 = r2.accounts.set_index("account_id").loc["b1"]
    assert (b1["abc_potential"], b1["abc_sales"], b1["months_since_order"], b1["lapsed"]) == ("A", "C", 6.0, True)
    assert r2.lapsed["account_id"].tolist() == ["b1"]
    # A rep without accounts gets empty tables, not an error.
    assert r3.accounts.empty and r3.lapsed.empty and r3.sleeping_giants.empty
    assert r3.abc["accounts_by_potential"].sum() == 0
    # Without rep_ids: every rep with accounts, the orphan left out.
    assert list(territory_intelligence(rows, as_of="2025-06")) == ["R1", "R2"]


# ---------------------------------------------------------------------------- proposal context


THROUGH = datetime(2025, 6, 30, 23, 59, 59, tzinfo=timezone.utc)


def test_account_context_row_counts_complete_months_only():
    state = AccountState(
        "a1",
        52.520008,
        13.404954,
        rep_id="R1",
        known=True,
        monthly_sales={
            "2024-03": 5.0,
            "2024-06": 10.0,
            "2024-09": 20.0,
            "2025-03": 30.0,
            "2025-06": 40.0,
            "2025-07": 999.0,
        },  # July is after the judged month
        monthly_minutes={"2024-07": 30.0, "2025-05": 45.5, "2025-07": 60.0},
    )
    row = account_context_row(state, 1234.5678, THROUGH)
    assert row == {
        "account_id": "a1",
        "lat": 52.52,
        "lon": 13.405,
        "rep_id": "R1",
        "potential": 1234.57,
        "sales_12m": 90.0,  # 2024-07 .. 2025-06
        "active_months_12m": 3,
        "last_order_month": "2025-06",
        "typical_gap_months": 3.0,  # gaps 3, 3, 6, 3
        "activity_minutes_12m": 75.5,
    }
    silent = account_context_row(AccountState("a2", 50.0, 8.0, rep_id="R1"), 0.0, THROUGH)
    assert (silent["last_order_month"], silent["typical_gap_months"], silent["active_months_12m"]) == (None, None, 0)


def test_proposal_context_pairs_states_with_the_balanced_potential():
    states = [
        AccountState("a1", 50.0, 8.0, rep_id="R1", monthly_sales={"2025-06": 10.0}),
        AccountState("closed", 50.0, 8.0, rep_id="R1"),
    ]
    reps = [RepState("R1", 50.123456, 8.0), RepState("gone", 51.0, 9.0, active=False)]
    context = proposal_context(states, reps, THROUGH)
    rows, scope = context.rows([Account("a1", 77.0, lat=50.0, lon=8.0, rep_id="R1")], [])
    assert scope == "all" and [r["account_id"] for r in rows] == ["a1"] and rows[0]["potential"] == 77.0
    assert context.reps == ({"rep_id": "R1", "home_lat": 50.1235, "home_lon": 8.0},)
    assert context.as_of == "2025-06"


@settings(max_examples=60, deadline=None)
@given(
    owners=st.lists(st.sampled_from(["R1", "R2", "R3", None]), min_size=1, max_size=30),
    moved=st.lists(st.tuples(st.integers(0, 29), st.sampled_from(["R1", "R2", "R3", None])), max_size=4),
    all_up_to=st.integers(0, 40),
    max_rows=st.integers(1, 40),
)
def test_context_rows_made_for_the_touched_are_those_chosen_from_every_row(owners, moved, all_up_to, max_rows):
    """A large company's rows are made only for the moves' territories: the proposal carries
    the same rows, in the same order, as when every account's row was made and chosen from."""
    states = [
        AccountState(f"a{i}", 50.0, 8.0, rep_id=rep, monthly_sales={"2025-06": float(i)})
        for i, rep in enumerate(owners)
    ]
    accounts = [Account(s.account_id, float(i % 7), lat=50.0, lon=8.0, rep_id=s.rep_id) for i, s in enumerate(states)]
    moves = [
        {"account_id": states[i % len(states)].account_id, "from_rep": states[i % len(states)].rep_id, "to_rep": to}
        for i, to in moved
    ]
    every_row = [account_context_row(s, a.potential, THROUGH) for s, a in zip(states, accounts)]
    expected = select_context_accounts(every_row, moves, all_up_to=all_up_to, max_rows=max_rows)
    context = proposal_context(states, [], THROUGH)
    assert context.rows(accounts, moves, all_up_to=all_up_to, max_rows=max_rows) == expected


def test_context_rows_are_of_the_states_at_the_request():
    """The session replaces a changed account's state in its list: a context taken before
    shows the figures as they were when the proposal was asked for."""
    before = AccountState("a1", 50.0, 8.0, rep_id="R1", monthly_sales={"2025-06": 10.0})
    states = [before]
    context = proposal_context(states, [], THROUGH)
    states[0] = AccountState("a1", 50.0, 8.0, rep_id="R1", monthly_sales={"2025-06": 99.0})
    rows, _ = context.rows([Account("a1", 1.0, lat=50.0, lon=8.0, rep_id="R1")], [])
    assert rows[0]["sales_12m"] == pytest.approx(10.0)


def test_select_context_accounts_scopes():
    rows = [row(f"{rep}-{i}", rep, potential=float(i)) for rep in ("R1", "R2", "R3") for i in range(4)]
    move = {"account_id": "R1-0", "from_rep": "R1", "to_rep": "R2"}
    assert select_context_accounts(rows, [move])[1] == "all"
    touched, scope = select_context_accounts(rows, [move], all_up_to=5)
    assert scope == "touched" and {r["rep_id"] for r in touched} == {"R1", "R2"} and len(touched) == 8
    largest, scope = select_context_accounts(rows, [move], all_up_to=5, max_rows=3)
    # The moved account first, then the largest by potential; in the input order.
    assert scope == "touched_largest" and [r["account_id"] for r in largest] == ["R1-0", "R1-3", "R2-3"]
    # A byte budget cuts too: the rows stay within what one Kafka message may carry.
    one_row = len(json.dumps(rows[0])) + 2
    fitted, scope = select_context_accounts(rows, [move], max_bytes=2 * one_row)
    assert scope == "touched_largest" and len(fitted) == 2
    # A placement (from nobody) touches only the receiving rep, and the moved account itself.
    orphan = row("orphan", "gone", potential=1.0)
    placed, _ = select_context_accounts(
        [*rows, orphan], [{"account_id": "orphan", "from_rep": None, "to_rep": "R3"}], all_up_to=5
    )
    assert {r["rep_id"] for r in placed} == {"R3", "gone"}


def test_planner_proposal_carries_the_context():
    """End to end through the planner: an unbalanced pair of reps, a real rebalance."""
    reps = [RepState("A", 52.5, 13.4), RepState("B", 53.5, 10.0)]
    accounts = [
        AccountState(
            "a1",
            52.5,
            13.4,
            rep_id="A",
            known=True,
            monthly_sales={"2025-03": 300.0},
            monthly_minutes={"2025-03": 30.0},
        ),
        AccountState("a2", 52.6, 13.5, rep_id="A", known=True, monthly_sales={"2025-01": 50.0, "2025-03": 50.0}),
        AccountState("b1", 53.5, 10.0, rep_id="B", known=True, monthly_sales={"2025-03": 200.0}),
    ]
    settings = Settings(tolerance=0.10, hysteresis=0.8, warmup_days=30, potential="trailing")
    planner = Planner(settings, clock=ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc)))
    watermark = datetime(2025, 4, 2, tzinfo=timezone.utc)
    request = planner.evaluate(
        accounts, reps, watermark=watermark, first_event_at=datetime(2025, 1, 1, tzinfo=timezone.utc)
    ).rebalance
    assert request is not None and request.context is not None
    result = minimal_moves(request.accounts, request.reps, tolerance=0.3, time_limit_s=5, num_workers=1)
    proposal = planner.proposal(request, result, watermark).to_json()
    assert proposal["accounts_scope"] == "all" and proposal["accounts_as_of"] == "2025-03"
    by_id = {r["account_id"]: r for r in proposal["accounts"]}
    assert set(by_id) == {"a1", "a2", "b1"}
    assert by_id["a2"] == {
        "account_id": "a2",
        "lat": 52.6,
        "lon": 13.5,
        "rep_id": "A",
        "potential": 100.0,
        "sales_12m": 100.0,
        "active_months_12m": 2,
        "last_order_month": "2025-03",
        "typical_gap_months": 2.0,
        "activity_minutes_12m": 0.0,
    }
    assert proposal["reps"] == [
        {"rep_id": "A", "home_lat": 52.5, "home_lon": 13.4},
        {"rep_id": "B", "home_lat": 53.5, "home_lon": 10.0},
    ]
    json.dumps(proposal)  # the message stays plain JSON
