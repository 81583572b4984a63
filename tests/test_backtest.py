"""The backtest runs the live code over a file; on a recorded simulator file it finds what the worker finds."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from simulator import default_shock, generate_company, generate_events, local_shock
from simulator.company import admin2_of
from core import topics
from core.settings import Settings
from tests.kafka_io import committed_offsets, end_offsets, produce, read_all, wait_for
from tests.services import in_own_process


def recorded(tmp_path, accounts: int = 800, months: int = 20):
    company = generate_company(seed=7, n_accounts=accounts)
    shock = default_shock(company)
    events = generate_events(company, months=months, shock=shock, seed=7)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(envelope) + "\n" for _, _, envelope in events), encoding="utf-8")
    return events, path, shock


def key(signal: dict) -> tuple:
    return signal["kind"], signal["subject"]["id"], signal["state"], signal["detected_at"]


@pytest.mark.slow
def test_backtest_command_writes_signals_proposals_and_summary(tmp_path):
    _, path, shock = recorded(tmp_path)
    with path.open("a") as file:  # a bad line goes where a bad message would: dead-lettered, counted
        file.write("{not json\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "territory.cli", "backtest", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        # Proposals are asserted to exist, not to be the best: a shorter solve than the default 20 s.
        env={**os.environ, "TERRITORY_SOLVER_TIME_LIMIT_S": "5"},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    signals = [json.loads(line) for line in (out / "signals.jsonl").read_text().splitlines()]
    proposals = [json.loads(line) for line in (out / "proposals.jsonl").read_text().splitlines()]
    assert summary["outcomes"] == {"applied": summary["events"] - 1, "deadlettered": 1}
    # The shocked region is R05's home (Stuttgart): R05 falls under the band after the shock of March 2025.
    under = [
        s
        for s in signals
        if s["kind"] == "imbalance" and s["state"] == "under" and s["evidence"]["metric"] == "potential"
    ]
    assert under and under[0]["subject"]["id"] == "R05" and under[0]["detected_at"] > "2025-03-15"
    assert len(proposals) == summary["proposals"] >= 1
    # The market-shock detector names the shocked region, after the shock began.
    shocks = [s for s in signals if s["kind"] == "market_shock" and s["state"] == "drop"]
    assert [s["subject"]["id"] for s in shocks] == [f"DE-{shock.region}"]
    assert shocks[0]["detected_at"] > shock.start.isoformat()
    # With the learned potential the shocked region's rep is flagged under its fair share.
    assert any(p["before"] for p in proposals)
    assert all(s["detected_at"] for s in signals)


def read_and_judged(broker, worker, app_id: str, events, *, read_s: float, judged_s: float) -> None:
    """Produce `events`, wait until the worker's group has committed every input partition's
    end, then until the planner judges at the last event time (less the lateness): once every
    stream is read to its end it does. The planner judges day by day: with another broker
    test on the two cores that takes minutes, so the bounds are wide (a wait ends when met)."""
    produce(broker.bootstrap_servers, events)
    ends = end_offsets(broker.bootstrap_servers, {t: broker.partitions for t in topics.INPUT_TOPICS})
    wait_for(
        lambda: all(
            offset >= ends[tp] for tp, offset in committed_offsets(broker.bootstrap_servers, app_id, ends).items()
        ),
        read_s,
        "the live worker",
    )
    last = datetime.fromisoformat(max(envelope["occurred_at"] for _, _, envelope in events))
    judged_last = last - timedelta(days=Settings().lateness_days)
    wait_for(
        lambda: worker.metric("territory_planner_event_time_watermark_seconds") >= judged_last.timestamp(),
        judged_s,
        "the planner to reach the last event time",
    )


def offline_signals(path, **settings) -> list[dict]:
    """The backtest's signals for a file (run in a process of its own, beside a live worker)."""
    from territory.backtest import read_events, run_backtest

    return run_backtest(read_events(path), Settings(**settings)).signals


@pytest.mark.slow
def test_backtest_finds_the_signals_the_live_worker_found(tmp_path, broker, start_worker):
    events, path, shock = recorded(tmp_path)
    # Signals are compared, not proposals: each solve (it takes cores from the judging) gets 5 s, not 20.
    with in_own_process(functools.partial(offline_signals, path, solver_time_limit_s=5)) as offline_run:
        worker = start_worker(TERRITORY_APP_ID="live", TERRITORY_SOLVER_TIME_LIMIT_S="5")
        read_and_judged(broker, worker, "live", events, read_s=300, judged_s=300)
        live = [value for _, value in read_all(broker.bootstrap_servers, topics.SIGNALS, quiet_s=8)]
        offline = offline_run.result(timeout=600)
    assert worker.metric("territory_model_mean_absolute_error") > 0  # the model's prequential error is exposed
    assert live, "the live worker found nothing"
    assert sorted(map(key, live)) == sorted(map(key, offline))
    assert (f"DE-{shock.region}", "drop") in {
        (s["subject"]["id"], s["state"]) for s in live if s["kind"] == "market_shock"
    }
    # The local shock detector names the area too: the account nearest its centre is in the
    # shocked region. The proposal the market shock triggers draws it on the review's map (the
    # local shock, found later while that proposal waits, triggers none of its own here).
    local = [s for s in live if s["kind"] == "local_shock" and s["state"] == "drop"]
    assert local, "no local area named"
    lat, lon = local[0]["evidence"]["centre"]
    company = generate_company(seed=7, n_accounts=800)
    nearest = min(company.accounts, key=lambda a: (a.lat - lat) ** 2 + ((a.lon - lon) * 0.66) ** 2)
    assert nearest.region == shock.region
    proposals = [value for _, value in read_all(broker.bootstrap_servers, topics.PROPOSALS, quiet_s=2)]
    triggered = [p for p in proposals if any(area["kind"] == "market_shock" for area in p.get("shocks") or [])]
    assert triggered, "no proposal names the market shock"
    found = {s["signal_id"]: s["detected_at"] for s in live}
    for proposal in proposals:
        for area in proposal.get("shocks") or []:
            found_at, made_at = found[area["signal_id"]], proposal["event_time"]
            assert datetime.fromisoformat(found_at) <= datetime.fromisoformat(made_at), "named before it was found"


# A county and its neighbours (Köln and nine counties around it, 12 % of the sales) buy 30 %
# less from July 2024 on; the stream ends with 2024, about two months after the detector has
# enough evidence for the drop in this draw.
LOCAL_ACCOUNTS, LOCAL_SEED, LOCAL_END = 800, 8, "2025-01-01"


def local_scenario():
    company = generate_company(seed=7, n_accounts=LOCAL_ACCOUNTS)
    shock = local_shock(company, after_months=6, min_share=0.12, factor=0.7)
    events = generate_events(company, months=18, shock=shock, seed=LOCAL_SEED)
    return company, shock, [e for e in events if e[2]["occurred_at"] < LOCAL_END]


def area_id(label: str) -> str:
    """'Köln, Stadt, Nordrhein-Westfalen (DE-07-05315)' -> 'DE-07-05315'."""
    return label.rsplit("(", 1)[-1].rstrip(")")


def assert_names_the_local_shock(signals: list[dict], company, shock) -> None:
    """A local_shock drop after the start names the shocked counties (the one with the most
    orders first), its centre lies among the shocked accounts, its reps include the reps who
    own most of the shocked sales; no market_shock for a region the shock is not in."""
    hit = {a.account_id for a, h in zip(company.accounts, shock.covers(company.accounts)) if h}
    local = [
        s
        for s in signals
        if s["kind"] == "local_shock" and s["state"] == "drop" and s["detected_at"] > shock.start.isoformat()
    ]
    named = [s for s in local if area_id(s["evidence"]["areas"][0]) in shock.areas]
    assert named, [(s["subject"]["name"], s["evidence"]["areas"][:3]) for s in local]
    found = named[0]
    evidence = found["evidence"]
    counties = dict(zip((a.account_id for a in company.accounts), admin2_of(company.accounts)))
    largest = max(
        sorted(shock.areas),
        key=lambda area: sum(a.true_potential for a in company.accounts if counties[a.account_id] == area),
    )
    assert largest in {area_id(label) for label in evidence["areas"]}
    assert evidence["started_on"] >= (shock.start - timedelta(days=60)).date().isoformat()
    lat, lon = evidence["centre"]
    nearest = min(company.accounts, key=lambda a: (a.lat - lat) ** 2 + ((a.lon - lon) * 0.63) ** 2)
    assert nearest.account_id in hit
    sales: dict[str, float] = {}
    for a in company.accounts:
        if a.account_id in hit:
            sales[a.rep_id] = sales.get(a.rep_id, 0.0) + a.true_potential
    assert max(sales, key=sales.__getitem__) in evidence["reps"]
    shocked_region = f"{company.country}-{shock.region}"
    assert [s["subject"]["id"] for s in signals if s["kind"] == "market_shock"] in ([], [shocked_region])


@pytest.mark.slow
def test_the_backtest_finds_and_names_a_county_sized_shock():
    from territory.backtest import run_backtest

    company, shock, events = local_scenario()
    assert "DE-07-05315" in shock.areas and len(shock.areas) > 1  # Köln and its neighbours
    assert_names_the_local_shock(run_backtest(events, Settings()).signals, company, shock)


@pytest.mark.slow
def test_the_live_worker_names_a_county_sized_shock(broker, start_worker):
    """The same county-sized shock through the real broker: the live worker's local_shock signal
    names the shocked counties."""
    company, shock, events = local_scenario()
    worker = start_worker(TERRITORY_APP_ID="local", TERRITORY_SOLVER_TIME_LIMIT_S="5")  # signals asserted only
    read_and_judged(broker, worker, "local", events, read_s=300, judged_s=300)
    signals = [value for _, value in read_all(broker.bootstrap_servers, topics.SIGNALS, quiet_s=5)]
    assert_names_the_local_shock(signals, company, shock)


@pytest.mark.slow
def test_potentials_revalued_only_for_changed_accounts_equal_a_full_revaluation(monkeypatch):
    """The planner values only accounts that changed since its last judgement in the same
    month; the judgements equal those of a planner that values everyone every time."""
    import planner.planner as planner_module
    from territory.backtest import run_backtest

    company = generate_company(seed=5, n_reps=5, n_accounts=300)
    events = generate_events(company, months=15, shock=default_shock(company), seed=5)
    cached = run_backtest(events, Settings())

    original = planner_module.Planner._learn_and_value

    def value_everyone(self, *args, **kwargs):
        self._valued_month = None
        return original(self, *args, **kwargs)

    monkeypatch.setattr(planner_module.Planner, "_learn_and_value", value_everyone)
    full = run_backtest(events, Settings())
    assert [s["signal_id"] for s in cached.signals] == [s["signal_id"] for s in full.signals]
    # Sums over accounts in another order differ in the last bits: figures within 1e-9.
    assert cached.aggregates.keys() == full.aggregates.keys() and cached.aggregates
    for rep_id, aggregate in cached.aggregates.items():
        other = full.aggregates[rep_id]
        assert aggregate.accounts == other.accounts, rep_id
        for figure in ("potential", "workload_min", "capacity_fte", "share", "fair_share"):
            assert getattr(aggregate, figure) == pytest.approx(getattr(other, figure), rel=1e-9), (rep_id, figure)
    assert [p["proposal_id"] for p in cached.proposals] == [p["proposal_id"] for p in full.proposals]


def test_an_event_whose_type_is_no_string_is_dead_lettered_not_a_crash(tmp_path):
    from territory.backtest import read_events, run_backtest

    path = tmp_path / "events.jsonl"
    envelopes = [
        {"type": ["account.upserted"], "data": {"account_id": "a1"}},  # unhashable: was a TypeError
        {"type": {"account": 1}},
        {"type": None, "data": "not an object"},
    ]
    path.write_text("".join(json.dumps(envelope) + "\n" for envelope in envelopes), encoding="utf-8")
    messages = read_events(path)
    assert [(topic, key) for topic, key, _ in messages] == [
        (topics.ORDERS, "a1"),
        (topics.ORDERS, ""),
        (topics.ORDERS, ""),
    ]
    assert run_backtest(messages, Settings()).outcomes == {"deadlettered": 3}
