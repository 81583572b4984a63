"""Quota pace: a rep's sales so far this calendar year against what their quota and the seasons
expect by now (detectors/quota_pace.py), from the detector alone to a signal the planner makes
from a rep.upserted with a quota, the alert people read and the metrics per rep."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from core.contract import parse_event
from core.records import Proposal, Signal
from core.settings import Settings
from detectors import Detector, MonthlyTerritories, QuotaPaceDetector, QuotaYear, standard_detectors
from detectors.quota_pace import STATE_VERSION, expected_share, month_shares, quota_standings, run_rate_test
from monitor.state import AccountState, RepAggregate, apply_rep_event
from core import topics

QUOTA = 1_200_000.0
FLAT = 100_000.0  # a month of a rep exactly on a straight-line pace of QUOTA
# A strongly seasonal year (mean 1): a slow first half, a busy end of year.
SEASONAL = (0.7, 0.7, 0.8, 0.9, 1.0, 1.0, 0.8, 0.6, 1.1, 1.2, 1.4, 1.8)


def at(year: int, month: int) -> datetime:
    """The moment a complete month is judged: the first day of the month after it."""
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)


def year_of(months: list[float], *, rep: str = "R1", quota: float | None = QUOTA, seasonal=None) -> QuotaYear:
    return QuotaYear(2025, len(months), {rep: tuple(months)}, {rep: quota} if quota is not None else {}, seasonal)


def states(detector: QuotaPaceDetector, months: list[float], **kw) -> list[tuple[str, str]]:
    found = detector.update(year_of(months, **kw), at(2025, len(months))).findings
    return [(finding.rep_id, finding.state) for finding in found]


def test_it_follows_the_protocol_and_is_registered_without_triggering_a_rebalance():
    detector = QuotaPaceDetector()
    assert isinstance(detector, Detector)
    assert detector.triggers_rebalance is False and detector.observes is MonthlyTerritories
    registered = [
        d for d in standard_detectors(Settings(quota_pace_behind=0.8, quota_pace_ahead=1.3)) if d.kind == "quota_pace"
    ]
    assert len(registered) == 1
    assert (registered[0].behind, registered[0].ahead, registered[0].hysteresis) == (0.8, 1.3, 0.8)


def test_behind_fires_from_the_second_complete_month_with_its_evidence():
    detector = QuotaPaceDetector()
    # January alone is never judged, however far behind.
    assert states(detector, [40_000.0]) == []
    assert detector.open_subjects() is None  # nothing judged yet
    (finding,) = detector.update(year_of([30_000.0, 100_000.0]), at(2025, 2)).findings
    assert (finding.rep_id, finding.state) == ("R1", "behind")
    signal = detector.signal(finding, datetime(2026, 1, 5, tzinfo=timezone.utc))
    assert (signal.kind, signal.state, signal.subject.type, signal.subject.id) == ("quota_pace", "behind", "rep", "R1")
    assert signal.severity == "critical"  # 65% of the expected: more than twice the 15% allowed off
    assert signal.detected_at == at(2025, 2)
    evidence = signal.evidence
    assert evidence["sales_to_date"] == 130_000.0 and evidence["expected_to_date"] == 200_000.0
    assert evidence["gap"] == -70_000.0 and evidence["pace"] == pytest.approx(0.65)
    assert evidence["attainment"] == pytest.approx(130_000 / QUOTA, abs=1e-4)
    assert evidence["projected_year_end"] == pytest.approx(780_000.0)
    assert evidence["quota"] == QUOTA and evidence["months_elapsed"] == 2 and evidence["year"] == 2025
    assert evidence["seasonal_basis"] == "straight_line" and evidence["threshold"] == 0.85
    assert detector.open_subjects() == 1
    assert not signal.resolved and not detector.triggers_rebalance


def test_ahead_fires_and_is_information():
    detector = QuotaPaceDetector()
    assert states(detector, [FLAT, FLAT]) == []  # exactly on pace
    assert detector.open_subjects() == 0
    (finding,) = detector.update(year_of([FLAT, FLAT, 180_000.0]), at(2025, 3)).findings  # 127%
    assert finding.state == "ahead"
    assert detector.signal(finding, at(2025, 3)).severity == "info"


def test_hysteresis_holds_a_state_until_the_narrower_band_is_regained():
    # The year-to-date test alone: these months swing far more than a month's noise, which the
    # run-rate test would (rightly) flag on its own (300,000 then 30,000).
    detector = QuotaPaceDetector(behind=0.85, ahead=1.2, hysteresis=0.8, run_rate_threshold=None)  # leave 0.88, 1.16
    months = [FLAT, 60_000.0, 100_000.0, 88_000.0, 150_000.0, 300_000.0, 30_000.0, 50_000.0]
    # pace by month:   0.80 behind, 0.867 and 0.87 held, 0.996 cleared, 1.33 ahead, 1.183 held, 1.098 cleared
    found = [states(detector, months[:n]) for n in range(2, 9)]
    assert found == [[("R1", "behind")], [], [], [("R1", "on_pace")], [("R1", "ahead")], [], [("R1", "on_pace")]]
    (cleared,) = (
        QuotaPaceDetector()
        .load_state_dict({"states": {"R1": "behind"}})
        .update(year_of(months[:5]), at(2025, 5))
        .findings
    )
    signal = QuotaPaceDetector().signal(cleared, at(2025, 5))
    assert signal.state == "cleared" and signal.resolved and signal.severity == "info"
    assert signal.evidence["threshold"] == pytest.approx(0.88)


def test_no_quota_no_judgement():
    detector = QuotaPaceDetector()
    assert states(detector, [1.0, 1.0], quota=None) == []
    assert states(detector, [1.0, 1.0], quota=0.0) == []  # nothing to be behind of
    assert detector.open_subjects() is None
    # An observation without the year (made again after a shock) judges nothing and keeps states.
    assert states(detector, [FLAT, 50_000.0]) == [("R1", "behind")]
    aggregates = {"R1": RepAggregate("R1", 10, 1000.0, 0.0, 1.0, 1.0, 1.0)}
    assert detector.observe(MonthlyTerritories(at(2025, 2), aggregates)) == []
    assert detector.open_subjects() == 1
    # The quota removed while behind: the incident ends, with no figures to show.
    (gone,) = detector.update(year_of([FLAT, 50_000.0], quota=None), at(2025, 2)).findings
    signal = detector.signal(gone, at(2025, 2))
    assert signal.state == "cleared" and signal.evidence["quota"] is None and signal.evidence["pace"] is None
    assert detector.open_subjects() is None


def test_expected_to_date_follows_the_seasonal_index_else_a_straight_line():
    assert expected_share(3, None) == (0.25, "straight_line")
    share, basis = expected_share(3, SEASONAL)
    assert basis == "seasonal" and share == pytest.approx(2.2 / 12)
    # A rep selling with the seasons: behind on a straight line, on pace with the index.
    months = [QUOTA / 12 * factor for factor in SEASONAL[:3]]
    assert states(QuotaPaceDetector(), months) == [("R1", "behind")]  # 2.2 / 3 = 0.73 of a straight line
    seasonal = QuotaPaceDetector()
    assert states(seasonal, months, seasonal=SEASONAL) == []
    (standing,) = quota_standings(year_of(months, seasonal=SEASONAL)).values()
    assert standing.pace == pytest.approx(1.0) and standing.projected_year_end == pytest.approx(QUOTA)
    assert standing.expected_to_date == pytest.approx(QUOTA * 2.2 / 12) and standing.basis == "seasonal"
    # Through November the same rep reads 93% of a straight line: the index keeps it at 100%.
    eleven = [QUOTA / 12 * factor for factor in SEASONAL[:11]]
    assert quota_standings(year_of(eleven))["R1"].pace == pytest.approx(10.2 / 11)
    assert quota_standings(year_of(eleven, seasonal=SEASONAL))["R1"].pace == pytest.approx(1.0)


def test_the_state_survives_a_restart_as_json():
    detector = QuotaPaceDetector()
    assert states(detector, [FLAT, 60_000.0]) == [("R1", "behind")]
    saved = json.loads(json.dumps(detector.state_dict()))
    restored = QuotaPaceDetector().load_state_dict(saved)
    assert restored.open_subjects() == 1 and restored.state_dict() == detector.state_dict()
    assert states(restored, [FLAT, 60_000.0, 100_000.0]) == []  # still behind: no repeat
    with pytest.raises(ValueError, match="unknown"):
        QuotaPaceDetector().load_state_dict({**saved, "states": {"R1": "asleep"}})


def test_a_new_year_states_an_open_incident_again_with_its_figures():
    detector = QuotaPaceDetector()
    assert states(detector, [FLAT, 40_000.0]) == [("R1", "behind")]
    # January of the next year is not judged; at its second month the open incident is stated
    # again with the new year's figures (same state, new evidence), or cleared.
    nxt = QuotaYear(2026, 1, {"R1": (10_000.0,)}, {"R1": QUOTA})
    assert detector.update(nxt, at(2026, 1)).findings == []
    nxt = QuotaYear(2026, 2, {"R1": (10_000.0, 10_000.0)}, {"R1": QUOTA})
    (again,) = detector.update(nxt, at(2026, 2)).findings
    assert again.state == "behind" and detector.signal(again, at(2026, 2)).evidence["year"] == 2026
    assert detector.update(nxt, at(2026, 2)).findings == []  # the same month judged again: nothing new


def test_a_planner_judges_quota_pace_from_a_rep_upserted_with_a_quota_and_orders():
    from planner.planner import Planner

    rep_event = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2025-01-01T00:00:00Z",
        "data": {"rep_id": "A", "home_lat": 52.5, "home_lon": 13.4, "quota": 120_000},
    }
    rep_a = apply_rep_event(parse_event(json.dumps(rep_event).encode(), topic=topics.REPS, key=b"A"))
    rep_b = apply_rep_event(
        parse_event(
            json.dumps(
                {**rep_event, "event_id": "r2", "data": {"rep_id": "B", "home_lat": 53.5, "home_lon": 10.0}}
            ).encode(),
            topic=topics.REPS,
            key=b"B",
        )
    )
    assert rep_a.quota == 120_000.0 and rep_b.quota is None
    # A sells 2,000 a month against the 10,000 a month its quota asks for; B has no quota.
    months = {f"2025-{m:02d}": 2_000.0 for m in range(1, 4)}
    accounts = [
        AccountState("a1", 52.5, 13.4, rep_id="A", known=True, monthly_sales=dict(months)),
        AccountState("b1", 53.5, 10.0, rep_id="B", known=True, monthly_sales=dict(months)),
    ]
    settings = Settings(warmup_days=30, potential="trailing", tolerance=0.5)
    planner = Planner(settings)
    start = datetime(2024, 12, 1, tzinfo=timezone.utc)
    # Judged through February: A's pace is 20% of the expected, B's is not judged.
    evaluation = planner.evaluate(accounts, [rep_a, rep_b], watermark=at(2025, 2), first_event_at=start)
    (signal,) = [s for s in evaluation.signals if s.kind == "quota_pace"]
    assert (signal.subject.id, signal.state, signal.evidence["months_elapsed"]) == ("A", "behind", 2)
    assert signal.evidence["expected_to_date"] == 20_000.0 and signal.evidence["sales_to_date"] == 4_000.0
    assert signal.evidence["seasonal_basis"] == "straight_line"  # trailing potentials: no seasonal index
    assert Signal.from_json(signal.to_json()) == signal
    assert evaluation.rebalance is None and not planner.rebalance_pending  # a pace gap moves no account
    assert set(evaluation.quota) == {"A"} and evaluation.quota["A"].attainment == pytest.approx(4_000 / 120_000)
    assert planner.out_of_band()["quota_pace"] == 1
    # The quota of a later year does not judge an earlier one.
    later = apply_rep_event(
        parse_event(
            json.dumps({**rep_event, "occurred_at": "2026-01-01T00:00:00Z"}).encode(), topic=topics.REPS, key=b"A"
        )
    )
    fresh = Planner(settings)
    judged = fresh.evaluate(accounts, [later, rep_b], watermark=at(2025, 2), first_event_at=start)
    assert [s for s in judged.signals if s.kind == "quota_pace"] == [] and judged.quota == {}
    # An event history that starts after January cannot tell the year's sales: not judged.
    late_start = Planner(settings).evaluate(
        accounts, [rep_a, rep_b], watermark=at(2025, 4), first_event_at=datetime(2025, 2, 3, tzinfo=timezone.utc)
    )
    assert [s for s in late_start.signals if s.kind == "quota_pace"] == []


def test_attainment_and_pace_are_exported_per_rep_with_a_quota():
    from core.metrics import Metrics
    from planner.agents import _export_aggregates
    from planner.planner import Evaluation

    aggregates = {rep: RepAggregate(rep, 10, 1000.0, 0.0, 1.0, 0.5, 0.5) for rep in ("A", "B")}
    standings = quota_standings(QuotaYear(2025, 3, {"A": (90_000.0,) * 3}, {"A": QUOTA}, SEASONAL))
    metrics = Metrics.create()
    _export_aggregates(metrics, Evaluation(aggregates, 0.0, quota=standings))

    def value(name: str, rep: str) -> float | None:
        return metrics.registry.get_sample_value(f"territory_rep_quota_{name}_ratio", {"rep": rep})

    assert value("attainment", "A") == pytest.approx(270_000 / QUOTA)
    assert value("pace", "A") == pytest.approx(270_000 / (QUOTA * 2.2 / 12))
    assert value("attainment", "B") is None and value("pace", "B") is None  # B has no quota
    # A's quota removed: its figures go, rather than stand at their last value.
    _export_aggregates(metrics, Evaluation(aggregates, 0.0))
    assert value("attainment", "A") is None and value("pace", "A") is None


def test_a_quota_pace_signal_reads_as_an_alert():
    from alerts.alert import alert_from_signal

    detector = QuotaPaceDetector(
        run_rate_threshold=None
    )  # the year to date's figures: a 200% month is a run rate ahead
    sales = [82_000.0, 80_000.0, 70_000.0, 75_000.0, 83_000.0]  # 390,000 of 500,000 expected
    (finding,) = detector.update(year_of(sales), at(2025, 5)).findings
    alert = alert_from_signal(Signal.from_json(detector.signal(finding, at(2025, 5)).to_json()))
    assert alert.summary == "R1 is behind quota pace: 78% of expected to date (gap -110,000), projected 78% of quota"
    assert alert.key == "quota_pace:rep:R1" and alert.status == "firing" and alert.severity == "warning"
    assert alert.labels["alertname"] == "TerritoryQuotaPace" and alert.labels["rep"] == "R1"
    assert "seasonal_basis=straight_line" in alert.description and "months_elapsed=5" in alert.description
    (ahead,) = detector.update(year_of([*sales, 600_000.0]), at(2025, 6)).findings
    assert alert_from_signal(detector.signal(ahead, at(2025, 6))).summary == (
        "R1 is ahead of quota pace: 165% of expected to date (gap +390,000), projected 165% of quota"
    )
    (back,) = detector.update(year_of([*sales, 200_000.0]), at(2025, 6)).findings
    resolved = alert_from_signal(detector.signal(back, at(2025, 6)))
    assert resolved.status == "resolved" and resolved.key == alert.key
    assert resolved.summary == "R1 is back on quota pace: 98% of expected to date"


def review_proposal(with_quota: bool) -> dict:
    from core.records import Proposal, ProposedMove, RepLoad

    homes = [{"rep_id": "A", "home_lat": 52.5, "home_lon": 13.4}, {"rep_id": "B", "home_lat": 53.5, "home_lon": 10.0}]
    if with_quota:
        homes[0].update(quota=QUOTA, quota_year=2025, quota_months=3, quota_attainment=0.1942, quota_pace=0.7768)
    return Proposal(
        proposal_id="prop-q",
        created_at=at(2025, 3),
        event_time=at(2025, 3),
        trigger_signals=("sig-1",),
        mode="minimal_moves",
        status="optimal",
        moves=(ProposedMove("a1", "A", "B", 100.0, 0.0, 12.0, "A is over its band"),),
        before=(RepLoad("A", 2, 400.0, 0.667, 0.5, 0.333), RepLoad("B", 1, 200.0, 0.333, 0.5, -0.333)),
        after=(RepLoad("A", 1, 300.0, 0.5, 0.5, 0.0), RepLoad("B", 2, 300.0, 0.5, 0.5, 0.0)),
        imbalance_before=0.333,
        imbalance_after=0.0,
        seconds=0.1,
        tolerance=0.1,
        reps=tuple(homes),
    ).to_json()


def test_the_weekly_review_shows_quota_columns_and_says_what_a_proposal_answers():
    from alerts.report import build_weekly_report

    report = build_weekly_report([Proposal.from_json(review_proposal(True))], week="2025-W14", generated_at=at(2025, 3))
    section = report.html[report.html.index('<section id="proposal-prop-q"') :]
    assert "What it answers:" in section and "Is the potential shared fairly between the territories" in section
    assert "Not quota pace" in section
    assert "quota attained</th>" in section and "quota pace</th>" in section
    assert ">19.4%</td>" in section and ">77.7%</td>" in section  # A; B has no quota: a dash
    assert "sales of January to March 2025 against the quota" in section
    assert "answers: Is the potential shared fairly" in report.text and "A 78% (attained 19%)" in report.text
    # Without any quota the table keeps its columns as they were; the question is still said.
    plain = build_weekly_report([Proposal.from_json(review_proposal(False))], week="2025-W14", generated_at=at(2025, 3))
    assert "quota attained" not in plain.html and "Not quota pace" in plain.html and "quota pace (" not in plain.text


def test_the_weekly_review_shows_each_reps_district_when_there_are_districts():
    from alerts.report import build_weekly_report

    proposal = review_proposal(False)
    for row, district in zip(proposal["reps"], ("North", "South")):
        row["district"] = district
    report = build_weekly_report([Proposal.from_json(proposal)], week="2025-W14", generated_at=at(2025, 3))
    section = report.html[report.html.index('<section id="proposal-prop-q"') :]
    assert "district</th>" in section and ">North</td>" in section and ">South</td>" in section
    plain = build_weekly_report([Proposal.from_json(review_proposal(False))], week="2025-W14", generated_at=at(2025, 3))
    assert "district</th>" not in plain.html


# --------------------------------------------------------------------------- the run-rate test

# A run-rate test with round figures: a month's noise 10 %, a 20 % change tuned for (a month
# counts as evidence of a fall below exp(log(0.8) / 2) = 0.894 of its expected), threshold 4.
RUN_RATE = dict(run_rate_noise=0.1, run_rate_threshold=4.0, run_rate_shift=0.2)
NO_SEASONS = (1.0,) * 12  # a learned index of a business without seasons: months of FLAT expected


def flat_year(months: list[float], **kw) -> QuotaYear:
    return year_of(months, seasonal=NO_SEASONS, **kw)


def seasonal_months(ratios: list[float], quota: float = QUOTA) -> list[float]:
    """Months of a rep selling `ratios` x what the seasonal index expects of each month."""
    return [quota * share * ratio for share, ratio in zip(month_shares(SEASONAL), ratios)]


def test_a_drop_in_a_late_month_is_found_by_the_run_rate_test_while_the_year_to_date_is_on_pace():
    detector = QuotaPaceDetector(**RUN_RATE)
    ratios = [1.0] * 8 + [0.7, 0.7, 0.7]  # 30 % down from September
    found = [states(detector, seasonal_months(ratios[:n]), seasonal=SEASONAL) for n in range(2, 12)]
    # September alone (2.45 noise units of evidence) is not enough; October makes 4.9 > 4.
    assert found == [[]] * 8 + [[("R1", "behind")], []]
    detector = QuotaPaceDetector(**RUN_RATE)
    for n in range(2, 10):
        detector.update(year_of(seasonal_months(ratios[:n]), seasonal=SEASONAL), at(2025, n))
    (finding,) = detector.update(year_of(seasonal_months(ratios[:10]), seasonal=SEASONAL), at(2025, 10)).findings
    assert finding.test == "run_rate" and finding.standing.pace > 0.85  # the year to date is on pace
    evidence = detector.signal(finding, at(2025, 10)).evidence
    assert evidence["test"] == "run_rate" and evidence["pace"] == pytest.approx((6.5 + 0.7 * 2.3) / 8.8, abs=1e-4)
    assert list(evidence["recent_run_rates"]) == [1.0, 0.7, 0.7] and evidence["run_rate_since"] == "2025-09"
    assert evidence["run_rate"] == pytest.approx(0.7) and evidence["run_rate_statistic"] == 4.0
    assert evidence["run_rate_threshold"] == 4.0 and evidence["run_rate_noise"] == 0.1
    assert evidence["threshold"] is None  # no pace edge was crossed
    assert detector.signal(finding, at(2025, 10)).severity == "warning"  # 70 % is not below 70 %
    from alerts.alert import alert_from_signal

    # The alert says what changed and since when, not only the year so far.
    assert alert_from_signal(detector.signal(finding, at(2025, 10))).summary == (
        f"R1 is behind quota pace: run rate 70% of expected since 2025-09; year to date {evidence['pace']:.0%}"
    )
    # The year to date alone says nothing all year: the months before the drop weigh in.
    slow = QuotaPaceDetector(run_rate_threshold=None)
    assert [states(slow, seasonal_months(ratios[:n]), seasonal=SEASONAL) for n in range(2, 12)] == [[]] * 10


def test_steady_noise_below_the_threshold_gives_nothing():
    # Month deviations within +-1.5 noise units, and a rep steadily 10 % under its quota (within
    # the tuned change's half-way point): the run-rate test is a change test, not a level test.
    deviations = [0.5, -1.2, 0.8, -1.5, 1.0, -0.3, -1.4, 1.2, -0.9, 0.4, -1.1]
    for level in (1.0, 0.9):
        ratios = [level * math.exp(0.1 * z) for z in deviations]
        detector = QuotaPaceDetector(**RUN_RATE)
        for n in range(2, 12):
            assert states(detector, [FLAT * r for r in ratios[:n]], seasonal=NO_SEASONS) == [], (level, n)
        test = run_rate_test([FLAT * r for r in ratios], [FLAT] * 11, noise=0.1, threshold=4.0)
        assert test.state == "on_pace" and max(test.falling, test.rising) < (1.0 if level == 1.0 else 2.5)


def test_the_run_rate_test_finds_a_rise_and_clears_with_hysteresis():
    detector = QuotaPaceDetector(**RUN_RATE)
    ratios = [1.0, 1.0, 1.0, 1.4, 1.4, 1.0, 1.0, 1.0]
    found = [states(detector, [FLAT * r for r in ratios[:n]], seasonal=NO_SEASONS) for n in range(2, 9)]
    # Rises of 1.4 are log(1.4) / 0.1 - log(1.2) / 0.2 = 2.45 units a month: ahead in May. The
    # statistic is held at 4; June brings it to 3.09 < 0.8 x 4: back on pace (the year to date,
    # 1.16 in May and 1.13 in June, never crossed 1.2).
    assert found == [[], [], [], [("R1", "ahead")], [("R1", "on_pace")], [], []]
    detector = QuotaPaceDetector(**RUN_RATE)
    for n in range(2, 6):
        detector.update(flat_year([FLAT * r for r in ratios[:n]]), at(2025, n))
    (cleared,) = detector.update(flat_year([FLAT * r for r in ratios[:6]]), at(2025, 6)).findings
    signal = detector.signal(cleared, at(2025, 6))
    assert signal.state == "cleared" and signal.evidence["test"] == "run_rate"
    assert signal.evidence["run_rate_statistic"] == pytest.approx(3.088, abs=1e-3)
    assert signal.evidence["run_rate_since"] == "2025-04"


def test_the_evidence_has_the_same_keys_whichever_test_and_state():
    detector = QuotaPaceDetector(**RUN_RATE)
    behind_by_pace = detector.update(flat_year([FLAT, 40_000.0]), at(2025, 2)).findings[0]
    gone = detector.update(flat_year([FLAT, 40_000.0], quota=None), at(2025, 2)).findings[0]
    by_rate = QuotaPaceDetector(**RUN_RATE)
    months = [FLAT] * 8 + [50_000.0, 50_000.0]
    (rate_finding,) = [f for n in range(2, 11) for f in by_rate.update(flat_year(months[:n]), at(2025, n)).findings]
    signals = [detector.signal(behind_by_pace, at(2025, 2)), detector.signal(gone, at(2025, 2))]
    signals.append(by_rate.signal(rate_finding, at(2025, 10)))
    assert [s.evidence["test"] for s in signals] == ["year_to_date", "year_to_date", "run_rate"]
    assert len({tuple(s.evidence) for s in signals}) == 1
    assert signals[1].evidence["run_rate_statistic"] is None and signals[1].evidence["pace"] is None
    # Half the expected since September: critical on the run rate, with a pace still above 0.7.
    assert signals[2].severity == "critical" and signals[2].evidence["pace"] > 0.7


def test_the_state_survives_a_restart_mid_incident_and_an_old_state_loads():
    months = seasonal_months([1.0] * 8 + [0.7, 0.7, 0.7])
    detector = QuotaPaceDetector(**RUN_RATE)
    for n in range(2, 11):
        detector.update(year_of(months[:n], seasonal=SEASONAL), at(2025, n))
    assert detector.off_pace == {"R1": "behind"}
    saved = json.loads(json.dumps(detector.state_dict()))
    assert saved["version"] == STATE_VERSION == 2 and saved["tests"] == {"R1": "run_rate"}
    assert saved["year_to_date"] == {"R1": "on_pace"}
    restored = QuotaPaceDetector(**RUN_RATE).load_state_dict(saved)
    assert restored.state_dict() == detector.state_dict() and restored.open_subjects() == 1
    # November, still down: no repeat, in the restored detector as in the one that ran on.
    for one in (detector, restored):
        assert states(one, months, seasonal=SEASONAL) == []
    assert restored.state_dict() == detector.state_dict()
    # A state saved before the run-rate test (version 1): its states are the year to date's.
    old = {"version": 1, "behind": 0.85, "ahead": 1.2, "hysteresis": 0.8, "min_months": 2, "year": 2025}
    loaded = QuotaPaceDetector(**RUN_RATE).load_state_dict({**old, "states": {"R1": "behind", "R2": "on_pace"}})
    assert loaded.open_subjects() == 1 and loaded.state_dict()["tests"] == {"R1": "year_to_date"}
    assert loaded.state_dict()["year_to_date"] == {"R1": "behind", "R2": "on_pace"}
    assert states(loaded, [FLAT, 74_000.0], seasonal=NO_SEASONS) == []  # a pace of 0.87: held behind, below 0.88
    with pytest.raises(ValueError, match="unknown quota pace tests"):
        QuotaPaceDetector().load_state_dict({**saved, "tests": {"R1": "gut_feeling"}})


def test_a_new_year_starts_the_run_rate_test_from_zero():
    detector = QuotaPaceDetector(**RUN_RATE)
    # November 2025 at 70 %: 2.45 units of evidence, below the threshold.
    year_2025 = [FLAT] * 10 + [70_000.0]
    for n in range(2, 12):
        assert states(detector, year_2025[:n], seasonal=NO_SEASONS) == []
    # January 2026 at 70 % again: carried over, the sum would be 4.9 and the rep behind; the
    # new year starts from zero (2.45, then 1.33 after an on-pace February): nothing.
    nxt = QuotaYear(2026, 2, {"R1": (70_000.0, FLAT)}, {"R1": QUOTA}, NO_SEASONS)
    assert detector.update(nxt, at(2026, 2)).findings == []
    assert detector.run_rate(nxt, "R1").falling == pytest.approx(2.4510 - 1.1157, abs=1e-3)
    # An incident the run rate opened in a year's last months ends at the next year's first
    # judgement when the new months are on pace.
    late = QuotaPaceDetector(**RUN_RATE)
    year_2025 = [FLAT] * 9 + [60_000.0, 60_000.0]
    for n in range(2, 12):
        late.update(flat_year(year_2025[:n]), at(2025, n))
    assert late.off_pace == {"R1": "behind"}
    (cleared,) = late.update(QuotaYear(2026, 2, {"R1": (FLAT, FLAT)}, {"R1": QUOTA}, NO_SEASONS), at(2026, 2)).findings
    assert cleared.state == "on_pace" and late.signal(cleared, at(2026, 2)).evidence["year"] == 2026


def test_run_rate_settings_are_checked():
    for bad in (dict(run_rate_threshold=0.0), dict(run_rate_noise=0.0), dict(run_rate_shift=1.0)):
        with pytest.raises(ValueError, match="run_rate"):
            QuotaPaceDetector(**bad)
    assert QuotaPaceDetector(run_rate_threshold=None).run_rate(flat_year([FLAT, FLAT]), "R1") is None


def test_the_run_rate_test_needs_a_seasonal_index():
    # A seasonal business judged on a straight line: autumn at 1.1 to 1.8 of a twelfth is its
    # season, not a change (by December the test would say ahead); without an index the run-rate test stays out.
    months = seasonal_months([1.0] * 11)
    detector = QuotaPaceDetector(**RUN_RATE)
    assert detector.run_rate(year_of(months), "R1") is None
    with_index = detector.run_rate(year_of(months, seasonal=SEASONAL), "R1")
    assert with_index.state == "on_pace" and with_index.falling == with_index.rising == 0.0
    assert QuotaPaceDetector(**RUN_RATE).run_rate(year_of(months), "R1") is None
    straight = run_rate_test(seasonal_months([1.0] * 12), [FLAT] * 12, noise=0.1, threshold=4.0)
    assert straight.state != "on_pace"  # what it would say against a straight line
