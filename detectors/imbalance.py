"""Imbalance of a metric (potential, workload) per rep against the fair share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from core.formatting import percent, signed_percent
from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import MonthlyTerritories
from monitor.state import RepAggregate

STATES = ("in_band", "over", "under")
#: States of its signals: leaving the band says "cleared".
SIGNAL_STATES = ("over", "under", "cleared")


@dataclass(frozen=True)
class ImbalanceFinding:
    """A rep crossed into (`over`/`under`) or back out of (`in_band`) the imbalance band."""

    rep_id: str
    metric: str
    state: str
    share: float
    fair_share: float
    deviation: float  # share / fair_share - 1
    threshold: float  # the band edge crossed, as a deviation (e.g. +0.10)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImbalanceDetector:
    """Flags reps whose share leaves fair_share × (1 ± tolerance).

    A rep enters the out-of-band state when its deviation passes ±`tolerance` and only
    returns to `in_band` once the deviation is back within ±`tolerance × hysteresis`, so
    a share oscillating at the edge yields one finding, not one per update.

    Parameters
    ----------
    tolerance
        Allowed relative deviation from the fair share, e.g. 0.10 for ±10%.
    hysteresis
        Fraction of the tolerance that must be regained to leave the out-of-band state,
        in (0, 1].
    metric
        Name of the balanced figure, carried into findings: "potential" (the share of the
        company's potential) or "workload" (the share of activity minutes).
    name
        The detector's name in the planner (its checkpoint key and metrics label).

    As a `detectors.protocol.Detector` it observes `MonthlyTerritories` and signals kind
    "imbalance" with the metric in the evidence; only the potential imbalance asks for a
    rebalance (the rebalancer balances potential).

    Examples
    --------
    >>> detector = ImbalanceDetector(tolerance=0.10, hysteresis=0.5)
    >>> fair = {"A": 0.5, "B": 0.5}
    >>> for shares in [{"A": 0.52, "B": 0.48}, {"A": 0.56, "B": 0.44},
    ...                {"A": 0.54, "B": 0.46}, {"A": 0.51, "B": 0.49}]:
    ...     _ = detector.update(shares, fair)
    ...     print([(f.rep_id, f.state, round(f.deviation, 2)) for f in detector.findings])
    []
    [('A', 'over', 0.12), ('B', 'under', -0.12)]
    []
    [('A', 'in_band', 0.02), ('B', 'in_band', -0.02)]

    Fed by the planner, it reads the reps' aggregates and makes the signals:

    >>> from datetime import timezone
    >>> month = datetime(2025, 4, 1, tzinfo=timezone.utc)
    >>> from monitor.state import RepAggregate
    >>> aggregates = {"A": RepAggregate("A", 40, 700.0, 900.0, 1.0, 0.7, 0.5),
    ...               "B": RepAggregate("B", 35, 300.0, 800.0, 1.0, 0.3, 0.5)}
    >>> detector = ImbalanceDetector(tolerance=0.10)
    >>> [detector.signal(f, month).state for f in detector.observe(MonthlyTerritories(month, aggregates))]
    ['over', 'under']
    >>> detector.open_subjects()
    2
    """

    kind = "imbalance"
    states = SIGNAL_STATES
    observes = MonthlyTerritories

    def __init__(
        self, tolerance: float = 0.10, hysteresis: float = 0.8, metric: str = "potential", name: str = "imbalance"
    ):
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
        if not 0 < hysteresis <= 1:
            raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis!r}")
        self.tolerance = tolerance
        self.hysteresis = hysteresis
        self.metric = metric
        self.name = name
        self.triggers_rebalance = metric == "potential"
        self._states: dict[str, str] = {}
        self._findings: list[ImbalanceFinding] = []
        self._observed: MonthlyTerritories | None = None  # what the findings' signals describe

    def update(self, shares: Mapping[str, float], fair_shares: Mapping[str, float]) -> "ImbalanceDetector":
        """Judge every rep's current share; `findings` then holds the state changes."""
        self._findings = []
        for rep_id in sorted(fair_shares):
            fair = fair_shares[rep_id]
            if fair <= 0:
                continue
            share = shares.get(rep_id, 0.0)
            deviation = share / fair - 1.0
            previous = self._states.get(rep_id, "in_band")
            state, threshold = self._next_state(previous, deviation)
            self._states[rep_id] = state
            if state != previous:
                self._findings.append(ImbalanceFinding(rep_id, self.metric, state, share, fair, deviation, threshold))
        # Reps that disappeared (left, inactive) have no state any more.
        for rep_id in set(self._states) - set(fair_shares):
            del self._states[rep_id]
        return self

    def observe(self, observation: MonthlyTerritories) -> list[ImbalanceFinding]:
        """Judge the reps' shares of the metric against their fair shares."""
        aggregates = observation.aggregates
        fair = {rep_id: agg.fair_share for rep_id, agg in aggregates.items()}
        if self.metric == "workload":
            # Nothing to share: no rep is off (a company without activity data).
            if sum(agg.workload_min for agg in aggregates.values()) <= 0:
                return []
            # The aggregate's share is of the rep's group (its district, with the rebalance
            # scope "district"), like the fair share it is judged against.
            shares = {rep_id: agg.workload_share for rep_id, agg in aggregates.items()}
        else:
            shares = {rep_id: agg.share for rep_id, agg in aggregates.items()}
        self._observed = observation
        return self.update(shares, fair).findings

    def signal(self, finding: ImbalanceFinding, emitted_at: datetime) -> Signal:
        """Twice the tolerance off is critical; back in band is info."""
        assert self._observed is not None, "signal() describes the findings of the last observe()"
        aggregate = self._observed.aggregates[finding.rep_id]
        if finding.state == "in_band":
            severity = "info"
        elif abs(finding.deviation) >= 2 * self.tolerance:
            severity = "critical"
        else:
            severity = "warning"
        state = "cleared" if finding.state == "in_band" else finding.state
        subject = Subject("rep", finding.rep_id)
        evidence = {
            "metric": finding.metric,
            "share": round(finding.share, 5),
            "fair_share": round(finding.fair_share, 5),
            "deviation": round(finding.deviation, 5),
            "threshold": round(finding.threshold, 5),
            "band": [
                round(finding.fair_share * (1 - self.tolerance), 5),
                round(finding.fair_share * (1 + self.tolerance), 5),
            ],
            "potential": round(aggregate.potential, 2),
            "workload_minutes": round(aggregate.workload_min, 1),
            "accounts": aggregate.accounts,
        }
        return Signal.make(
            kind=self.kind,
            state=state,
            severity=severity,
            subject=subject,
            evidence=evidence,
            detected_at=self._observed.month,
            emitted_at=emitted_at,
            summary=summary(subject, state, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal of this detector's metric as it makes them (docs/EVENTS.md lists its evidence)."""
        month = datetime(2025, 6, 1, tzinfo=timezone.utc)
        aggregates = {
            "A": RepAggregate("A", 40, 700.0, 900.0, 1.0, 0.7, 0.5, workload_share=0.6),
            "B": RepAggregate("B", 35, 300.0, 600.0, 1.0, 0.3, 0.5, workload_share=0.4),
        }
        detector = ImbalanceDetector(self.tolerance, self.hysteresis, self.metric, self.name)
        (finding, *_) = detector.observe(MonthlyTerritories(month, aggregates))
        return detector.signal(finding, month)

    def open_subjects(self) -> int:
        return len(self.out_of_band)

    def _next_state(self, previous: str, deviation: float) -> tuple[str, float]:
        enter, leave = self.tolerance, self.tolerance * self.hysteresis
        if deviation > enter:
            return "over", enter
        if deviation < -enter:
            return "under", -enter
        if previous == "over" and deviation > leave:
            return "over", leave
        if previous == "under" and deviation < -leave:
            return "under", -leave
        return "in_band", (leave if previous == "over" else -leave if previous == "under" else 0.0)

    @property
    def findings(self) -> list[ImbalanceFinding]:
        """State changes found by the last `update`."""
        return list(self._findings)

    @property
    def out_of_band(self) -> dict[str, str]:
        """Reps currently over or under the band, with their state."""
        return {rep_id: state for rep_id, state in self._states.items() if state != "in_band"}

    def state_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "hysteresis": self.hysteresis,
            "metric": self.metric,
            "states": dict(self._states),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "ImbalanceDetector":
        unknown = set(state.get("states", {}).values()) - set(STATES)
        if unknown:
            raise ValueError(f"unknown detector states {sorted(unknown)}; valid: {', '.join(STATES)}")
        self._states = dict(state.get("states", {}))
        return self

    def _reset(self) -> None:
        self._states, self._findings = {}, []


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "R1 is under the fair share of potential: 10.0% vs fair share 12.5%, -20%".

    >>> summary(Subject("rep", "R1"), "cleared", {"metric": "workload", "share": 0.24, "fair_share": 0.25})
    'R1 is back within the fair share of workload: 24.0% vs fair share 25.0%'
    """
    metric = evidence.get("metric") or "potential"
    figures = f"{percent(evidence.get('share'), 1)} vs fair share {percent(evidence.get('fair_share'), 1)}"
    if state in RESOLVED_STATES:
        return f"{subject.label} is back within the fair share of {metric}: {figures}"
    deviation = evidence.get("deviation")
    extra = f", {signed_percent(deviation)}" if deviation is not None else ""
    return f"{subject.label} is {state} the fair share of {metric}: {figures}{extra}"
