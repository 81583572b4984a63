"""The planner's decisions: warm-up, signals with evidence, one rebalance per burst, cooldown."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from planner.planner import Planner
from planner.agents import _export_aggregates
from planner.session import PlanningSession
from core.metrics import Metrics
from monitor.state import AccountState, RepState
from core.clock import ManualClock
from core.settings import Settings

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def FakeClock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))


def published(evaluation) -> list[dict]:
    """The evaluation's signals as they go on the topic."""
    return [signal.to_json() for signal in evaluation.signals]


def company(a_sales: float) -> tuple[list[AccountState], list[RepState]]:
    reps = [RepState("A", 52.5, 13.4), RepState("B", 53.5, 10.0)]
    accounts = [
        AccountState("a1", 52.5, 13.4, rep_id="A", known=True, monthly_sales={"2025-03": a_sales}),
        AccountState("a2", 52.6, 13.5, rep_id="A", known=True, monthly_sales={"2025-03": 100.0}),
        AccountState("b1", 53.5, 10.0, rep_id="B", known=True, monthly_sales={"2025-03": 200.0}),
    ]
    return accounts, reps


def planner(clock: ManualClock, **changes) -> Planner:
    settings = Settings(
        tolerance=0.10, hysteresis=0.8, warmup_days=30, rebalance_cooldown_s=60, potential="trailing", **changes
    )  # decision logic on exact, hand-made potentials
    return Planner(settings, clock=clock)  # the cooldown is measured on it too


def test_nothing_is_judged_during_warm_up():
    clock = FakeClock()
    accounts, reps = company(a_sales=300.0)
    # The stream began 13 days before the judged month ends (warm-up: 30 days); March's sales count.
    first_event_at = datetime(2025, 3, 20, tzinfo=timezone.utc)
    evaluation = planner(clock).evaluate(
        accounts, reps, watermark=datetime(2025, 4, 2, tzinfo=timezone.utc), first_event_at=first_event_at
    )
    assert evaluation.signals == [] and evaluation.rebalance is None
    assert evaluation.imbalance > 0.3  # the figures are still computed for the dashboards


def test_signals_then_one_rebalance_and_cooldown():
    clock, watermark = FakeClock(), datetime(2025, 4, 2, tzinfo=timezone.utc)
    subject = planner(clock)
    accounts, reps = company(a_sales=300.0)  # A: 400 of 600 -> +33%
    first = subject.evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert {(s["subject"]["id"], s["state"], s["severity"]) for s in published(first)} == {
        ("A", "over", "critical"),
        ("B", "under", "critical"),
    }
    assert published(first)[0]["evidence"]["band"] == [0.45, 0.55]
    # Judged on complete months: as of the start of the watermark's month, whatever the day.
    assert published(first)[0]["detected_at"] == "2025-04-01T00:00:00+00:00"
    assert first.rebalance is not None
    assert first.rebalance.tolerance == pytest.approx(0.08)  # aims inside the detector's leave band
    assert set(first.rebalance.trigger_signal_ids) == {s["signal_id"] for s in published(first)}
    assert {a.account_id: a.potential for a in first.rebalance.accounts} == {"a1": 300.0, "a2": 100.0, "b1": 200.0}

    # Same picture again: no new signal, no new proposal.
    again = subject.evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert again.signals == [] and again.rebalance is None


def test_cooldown_holds_a_new_rebalance_until_it_expires():
    clock, watermark = FakeClock(), datetime(2025, 4, 2, tzinfo=timezone.utc)
    subject = planner(clock)
    subject.evaluate(*company(a_sales=300.0), watermark=watermark, first_event_at=START)
    subject.evaluate(*company(a_sales=125.0), watermark=watermark, first_event_at=START)  # back in band: cleared
    clock.advance(timedelta(seconds=10))
    held = subject.evaluate(*company(a_sales=300.0), watermark=watermark, first_event_at=START)
    assert held.signals and held.rebalance is None and subject.rebalance_pending
    clock.advance(timedelta(seconds=60))
    released = subject.evaluate(*company(a_sales=300.0), watermark=watermark, first_event_at=START)
    assert released.signals == [] and released.rebalance is not None
    assert not subject.rebalance_pending


def test_state_restores_detector_and_pending_signals():
    clock, watermark = FakeClock(), datetime(2025, 4, 2, tzinfo=timezone.utc)
    subject = planner(clock)
    subject.evaluate(*company(a_sales=300.0), watermark=watermark, first_event_at=START)
    restored = planner(clock)
    restored.load_state_dict(subject.state_dict())
    assert restored.evaluate(*company(a_sales=300.0), watermark=watermark, first_event_at=START).signals == []


def test_rep_leaving_is_an_immediate_coverage_gap_with_a_placement_only_request():
    clock = FakeClock()
    subject = planner(clock)
    accounts, reps = company(a_sales=100.0)
    reps[1].active = False  # B leaves; still inside the warm-up: a gap does not wait for it
    evaluation = subject.evaluate(accounts, reps, watermark=START + timedelta(days=5), first_event_at=START)
    gaps = [s for s in published(evaluation) if s["kind"] == "coverage_gap"]
    assert [(g["subject"]["id"], g["state"], g["severity"]) for g in gaps] == [("B", "open", "critical")]
    assert gaps[0]["evidence"]["accounts_without_rep"] == 1 and gaps[0]["evidence"]["account_ids"] == ["b1"]
    assert evaluation.rebalance.mode == "place"
    assert [r.rep_id for r in evaluation.rebalance.reps] == ["A"]
    assert evaluation.rebalance.trigger_signal_ids == [gaps[0]["signal_id"]]
    # Same orphans again: no second signal or placement.
    again = subject.evaluate(accounts, reps, watermark=START + timedelta(days=6), first_event_at=START)
    assert again.signals == [] and again.rebalance is None
    # B comes back: the gap is cleared.
    reps[1].active = True
    back = subject.evaluate(accounts, reps, watermark=START + timedelta(days=7), first_event_at=START)
    assert [(s["kind"], s["state"]) for s in published(back)] == [("coverage_gap", "cleared")]


def test_every_month_crossed_is_judged_so_findings_are_dated_the_same_whatever_the_batching():
    reps = [RepState("A", 52.5, 13.4), RepState("B", 53.5, 10.0)]
    accounts = [
        AccountState("a1", 52.5, 13.4, rep_id="A", known=True, monthly_sales={"2025-01": 100.0, "2025-03": 1000.0}),
        AccountState("b1", 53.5, 10.0, rep_id="B", known=True, monthly_sales={"2025-01": 100.0}),
    ]
    one_jump, step_by_step = planner(FakeClock()), planner(FakeClock())
    start = datetime(2024, 12, 1, tzinfo=timezone.utc)
    one_jump.evaluate(accounts, reps, watermark=datetime(2025, 2, 15, tzinfo=timezone.utc), first_event_at=start)
    jumped = published(
        one_jump.evaluate(accounts, reps, watermark=datetime(2025, 6, 10, tzinfo=timezone.utc), first_event_at=start)
    )
    stepped = []
    for month in (2, 3, 4, 5, 6):
        stepped += published(
            step_by_step.evaluate(
                accounts, reps, watermark=datetime(2025, month, 3, tzinfo=timezone.utc), first_event_at=start
            )
        )
    key = lambda s: (s["subject"]["id"], s["state"], s["detected_at"])  # noqa: E731
    assert (
        sorted(map(key, jumped))
        == sorted(map(key, stepped))
        == [("A", "over", "2025-04-01T00:00:00+00:00"), ("B", "under", "2025-04-01T00:00:00+00:00")]
    )


def test_workload_imbalance_is_signalled_but_does_not_trigger_a_rebalance():
    reps = [RepState("A", 52.5, 13.4), RepState("B", 53.5, 10.0)]
    accounts = [
        AccountState(
            "a1",
            52.5,
            13.4,
            rep_id="A",
            known=True,
            monthly_sales={"2025-03": 100.0},
            monthly_minutes={"2025-03": 900.0},
        ),
        AccountState(
            "b1",
            53.5,
            10.0,
            rep_id="B",
            known=True,
            monthly_sales={"2025-03": 100.0},
            monthly_minutes={"2025-03": 300.0},
        ),
    ]
    evaluation = planner(FakeClock()).evaluate(
        accounts, reps, watermark=datetime(2025, 4, 2, tzinfo=timezone.utc), first_event_at=START
    )
    workload = [
        (s["subject"]["id"], s["state"]) for s in published(evaluation) if s["evidence"]["metric"] == "workload"
    ]
    assert sorted(workload) == [("A", "over"), ("B", "under")]
    assert evaluation.rebalance is None  # potential is balanced; the rebalancer does not balance workload yet


def test_orders_of_snapshots_read_again_after_a_restart_count_once():
    """The planner's checkpoint can already hold the orders of snapshots it reads again after a
    crash; the regional daily sales must not count them twice."""
    planner = Planner(Settings())
    orders = [["2025-03-03", 100.0, "o1"], ["2025-03-03", 50.0, "o2"]]
    planner.observe_orders("DE-11", orders)
    restored = Planner(Settings())
    restored.load_state_dict(planner.state_dict())
    restored.observe_orders("DE-11", orders + [["2025-03-03", 7.0, "o3"]])
    assert restored.state_dict()["orders.2025-03-03"]["sales"] == {"DE-11": [157.0, 3]}


def test_regional_sales_judged_late_feed_the_shock_detector_as_when_judged_in_step():
    """A planner that first judges after a long catch-up (a restart, a replay read unevenly)
    knew every region from the first day it judged, and fed regions zeros for the days before
    their first order; one judging day by day did not. The detector states differ, and with
    them what it finds later. A region is now judged from its first order day either way."""
    from planner.planner import Evaluation

    rng = random.Random(5)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    days = [(start + timedelta(days=n)).date().isoformat() for n in range(120)]
    orders = {
        region: [
            [day, round(rng.uniform(50, 150), 2), f"{region}-{day}-{k}"]
            for day in days[first:]
            for k in range(rng.randrange(1, 4))
        ]
        for region, first in (("DE-01", 0), ("DE-02", 0), ("DE-03", 0), ("FR-44", 60))
    }
    in_step, caught_up = Planner(Settings()), Planner(Settings())
    for n, day in enumerate(days):
        for region, region_orders in orders.items():
            of_the_day = [o for o in region_orders if o[0] == day]
            if of_the_day:  # as the planner sees them: a region is known from its first order
                in_step.observe_orders(region, of_the_day)
        in_step._judge_markets(
            (start + timedelta(days=n)).date(), Evaluation(aggregates={}, imbalance=0.0), ([], [], 12, start)
        )
    for region, region_orders in orders.items():
        caught_up.observe_orders(region, region_orders)
    caught_up._judge_markets(
        (start + timedelta(days=len(days) - 1)).date(), Evaluation(aggregates={}, imbalance=0.0), ([], [], 12, start)
    )
    assert caught_up.state_dict()["judged_day"] == in_step.state_dict()["judged_day"]
    assert caught_up.detector("market_shock").state_dict() == in_step.detector("market_shock").state_dict()


class OneShock:
    """A shock detector that finds one drop of `size` on the accounts of `rep_id`, once."""

    name = kind = "test_shock"
    states = ("drop",)
    triggers_rebalance = False

    def __init__(self, rep_id: str, size: float) -> None:
        from detectors import CompanyCoverage

        self.observes = CompanyCoverage
        self.rep_id, self.size, self.fired = rep_id, size, False

    def observe(self, coverage):
        if self.fired:
            return []
        self.fired = True
        from types import SimpleNamespace

        return [
            SimpleNamespace(
                size=self.size, accounts=[a.account_id for a in coverage.accounts if a.rep_id == self.rep_id]
            )
        ]

    def signal(self, finding, emitted_at):
        from core.records import Signal, Subject

        return Signal.make(
            kind=self.kind,
            state="drop",
            severity="critical",
            subject=Subject("area", self.rep_id),
            evidence={"size": self.size, "started_on": "2025-03-10"},
            detected_at=datetime(2025, 3, 20, tzinfo=timezone.utc),
            emitted_at=emitted_at,
        )

    def affected_accounts(self, finding, accounts):
        return frozenset(finding.accounts)

    def open_subjects(self):
        return None

    def state_dict(self):
        return {"fired": self.fired}

    def load_state_dict(self, state):
        self.fired = bool(state.get("fired"))


def test_a_shock_moves_its_accounts_potential_at_once_and_triggers_the_proposal():
    """Balanced by trailing sales (A 300, B 300); a 40 % drop on A's accounts puts A under the
    band at once: the proposal that follows names the shock among its triggers."""
    from detectors import standard_detectors
    from detectors.protocol import ShockDetector

    settings = Settings(tolerance=0.10, hysteresis=0.8, warmup_days=30, rebalance_cooldown_s=60, potential="trailing")
    accounts, reps = company(a_sales=200.0)  # A: 200 + 100, B: 200 + 100 (b1 below)
    accounts[2] = AccountState("b1", 53.5, 10.0, rep_id="B", known=True, monthly_sales={"2025-03": 300.0})
    accounts.append(AccountState("b2", 53.6, 10.1, rep_id="B", known=True, monthly_sales={}))
    shock = OneShock("A", -0.4)
    assert isinstance(shock, ShockDetector)
    planner = Planner(settings, clock=FakeClock(), detectors=[*standard_detectors(settings), shock])
    evaluation = planner.evaluate(
        accounts, reps, watermark=datetime(2025, 4, 2, tzinfo=timezone.utc), first_event_at=START
    )
    (shock_signal,) = [s for s in evaluation.signals if s.kind == "test_shock"]
    under = [s for s in evaluation.signals if s.kind == "imbalance" and s.state == "under"]
    assert [s.subject.id for s in under] == ["A"]
    assert evaluation.rebalance is not None
    assert shock_signal.signal_id in evaluation.rebalance.trigger_signal_ids
    # The request carries the shocked potential: A's accounts at 60 %.
    by_id = {a.account_id: a.potential for a in evaluation.rebalance.accounts}
    assert by_id["a1"] == pytest.approx(120.0) and by_id["b1"] == pytest.approx(300.0)
    # The proposal carries the shock's area for the review's map: A's two accounts.
    from rebalancer import minimal_moves

    request = evaluation.rebalance
    result = minimal_moves(request.accounts, request.reps, tolerance=request.tolerance, time_limit_s=5, num_workers=1)
    (area,) = planner.proposal(request, result, datetime(2025, 4, 2, tzinfo=timezone.utc)).shocks
    assert area["signal_id"] == shock_signal.signal_id and area["accounts"] == 2 and area["direction"] == "drop"
    assert area["centre"] == pytest.approx([52.55, 13.45]) and 0 < area["radius_km"] < 10
    # The factor is part of the checkpoint.
    restored = Planner(settings, clock=FakeClock(), detectors=[*standard_detectors(settings), OneShock("A", -0.4)])
    restored.load_state_dict(planner.state_dict())
    assert restored.state_dict()["shock_factors"] == planner.state_dict()["shock_factors"] != {}


def test_a_shock_still_in_force_is_on_the_map_of_a_later_proposal_it_did_not_trigger():
    """A small drop on A's accounts keeps everyone in band: no proposal then. A month later B's
    sales grow out of band; that proposal answers the imbalance, and the shock, whose factor
    still shapes A's potential, is drawn on its map too."""
    from detectors import standard_detectors
    from rebalancer import minimal_moves

    settings = Settings(tolerance=0.10, hysteresis=0.8, warmup_days=30, rebalance_cooldown_s=0, potential="trailing")
    accounts, reps = company(a_sales=200.0)  # A 300, B 200 + 100 below: balanced
    accounts.append(AccountState("b2", 53.6, 10.1, rep_id="B", known=True, monthly_sales={"2025-03": 100.0}))
    planner = Planner(settings, clock=FakeClock(), detectors=[*standard_detectors(settings), OneShock("A", -0.05)])
    april = planner.evaluate(accounts, reps, watermark=datetime(2025, 4, 2, tzinfo=timezone.utc), first_event_at=START)
    (shock_signal,) = [s for s in april.signals if s.kind == "test_shock"]
    assert april.rebalance is None
    grown = [
        AccountState(
            a.account_id,
            a.lat,
            a.lon,
            rep_id=a.rep_id,
            known=True,
            monthly_sales={**a.monthly_sales, "2025-04": 900.0 if a.rep_id == "B" else 0.0},
        )
        for a in accounts
    ]
    may = planner.evaluate(grown, reps, watermark=datetime(2025, 5, 2, tzinfo=timezone.utc), first_event_at=START)
    request = may.rebalance
    assert request is not None and shock_signal.signal_id not in request.trigger_signal_ids
    result = minimal_moves(request.accounts, request.reps, tolerance=request.tolerance, time_limit_s=5, num_workers=1)
    proposal = planner.proposal(request, result, datetime(2025, 5, 2, tzinfo=timezone.utc))
    assert [area["signal_id"] for area in proposal.shocks or ()] == [shock_signal.signal_id]


def test_district_scope_judges_and_rebalances_each_district_alone():
    # North (N1, N2) is balanced within itself but carries most of the company; South (S1, S2)
    # is not. Company-wide every North rep is over; by district only South is off, and its
    # proposal moves no account across the districts.
    reps = [
        RepState("N1", 53.5, 10.0, district="North", sales_region="Germany"),
        RepState("N2", 53.4, 10.2, district="North", sales_region="Germany"),
        RepState("S1", 48.1, 11.6, district="South", sales_region="Germany"),
        RepState("S2", 48.2, 11.4, district="South"),
    ]
    sales = {"n1": ("N1", 500.0), "n2": ("N2", 500.0), "s1": ("S1", 60.0), "s2": ("S1", 40.0), "s3": ("S2", 20.0)}
    accounts = [
        AccountState(
            a, 53.0 if rep.startswith("N") else 48.1, 10.5, rep_id=rep, known=True, monthly_sales={"2025-03": v}
        )
        for a, (rep, v) in sales.items()
    ]
    watermark = datetime(2025, 4, 2, tzinfo=timezone.utc)

    company_wide = planner(FakeClock()).evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert {s["subject"]["id"] for s in published(company_wide)} == {"N1", "N2", "S1", "S2"}

    by_district = planner(FakeClock(), rebalance_scope="district")
    evaluation = by_district.evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert {(s["subject"]["id"], s["state"]) for s in published(evaluation)} == {("S1", "over"), ("S2", "under")}
    assert evaluation.aggregates["S1"].fair_share == 0.5 and evaluation.aggregates["S1"].district == "South"
    request = evaluation.rebalance
    assert request is not None and request.districts == {"N1": "North", "N2": "North", "S1": "South", "S2": "South"}

    metrics = Metrics.create()
    _export_aggregates(metrics, evaluation)
    sample = metrics.registry.get_sample_value
    assert sample("territory_district_potential", {"district": "North"}) == pytest.approx(1000.0)
    assert sample("territory_district_accounts", {"district": "South"}) == 3
    assert sample("territory_district_imbalance_ratio", {"district": "North"}) == pytest.approx(0.0)
    assert sample("territory_district_imbalance_ratio", {"district": "South"}) == pytest.approx(2 / 3)
    # The district's region adds its reps up (S2 names none: it counts in no region).
    assert sample("territory_sales_region_potential", {"sales_region": "Germany"}) == pytest.approx(1100.0)
    assert sample("territory_sales_region_accounts", {"sales_region": "Germany"}) == 4

    session = PlanningSession(Settings(rebalance_scope="district", solver_workers=1), accounts={}, reps={}, meta={})
    session.judged_at = watermark
    proposal = session.solve(request)
    assert [(m.account_id, m.to_rep) for m in proposal.moves] == [("s2", "S2")]


def test_the_rebalancer_gets_each_active_reps_segments_caps_and_travel_factor():
    from planner.planner import rebalance_reps

    reps = [
        RepState(
            "R1",
            52.5,
            13.4,
            segments=["key"],
            min_accounts=2,
            max_accounts=9,
            travel_factor=1.3,
            min_workload=600.0,
            max_workload=2400.0,
        ),
        RepState("R2", 53.5, 10.0, active=False),
    ]
    (rep,) = rebalance_reps(reps)
    assert (rep.rep_id, rep.segments, rep.min_accounts, rep.max_accounts) == ("R1", ("key",), 2, 9)
    assert rep.travel_factor == 1.3
    assert (rep.min_workload, rep.max_workload) == (600.0, 2400.0)


def test_segment_pool_scope_judges_each_pool_of_specialists_against_its_own_segment():
    # K1 and K2 serve key accounts only, S1 small businesses only. Company-wide S1 (one
    # account of 100) is far under its fair third; as the only rep of its pool it is its pool's.
    reps = [
        RepState("K1", 53.5, 10.0, segments=["key"]),
        RepState("K2", 53.4, 10.2, segments=["key"]),
        RepState("S1", 48.1, 11.6, segments=["smb"]),
    ]
    sales = {"k1": ("K1", "key", 500.0), "k2": ("K2", "key", 450.0), "s1": ("S1", "smb", 100.0)}
    accounts = [
        AccountState(a, 50.0, 10.5, rep_id=rep, segment=seg, known=True, monthly_sales={"2025-03": v})
        for a, (rep, seg, v) in sales.items()
    ]
    watermark = datetime(2025, 4, 2, tzinfo=timezone.utc)
    company_wide = planner(FakeClock()).evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert ("S1", "under") in {(s["subject"]["id"], s["state"]) for s in published(company_wide)}

    pooled = planner(FakeClock(), rebalance_scope="segment_pool")
    evaluation = pooled.evaluate(accounts, reps, watermark=watermark, first_event_at=START)
    assert evaluation.signals == [] and evaluation.rebalance is None
    assert evaluation.aggregates["S1"].fair_share == 1.0
    assert evaluation.aggregates["K1"].fair_share == 0.5
    assert evaluation.aggregates["K1"].share == pytest.approx(500 / 950)


def test_district_scope_judges_workload_within_each_district():
    # Each district's reps carry equal workload, but North carries three times South's: judged
    # within each district (fair share 1/2) no rep is off; judged against the company's total
    # workload (1/4 each within a district) every rep would read "under".
    reps = [
        RepState("N1", 53.5, 10.0, district="North"),
        RepState("N2", 53.4, 10.2, district="North"),
        RepState("S1", 48.1, 11.6, district="South"),
        RepState("S2", 48.2, 11.4, district="South"),
    ]
    minutes = {"n1": ("N1", 900.0), "n2": ("N2", 900.0), "s1": ("S1", 300.0), "s2": ("S2", 300.0)}
    accounts = [
        AccountState(
            a,
            53.0 if rep.startswith("N") else 48.1,
            10.5,
            rep_id=rep,
            known=True,
            monthly_sales={"2025-03": 100.0},
            monthly_minutes={"2025-03": m},
        )
        for a, (rep, m) in minutes.items()
    ]
    watermark = datetime(2025, 4, 2, tzinfo=timezone.utc)
    evaluation = planner(FakeClock(), rebalance_scope="district").evaluate(
        accounts, reps, watermark=watermark, first_event_at=START
    )
    assert evaluation.aggregates["S1"].workload_share == pytest.approx(0.5)
    assert [s for s in published(evaluation) if s["evidence"]["metric"] == "workload"] == []
