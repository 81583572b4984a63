"""The planner judges a month's figures again only when something they are made of changed.

A worker catching up judges every day; the monthly part of a judgement (potentials, per-rep
aggregates, quota years, the coverage check) reads only complete months, profiles and
owners, so an order of the current month leaves it as it was. These tests hold the
shortcut to its promise: the same signals and proposals as judging everything every day.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from monitor.state import AccountState, _prune, trailing_sum
from planner import session as session_module
from planner.session import month_facts
from potential.features import features_at
from simulator import default_shock, generate_company, generate_events
from core.settings import Settings
from territory.backtest import run_backtest

APRIL = "2025-04"
AT = datetime(2025, 4, 1, tzinfo=timezone.utc)


def account(**changes) -> dict:
    row = AccountState(
        "a1",
        52.5,
        13.4,
        industry="retail",
        employees=40,
        rep_id="R1",
        known=True,
        profile_at="2024-01-05T00:00:00+00:00",
        monthly_sales={"2025-02": 100.0, "2025-03": 50.0},
        monthly_minutes={"2025-03": 30.0},
        opportunities={"o1": ["2025-02-10T00:00:00+00:00", 400.0]},
    ).public_dict()
    row.update(changes)
    return row


def test_what_the_current_month_adds_leaves_the_month_facts_as_they_were():
    before = month_facts(
        account(
            monthly_sales={"2025-02": 100.0, "2025-03": 50.0, "2025-04": 5.0},
            monthly_minutes={"2025-03": 30.0, "2025-04": 15.0},
        ),
        APRIL,
    )
    # Another order in April, an activity in April, an opportunity won and a new one in April, a later event time.
    assert before == month_facts(
        account(
            monthly_sales={"2025-02": 100.0, "2025-03": 50.0, "2025-04": 25.0},
            monthly_minutes={"2025-03": 30.0, "2025-04": 60.0},
            opportunities={
                "o1": ["2025-04-02T00:00:00+00:00", None, "2025-02-10T00:00:00+00:00", 400.0],  # won in April
                "o2": ["2025-04-03T00:00:00+00:00", 9.0],
            },
            last_event_at="2025-04-09T00:00:00+00:00",
        ),
        APRIL,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"monthly_sales": {"2025-02": 100.0, "2025-03": 70.0}},  # a late order for March
        {"monthly_sales": {"2025-02": 100.0, "2025-03": 50.0, "2025-05": 1.0}},  # a bucket beyond April
        {"opportunities": {"o1": ["2025-03-02T00:00:00+00:00", None]}},  # won in March: out of the pipeline
        {"rep_id": "R2"},
        {"employees": 400},
        {"closed": True},
    ],
)
def test_what_the_monthly_judgement_reads_changes_the_month_facts(change):
    assert month_facts(account(), APRIL) != month_facts(account(**change), APRIL)


def test_a_month_pruned_beyond_what_the_features_read_leaves_them_as_they_were():
    # The state keeps 24 months from the newest: April's first order prunes April 2023.
    old = account(
        monthly_sales={"2023-04": 10.0, "2024-05": 20.0, "2025-03": 50.0}, profile_at="2023-04-02T00:00:00+00:00"
    )
    new = account(monthly_sales={"2024-05": 20.0, "2025-03": 50.0, APRIL: 5.0}, profile_at="2023-04-02T00:00:00+00:00")
    assert month_facts(old, APRIL) == month_facts(new, APRIL)
    assert features_at(AccountState.from_dict(old), AT) == features_at(AccountState.from_dict(new), AT)


def test_equal_month_facts_mean_equal_features_and_trailing_figures():
    # Random histories, each changed by what the current month may bring: whenever the month
    # facts say "unchanged", the potential model's features and the trailing sums agree.
    rng = random.Random(5)
    checked = 0
    for _ in range(300):
        months = [f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)]
        sales = {key: rng.choice((0.0, 10.0, 99.0)) for key in rng.sample(months[:28], rng.randint(0, 26))}
        old = account(monthly_sales=sales, monthly_minutes=dict(list(sales.items())[:5]))
        # As the state keeps them: 24 months from the newest bucket.
        new = account(
            monthly_sales=_prune({**sales, **({APRIL: rng.random()} if rng.random() < 0.5 else {})}),
            monthly_minutes=_prune({**old["monthly_minutes"], **({APRIL: 3.0} if rng.random() < 0.5 else {})}),
            profile_at=rng.choice((None, "2023-02-01T00:00:00+00:00", "2024-11-30T00:00:00+00:00")),
        )
        old["profile_at"] = new["profile_at"]
        if rng.random() < 0.5:
            old["monthly_sales"][APRIL] = 1.0
        if month_facts(old, APRIL) == month_facts(new, APRIL):
            a, b = AccountState.from_dict(old), AccountState.from_dict(new)
            assert features_at(a, AT) == features_at(b, AT)
            march_end = datetime(2025, 3, 31, 23, 59, tzinfo=timezone.utc)
            assert trailing_sum(a.monthly_sales, march_end, 12) == trailing_sum(b.monthly_sales, march_end, 12)
            checked += 1
    assert checked > 50


def _decisions(result) -> tuple[list, list]:
    signals = [(s["kind"], s["subject"]["id"], s["state"], s["detected_at"], s["evidence"]) for s in result.signals]
    proposals = [
        (p["event_time"], sorted((m["account_id"], m["to_rep"]) for m in p["moves"])) for p in result.proposals
    ]
    return signals, proposals


@pytest.mark.slow
def test_a_backtest_finds_the_same_signals_and_proposals_as_judging_everything_every_day(monkeypatch):
    company = generate_company(seed=21, n_accounts=400)
    events = generate_events(company, months=16, shock=default_shock(company), seed=21)
    settings = Settings(warmup_days=180, solver_time_limit_s=5, solver_workers=1)
    incremental = run_backtest(events, settings)

    monkeypatch.setattr(session_module, "INCREMENTAL_MONTHS", False)
    everything = run_backtest(events, settings)

    assert _decisions(incremental) == _decisions(everything)
    assert incremental.signals and incremental.proposals  # the run decides something


def _opportunity_event(moment: str, amount: float, stage: str = "open"):
    from core.contract import parse_event

    raw = {
        "event_id": f"op-{moment}-{stage}",
        "type": "opportunity.updated",
        "occurred_at": moment,
        "data": {"opportunity_id": "o9", "account_id": "a1", "stage": stage, "amount": amount, "probability": 1.0},
    }
    import json

    return parse_event(json.dumps(raw).encode(), topic="crm.opportunities", key="a1")


@pytest.mark.parametrize("order", ["in time", "late"])
def test_an_opportunity_updated_within_the_month_keeps_its_value_as_of_the_month_start(order):
    """The pipeline feature is what was open at the month's start: an opportunity won during
    April still counts in April's features (and not in May's), in whatever order the updates
    arrive, so April's figures need no new judgement for it."""
    from monitor.state import apply_account_event

    start = AccountState.from_dict(account())
    february = _opportunity_event("2025-02-20T00:00:00Z", 300.0)
    won = _opportunity_event("2025-04-08T00:00:00Z", 300.0, stage="won")
    first, second = (february, won) if order == "in time" else (won, february)
    before = apply_account_event(start, february)
    after = apply_account_event(apply_account_event(start, first), second)
    assert features_at(after, AT)["pipeline"] == features_at(before, AT)["pipeline"] == 700.0
    assert month_facts(after.public_dict(), APRIL) == month_facts(before.public_dict(), APRIL)
    may = datetime(2025, 5, 1, tzinfo=timezone.utc)
    assert features_at(after, may)["pipeline"] == 400.0 and after.open_pipeline == 400.0
