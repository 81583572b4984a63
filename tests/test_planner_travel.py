"""The weekly travel proposal of the live planner (TERRITORY_TRAVEL_PROPOSAL_MOVES)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from alerts.messages import alert_from_proposal
from alerts.report import _proposal_view as proposal_view, build_weekly_report
from core.clock import ManualClock
from core.records import Proposal
from core.settings import Settings, SettingsError
from monitor.state import AccountState, RepState
from planner.planner import Planner
from planner.session import PlanningSession

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
BERLIN, HAMBURG = (52.52, 13.40), (53.55, 10.00)
WEDNESDAY = datetime(2025, 4, 2, 12, tzinfo=timezone.utc)  # ISO week 14


def crossed_company() -> tuple[list[AccountState], list[RepState]]:
    """Two reps in balance (four equal accounts each), but each serves one account in the
    other's city: swapping those two saves about 2 x 255 km and keeps the balance."""
    reps = [RepState("A", *BERLIN), RepState("B", *HAMBURG)]
    accounts = []
    for n in range(4):
        berlin = (BERLIN[0] + 0.01 * n, BERLIN[1])
        hamburg = (HAMBURG[0] + 0.01 * n, HAMBURG[1])
        accounts.append(AccountState(f"ber-{n}", *berlin, rep_id="B" if n == 0 else "A", known=True))
        accounts.append(AccountState(f"ham-{n}", *hamburg, rep_id="A" if n == 0 else "B", known=True))
    for account in accounts:
        account.monthly_sales = {"2025-03": 100.0}
    return accounts, reps


def planner(**changes) -> Planner:
    settings = Settings(**{"warmup_days": 30, "potential": "trailing", "solver_workers": 1, **changes})
    return Planner(settings, clock=ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc)))


def judge(p: Planner, watermark: datetime):
    accounts, reps = crossed_company()
    return p.evaluate(accounts, reps, watermark=watermark, first_event_at=START)


def solved(p: Planner, request) -> Proposal | None:
    session = PlanningSession(p.settings, accounts={}, reps={}, meta={})
    session.planner, session.judged_at = p, WEDNESDAY
    return session.solve(request)


def test_off_by_default():
    assert Settings().travel_proposal_moves == 0
    assert judge(planner(), WEDNESDAY).rebalance is None


def test_the_first_judgement_of_a_week_asks_for_less_travel_and_the_proposal_swaps_the_crossed_accounts():
    p = planner(travel_proposal_moves=4)
    evaluation = judge(p, WEDNESDAY)
    request = evaluation.rebalance
    assert evaluation.signals == []  # nothing is out of balance
    assert request is not None and request.mode == "travel" and request.max_moves == 4
    assert request.trigger_signal_ids == [] and request.tolerance == p.settings.tolerance

    proposal = solved(p, request)
    assert proposal is not None and proposal.mode == "travel" and proposal.status == "optimal"
    assert sorted((m.account_id, m.to_rep) for m in proposal.moves) == [("ber-0", "A"), ("ham-0", "B")]
    assert proposal.travel_km_before is not None and proposal.travel_km_after is not None
    assert proposal.travel_km_before - proposal.travel_km_after == pytest.approx(2 * 255, rel=0.05)
    assert proposal.imbalance_after <= p.settings.tolerance
    assert proposal.curve is None  # the imbalance curve answers another question
    assert Proposal.from_json(proposal.to_json()) == proposal

    # Told as what it is: an offer of less travel, nothing out of balance.
    view = proposal_view(proposal)
    assert view["mode"] == "travel" and "travel" in view["headline"] and "km" in view["headline"]
    assert "less travel" in view["question"] and "km" in view["reasons"][0]
    alert = alert_from_proposal(proposal)
    assert alert["severity"] == "info" and "less travel" in alert["title"]
    report = build_weekly_report([proposal], week="2025-W14", generated_at=WEDNESDAY)
    assert "less travel" in report.text


def test_once_per_iso_week_and_again_the_next_week_also_after_a_restart():
    p = planner(travel_proposal_moves=4)
    assert judge(p, WEDNESDAY).rebalance is not None
    assert judge(p, WEDNESDAY + timedelta(days=1)).rebalance is None  # same week
    restarted = planner(travel_proposal_moves=4)
    restarted.load_state_dict(p.state_dict())
    assert judge(restarted, WEDNESDAY + timedelta(days=4)).rebalance is None  # Sunday, week 14
    assert judge(restarted, WEDNESDAY + timedelta(days=5)).rebalance is not None  # Monday, week 15


def test_a_saving_below_the_minimum_is_not_proposed():
    p = planner(travel_proposal_moves=4, travel_proposal_min_saving=0.99)  # the swap saves about 97%
    request = judge(p, WEDNESDAY).rebalance
    assert request is not None and solved(p, request) is None


def test_balance_comes_first_no_travel_request_while_a_rep_is_out_of_band():
    p = planner(travel_proposal_moves=4)
    accounts, reps = crossed_company()
    accounts[0].monthly_sales = {"2025-03": 900.0}  # B far over its fair share
    request = p.evaluate(accounts, reps, watermark=WEDNESDAY, first_event_at=START).rebalance
    assert request is not None and request.mode == "minimal_moves" and request.trigger_signal_ids


def test_no_travel_request_during_warm_up():
    p = planner(travel_proposal_moves=4, warmup_days=365)
    assert judge(p, WEDNESDAY).rebalance is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("travel_proposal_moves", -1, "at least 0"), ("travel_proposal_min_saving", 1.0, "[0, 1)")],
)
def test_travel_settings_are_validated(name, value, message):
    with pytest.raises(SettingsError, match=f"TERRITORY_{name.upper()}=.*{re.escape(message)}"):
        Settings(**{name: value})


def test_a_worker_catching_up_on_history_solves_no_travel_for_weeks_already_past():
    p = planner(travel_proposal_moves=4)
    request = judge(p, WEDNESDAY).rebalance
    session = PlanningSession(p.settings, accounts={}, reps={}, meta={})
    session.planner, session.judged_at = p, WEDNESDAY
    session.watermark.observe("crm.orders:0", WEDNESDAY + timedelta(days=30))  # a month of history still to judge
    assert session.behind and session.solve(request) is None


def test_a_worker_that_caught_up_asks_the_travel_question_of_the_week_it_reached():
    """Days judged in turn while behind ask nothing; the judgement that reaches the watermark
    asks this week's question (before, the week's first day, judged while behind, used it up)."""
    p = planner(travel_proposal_moves=4)
    accounts, reps = crossed_company()
    session = PlanningSession(
        p.settings,
        accounts={a.account_id: a.to_dict() for a in accounts},
        reps={r.rep_id: r.to_dict() for r in reps},
        meta={},
    )
    session.planner = p
    session.watermark.observe("crm.orders:0", START)
    session.watermark.observe("crm.orders:0", WEDNESDAY + timedelta(days=p.settings.lateness_days))
    session.judged_at = datetime(2025, 3, 30, 12, tzinfo=timezone.utc)  # Sunday of week 13
    asked = []
    while True:
        evaluation = session.judge()
        assert evaluation is not None
        request = evaluation.rebalance
        if request is not None and request.mode == "travel":
            asked.append((session.judged_at, session.behind))
        if not session.behind:
            break
    assert asked == [(WEDNESDAY, False)]
    assert session.solve(request) is not None
