"""Quota pace: a rep's sales so far this calendar year against what their quota expects by now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from core.records import Signal, Subject
from detectors.protocol import MonthlyTerritories, QuotaYear

STATES = ("on_pace", "behind", "ahead")
#: States of its signals: back on pace says "cleared".
SIGNAL_STATES = ("behind", "ahead", "cleared")
#: Complete months of the year before a pace is judged: one month is mostly noise.
MIN_MONTHS = 2
STATE_VERSION = 1


def expected_share(months: int, seasonal: Sequence[float] | None) -> tuple[float, str]:
    """The share of a year's sales that normally falls in its first `months` months, and its
    basis: the seasonal index's months over its year ("seasonal"), else months / 12
    ("straight_line")."""
    if not 1 <= months <= 12:
        raise ValueError(f"months must be 1..12, got {months!r}")
    if seasonal is not None and len(seasonal) == 12 and sum(seasonal) > 0 and min(seasonal) >= 0:
        return sum(seasonal[:months]) / sum(seasonal), "seasonal"
    return months / 12.0, "straight_line"


@dataclass(frozen=True)
class QuotaStanding:
    """A rep's year so far against their quota; every ratio is of figures of that year."""

    rep_id: str
    year: int
    months: int  # complete months of the year elapsed
    quota: float
    sales_to_date: float
    expected_share: float  # of a year's sales, normally in those months
    basis: str  # "seasonal" or "straight_line"

    @property
    def expected_to_date(self) -> float:
        return self.quota * self.expected_share

    @property
    def gap(self) -> float:
        """Sales to date less the expected: negative when behind."""
        return self.sales_to_date - self.expected_to_date

    @property
    def pace(self) -> float:
        """Sales to date / expected to date: 1 on pace."""
        return self.sales_to_date / self.expected_to_date

    @property
    def attainment(self) -> float:
        """Sales to date / quota."""
        return self.sales_to_date / self.quota

    @property
    def projected_year_end(self) -> float:
        """The year's sales if the rest of it goes as it went so far: sales to date over the
        share of a year elapsed (as a share of the quota this is the pace)."""
        return self.sales_to_date / self.expected_share


def quota_standings(quota: QuotaYear) -> dict[str, QuotaStanding]:
    """Every rep with a quota above zero, by rep id."""
    share, basis = expected_share(quota.months, quota.seasonal)
    return {
        rep_id: QuotaStanding(
            rep_id, quota.year, quota.months, float(target), float(sum(quota.sales.get(rep_id, ()))), share, basis
        )
        for rep_id, target in sorted(quota.quotas.items())
        if target > 0
    }


@dataclass(frozen=True)
class QuotaPaceFinding:
    """A rep went behind, ahead or back on pace (`on_pace`); `standing` is None when the rep
    no longer has a quota (or left): the incident ends without figures."""

    rep_id: str
    state: str
    threshold: float | None  # the pace edge crossed
    standing: QuotaStanding | None
    detected_at: datetime


class QuotaPaceDetector:
    """Flags reps whose sales so far this calendar year fall behind (or run ahead of) what their
    quota expects by now.

    Expected to date is the quota times the share of a year's sales that normally falls in
    the months elapsed: from the potential model's learned seasonal index, else a straight
    line (months / 12; the evidence says which). Pace is sales to date over expected to date.
    A rep is `behind` below `behind` and `ahead` above `ahead`, and goes back on pace only
    once the pace is within the band narrowed by `hysteresis` (1 - (1 - behind) x hysteresis
    up to 1 + (ahead - 1) x hysteresis, 0.88 to 1.16 by default), so a pace hovering at an
    edge gives one finding. Nothing is judged before `min_months` complete months of the
    year. At the first judgement of a new year an open incident is stated again with the new
    year's figures (or cleared).

    As a `detectors.protocol.Detector` it observes `MonthlyTerritories` (their `quota` year;
    one without it judges nothing) and signals kind "quota_pace" per rep. It never asks for a
    rebalance: how a rep sells against a quota is another question than how potential is
    shared between territories.

    Examples
    --------
    >>> from datetime import timezone
    >>> detector = QuotaPaceDetector(behind=0.85, ahead=1.2, hysteresis=0.8)
    >>> at = datetime(2025, 4, 1, tzinfo=timezone.utc)  # January to March are complete
    >>> year = QuotaYear(2025, 3, {"R1": (95_000.0, 80_000.0, 70_000.0), "R2": (100_000.0,) * 3},
    ...                  {"R1": 1_200_000.0, "R2": 1_200_000.0})
    >>> [(f.rep_id, f.state, round(f.standing.pace, 3)) for f in detector.update(year, at).findings]
    [('R1', 'behind', 0.817)]
    >>> signal = detector.signal(detector.findings[0], at)
    >>> signal.state, signal.severity, signal.evidence["gap"], signal.evidence["seasonal_basis"]
    ('behind', 'warning', -55000.0, 'straight_line')

    With a seasonal index whose first quarter is slow, the same sales are on pace:

    >>> slow_start = (0.8, 0.8, 0.8) + (1.0,) * 6 + (1.2, 1.2, 1.2)
    >>> standing = quota_standings(QuotaYear(2025, 3, year.sales, year.quotas, slow_start))["R1"]
    >>> standing.basis, round(standing.expected_to_date), round(standing.pace, 3)
    ('seasonal', 240000, 1.021)

    Fed by the planner, it reads the `quota` year of the month's territories:

    >>> from monitor.state import RepAggregate
    >>> aggregates = {"R1": RepAggregate("R1", 40, 700.0, 900.0, 1.0, 0.5, 0.5)}
    >>> april = QuotaYear(2025, 4, {"R1": (95_000.0, 80_000.0, 70_000.0, 105_000.0)}, {"R1": 1_200_000.0})
    >>> may = datetime(2025, 5, 1, tzinfo=timezone.utc)
    >>> detector.observe(MonthlyTerritories(may, aggregates, april))  # 0.875: still behind
    []
    >>> detector.open_subjects()
    1
    """

    name = kind = "quota_pace"
    states = SIGNAL_STATES
    observes = MonthlyTerritories
    triggers_rebalance = False

    def __init__(self, behind: float = 0.85, ahead: float = 1.2, hysteresis: float = 0.8, min_months: int = MIN_MONTHS):
        if not 0 < behind < 1:
            raise ValueError(f"behind must be in (0, 1), got {behind!r}")
        if not ahead > 1:
            raise ValueError(f"ahead must be more than 1, got {ahead!r}")
        if not 0 < hysteresis <= 1:
            raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis!r}")
        if not (isinstance(min_months, int) and 1 <= min_months <= 12):
            raise ValueError(f"min_months must be an integer 1..12, got {min_months!r}")
        self.behind, self.ahead, self.hysteresis, self.min_months = behind, ahead, hysteresis, min_months
        self._states: dict[str, str] = {}
        self._year: int | None = None  # the year of the last judgement
        self._findings: list[QuotaPaceFinding] = []

    @property
    def leave_behind(self) -> float:
        """The pace at or above which a rep behind is back on pace."""
        return 1.0 - (1.0 - self.behind) * self.hysteresis

    @property
    def leave_ahead(self) -> float:
        """The pace at or below which a rep ahead is back on pace."""
        return 1.0 + (self.ahead - 1.0) * self.hysteresis

    def update(self, quota: QuotaYear, at: datetime) -> "QuotaPaceDetector":
        """Judge every rep with a quota at the moment `at`; `findings` then holds the changes."""
        self._findings = []
        if quota.months < self.min_months:
            return self  # too early in the year: the states stand as they are
        new_year = self._year is not None and quota.year != self._year
        standings = quota_standings(quota)
        for rep_id, standing in standings.items():
            previous = self._states.get(rep_id, "on_pace")
            state, threshold = self._next_state(previous, standing.pace)
            self._states[rep_id] = state
            if state != previous or (new_year and state != "on_pace"):
                self._findings.append(QuotaPaceFinding(rep_id, state, threshold, standing, at))
        # Reps without a quota now (or gone): an open incident ends, the rest is forgotten.
        for rep_id in sorted(set(self._states) - set(standings)):
            if self._states.pop(rep_id) != "on_pace":
                self._findings.append(QuotaPaceFinding(rep_id, "on_pace", None, None, at))
        self._year = quota.year
        return self

    def observe(self, observation: MonthlyTerritories) -> list[QuotaPaceFinding]:
        """Judge the reps' pace in the observation's year; nothing without one."""
        if observation.quota is None:
            self._findings = []
            return []
        return self.update(observation.quota, observation.month).findings

    def signal(self, finding: QuotaPaceFinding, emitted_at: datetime) -> Signal:
        """Behind by twice the allowed shortfall is critical, behind warning; ahead and back on
        pace are information."""
        standing = finding.standing
        if finding.state == "behind":
            critical = standing is not None and standing.pace < 1.0 - 2.0 * (1.0 - self.behind)
            severity = "critical" if critical else "warning"
        else:
            severity = "info"
        return Signal.make(
            kind=self.kind,
            state="cleared" if finding.state == "on_pace" else finding.state,
            severity=severity,
            subject=Subject("rep", finding.rep_id),
            evidence=_evidence(standing, finding.threshold, self._year),
            detected_at=finding.detected_at,
            emitted_at=emitted_at,
        )

    def open_subjects(self) -> int | None:
        """Reps behind or ahead; None while no rep with a quota is followed (nothing to count:
        a deployment without quotas gets no out-of-band figure for quota pace)."""
        if not self._states:
            return None
        return sum(1 for state in self._states.values() if state != "on_pace")

    def _next_state(self, previous: str, pace: float) -> tuple[str, float | None]:
        if pace < self.behind:
            return "behind", self.behind
        if pace > self.ahead:
            return "ahead", self.ahead
        if previous == "behind" and pace < self.leave_behind:
            return "behind", self.leave_behind
        if previous == "ahead" and pace > self.leave_ahead:
            return "ahead", self.leave_ahead
        return "on_pace", (
            self.leave_behind if previous == "behind" else self.leave_ahead if previous == "ahead" else None
        )

    @property
    def findings(self) -> list[QuotaPaceFinding]:
        """State changes found by the last `update`."""
        return list(self._findings)

    @property
    def off_pace(self) -> dict[str, str]:
        """Reps behind or ahead now, with their state."""
        return {rep_id: state for rep_id, state in self._states.items() if state != "on_pace"}

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "behind": self.behind,
            "ahead": self.ahead,
            "hysteresis": self.hysteresis,
            "min_months": self.min_months,
            "year": self._year,
            "states": dict(sorted(self._states.items())),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "QuotaPaceDetector":
        """Restore `state_dict()`'s output (thresholds are the settings', not the saved ones)."""
        states = dict(state.get("states") or {})
        unknown = set(states.values()) - set(STATES)
        if unknown:
            raise ValueError(f"unknown quota pace states {sorted(unknown)}; valid: {', '.join(STATES)}")
        year = state.get("year")
        self._states, self._year, self._findings = states, None if year is None else int(year), []
        return self


def _evidence(standing: QuotaStanding | None, threshold: float | None, year: int | None) -> dict[str, Any]:
    """The figures of a signal, the same keys whether or not the rep still has a quota."""
    if standing is None:
        figures: dict[str, Any] = dict.fromkeys(
            (
                "quota",
                "sales_to_date",
                "expected_to_date",
                "gap",
                "pace",
                "attainment",
                "projected_year_end",
                "expected_share",
                "months_elapsed",
                "seasonal_basis",
            )
        )
        return {"year": year, **figures, "threshold": threshold}
    return {
        "year": standing.year,
        "quota": round(standing.quota, 2),
        "sales_to_date": round(standing.sales_to_date, 2),
        "expected_to_date": round(standing.expected_to_date, 2),
        "gap": round(standing.gap, 2),
        "pace": round(standing.pace, 4),
        "attainment": round(standing.attainment, 4),
        "projected_year_end": round(standing.projected_year_end, 2),
        "expected_share": round(standing.expected_share, 4),
        "months_elapsed": standing.months,
        "seasonal_basis": standing.basis,
        "threshold": None if threshold is None else round(threshold, 4),
    }
