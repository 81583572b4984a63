"""Quota pace: a rep's sales so far this calendar year against what their quota expects by now,
and each complete month's sales against that month's share of the quota (the run rate)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from core.formatting import percent
from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import MonthlyTerritories, QuotaYear

STATES = ("on_pace", "behind", "ahead")
#: States of its signals: back on pace says "cleared".
SIGNAL_STATES = ("behind", "ahead", "cleared")
#: Complete months of the year before a pace is judged: one month is mostly noise.
MIN_MONTHS = 2
#: Which test put a rep behind or ahead.
TESTS = ("year_to_date", "run_rate")
#: Run-rate test defaults. The noise is the standard deviation of log(a month's sales / its
#: expected) for one rep: about sqrt((1 + CV^2) / orders a month) for orders of value CV, plus
#: the seasonal index's error (bench/quota_pace.py measured 0.11 for 250 accounts, ~220 orders
#: a month, CV 1.1; 0.055 for 1000 accounts). Set it for the territory size: it scales the test.
RUN_RATE_NOISE = 0.12
#: CUSUM threshold, in noise units (the statistic is a sum of month deviations over the noise).
RUN_RATE_THRESHOLD = 4.0
#: The relative change of the run rate the test is tuned to: months count as evidence of a fall
#: below half of it (log scale), of a rise above half of a rise by it.
RUN_RATE_SHIFT = 0.2
#: Months of run rates an evidence shows (the last ones, oldest first).
RECENT_MONTHS = 3
#: A month's ratio is clipped to this range before the log (a month without sales is finite).
_RATIO_FLOOR, _RATIO_CEILING = 0.05, 20.0
STATE_VERSION = 2


def expected_share(months: int, seasonal: Sequence[float] | None) -> tuple[float, str]:
    """The share of a year's sales that normally falls in its first `months` months, and its
    basis: the seasonal index's months over its year ("seasonal"), else months / 12
    ("straight_line")."""
    if not 1 <= months <= 12:
        raise ValueError(f"months must be 1..12, got {months!r}")
    if seasonal is not None and len(seasonal) == 12 and sum(seasonal) > 0 and min(seasonal) >= 0:
        return sum(seasonal[:months]) / sum(seasonal), "seasonal"
    return months / 12.0, "straight_line"


def month_shares(seasonal: Sequence[float] | None) -> tuple[float, ...]:
    """Each calendar month's share of a year's sales (January first): the seasonal index's
    month over its year when it is usable (as `expected_share`), else 1/12 each.

    >>> [round(share, 4) for share in month_shares((0.5,) + (1.0,) * 10 + (1.5,))][:2]
    [0.0417, 0.0833]
    """
    if seasonal is not None and len(seasonal) == 12 and sum(seasonal) > 0 and min(seasonal) >= 0:
        total = float(sum(seasonal))
        return tuple(float(factor) / total for factor in seasonal)
    return (1.0 / 12.0,) * 12


@dataclass(frozen=True)
class RunRate:
    """The run-rate change test over a rep's complete months of the year: a two-sided CUSUM of
    z = log(month's sales / month's expected) / noise, expected being the quota times the
    month's share of a year. `falling` grows by -z - k and `rising` by z - k each month (never
    below 0; k is half the tuned shift, log scale, in noise units), held at the threshold once
    they reach it, so clearing takes as long after a long fall as after a short one. `state` is
    the test's own verdict after the last month: `behind` from the month `falling` reaches the
    threshold until it is back below hysteresis x threshold, `ahead` alike."""

    sales: tuple[float, ...]  # each complete month's sales, January first
    expected: tuple[float, ...]  # and what the quota expects of it
    falling: float
    rising: float
    falling_since: int | None  # month (1..12) the current run of `falling` began: the estimated change
    rising_since: int | None
    state: str
    threshold: float
    noise: float

    @property
    def ratios(self) -> tuple[float | None, ...]:
        """Each month's sales / expected (None for a month without an expected)."""
        return tuple(sold / want if want > 0 else None for sold, want in zip(self.sales, self.expected))

    def statistic(self, side: str) -> float:
        """The CUSUM statistic of `behind` (falling) or `ahead` (rising), in noise units."""
        return self.falling if side == "behind" else self.rising

    def since(self, side: str) -> int | None:
        return self.falling_since if side == "behind" else self.rising_since

    def rate_since(self, side: str) -> float | None:
        """Sales over expected from the month the side's run began through the last month."""
        start = self.since(side)
        if start is None:
            return None
        want = sum(self.expected[start - 1 :])
        return sum(self.sales[start - 1 :]) / want if want > 0 else None


def run_rate_test(
    sales: Sequence[float],
    expected: Sequence[float],
    *,
    noise: float = RUN_RATE_NOISE,
    threshold: float = RUN_RATE_THRESHOLD,
    shift: float = RUN_RATE_SHIFT,
    hysteresis: float = 0.8,
) -> RunRate:
    """The CUSUM of the year's months so far, from January (a new year starts from zero): a pure
    function of the months, so judging a month again, a restart, or a month's figures changed
    by a reassignment give the same answer. A month without an expected counts nothing.

    >>> test = run_rate_test([100.0, 100.0, 70.0, 70.0], [100.0] * 4, noise=0.1, threshold=4.0)
    >>> test.state, round(test.falling, 2), test.falling_since, [round(r, 2) for r in test.ratios]
    ('behind', 4.0, 3, [1.0, 1.0, 0.7, 0.7])
    """
    k_fall = -math.log(1.0 - shift) / 2.0 / noise
    k_rise = math.log(1.0 + shift) / 2.0 / noise
    falling = rising = 0.0
    falling_since: int | None = None
    rising_since: int | None = None
    state = "on_pace"
    for month, (sold, want) in enumerate(zip(sales, expected), start=1):
        if not want > 0:
            continue
        z = math.log(min(max(sold / want, _RATIO_FLOOR), _RATIO_CEILING)) / noise
        falling, before = max(0.0, falling - z - k_fall), falling
        falling_since = None if falling == 0 else (month if before == 0 else falling_since)
        rising, before = max(0.0, rising + z - k_rise), rising
        rising_since = None if rising == 0 else (month if before == 0 else rising_since)
        if falling >= threshold:
            falling, state = threshold, "behind"
        elif rising >= threshold:
            rising, state = threshold, "ahead"
        elif state == "behind" and falling < threshold * hysteresis:
            state = "on_pace"
        elif state == "ahead" and rising < threshold * hysteresis:
            state = "on_pace"
    n = min(len(sales), len(expected))
    return RunRate(
        tuple(float(x) for x in sales[:n]),
        tuple(float(x) for x in expected[:n]),
        falling,
        rising,
        falling_since,
        rising_since,
        state,
        threshold,
        noise,
    )


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
    no longer has a quota (or left): the incident ends without figures. `test` is the test that
    put the rep in that state (`year_to_date` or `run_rate`; for `on_pace` the one that held
    the state that ended, `ended`); `run_rate` is the run-rate test of the year's months."""

    rep_id: str
    state: str
    threshold: float | None  # the pace edge crossed (None when the run-rate test fired)
    standing: QuotaStanding | None
    detected_at: datetime
    test: str | None = None
    run_rate: RunRate | None = None
    ended: str | None = None  # the state an `on_pace` finding ends


class QuotaPaceDetector:
    """Flags reps whose sales so far this calendar year fall behind (or run ahead of) what their
    quota expects by now, or whose monthly run rate has clearly fallen (or risen) against it.

    Two tests, judged on complete months; a rep is `behind` (or `ahead`) when either says so:

    - Year to date: expected to date is the quota times the share of a year's sales that
      normally falls in the months elapsed: from the potential model's learned seasonal index,
      else a straight line (months / 12; the evidence says which). Pace is sales to date over
      expected to date. `behind` below `behind`, `ahead` above `ahead`, back on pace only once
      the pace is within the band narrowed by `hysteresis` (1 - (1 - behind) x hysteresis up
      to 1 + (ahead - 1) x hysteresis, 0.88 to 1.16 by default). It answers "will the rep make
      the quota?", and is slow for a change late in the year: the months before weigh in.
    - Run rate: each month's sales against that month's expected (the quota times the month's
      share of a year), a two-sided CUSUM of the log ratio over `run_rate_noise` (the noise of
      one rep's month, a setting: a year's few months cannot estimate it honestly, and a
      change inflates the estimate); see `run_rate_test`. Starts from zero each year. Only
      with a seasonal index (a flat one, all ones, for a business without seasons): against a
      straight line every busy or slow month reads as a change. None as `run_rate_threshold`
      turns it off.

    When the tests disagree (year to date ahead, run rate behind) the run rate, the more recent
    news, wins. Nothing is judged before `min_months` complete months of the year. At the first
    judgement of a new year an open incident is stated again with the new year's figures (or
    cleared).

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

    def __init__(
        self,
        behind: float = 0.85,
        ahead: float = 1.2,
        hysteresis: float = 0.8,
        min_months: int = MIN_MONTHS,
        run_rate_threshold: float | None = RUN_RATE_THRESHOLD,
        run_rate_noise: float = RUN_RATE_NOISE,
        run_rate_shift: float = RUN_RATE_SHIFT,
    ):
        if not 0 < behind < 1:
            raise ValueError(f"behind must be in (0, 1), got {behind!r}")
        if not ahead > 1:
            raise ValueError(f"ahead must be more than 1, got {ahead!r}")
        if not 0 < hysteresis <= 1:
            raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis!r}")
        if not (isinstance(min_months, int) and 1 <= min_months <= 12):
            raise ValueError(f"min_months must be an integer 1..12, got {min_months!r}")
        if run_rate_threshold is not None and not (math.isfinite(run_rate_threshold) and run_rate_threshold > 0):
            raise ValueError(f"run_rate_threshold must be more than 0 (or None: off), got {run_rate_threshold!r}")
        if not (math.isfinite(run_rate_noise) and 0 < run_rate_noise <= 2):
            raise ValueError(f"run_rate_noise must be in (0, 2], got {run_rate_noise!r}")
        if not 0 < run_rate_shift < 1:
            raise ValueError(f"run_rate_shift must be in (0, 1), got {run_rate_shift!r}")
        self.behind, self.ahead, self.hysteresis, self.min_months = behind, ahead, hysteresis, min_months
        self.run_rate_threshold, self.run_rate_noise, self.run_rate_shift = (
            run_rate_threshold,
            run_rate_noise,
            run_rate_shift,
        )
        self._states: dict[str, str] = {}  # the rep's state: either test's
        self._year_to_date: dict[str, str] = {}  # the year-to-date test's own state (its hysteresis)
        self._tests: dict[str, str] = {}  # the test that holds a rep's state off pace
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

    def run_rate(self, quota: QuotaYear, rep_id: str) -> RunRate | None:
        """The run-rate test of a rep's complete months of `quota`'s year. None when turned off,
        and without a usable seasonal index: against a straight line every busy or slow month of
        a seasonal business reads as a change (bench/quota_pace.py: 97 false signals per 100
        rep-years with the simulator's seasons, against 3 with the index)."""
        if self.run_rate_threshold is None or expected_share(1, quota.seasonal)[1] != "seasonal":
            return None
        target = float(quota.quotas[rep_id])
        sales = list(quota.sales.get(rep_id, ()))[: quota.months]
        sales += [0.0] * (quota.months - len(sales))
        shares = month_shares(quota.seasonal)
        return run_rate_test(
            sales,
            [target * share for share in shares[: quota.months]],
            noise=self.run_rate_noise,
            threshold=self.run_rate_threshold,
            shift=self.run_rate_shift,
            hysteresis=self.hysteresis,
        )

    def update(self, quota: QuotaYear, at: datetime) -> "QuotaPaceDetector":
        """Judge every rep with a quota at the moment `at`; `findings` then holds the changes."""
        self._findings = []
        if quota.months < self.min_months:
            return self  # too early in the year: the states stand as they are
        new_year = self._year is not None and quota.year != self._year
        standings = quota_standings(quota)
        for rep_id, standing in standings.items():
            previous = self._states.get(rep_id, "on_pace")
            year_to_date, threshold = self._next_state(self._year_to_date.get(rep_id, "on_pace"), standing.pace)
            run_rate = self.run_rate(quota, rep_id)
            fast = "on_pace" if run_rate is None else run_rate.state
            test: str | None
            if year_to_date != "on_pace" and fast in ("on_pace", year_to_date):
                state, test = year_to_date, "year_to_date"
            elif fast != "on_pace":
                state, test, threshold = fast, "run_rate", None
            else:
                state, test = "on_pace", self._tests.get(rep_id)
            self._states[rep_id] = state
            self._year_to_date[rep_id] = year_to_date
            ended = previous if state == "on_pace" and previous != "on_pace" else None
            if state == "on_pace" or test is None:
                self._tests.pop(rep_id, None)
            else:
                self._tests[rep_id] = test
            if state != previous or (new_year and state != "on_pace"):
                self._findings.append(QuotaPaceFinding(rep_id, state, threshold, standing, at, test, run_rate, ended))
        # Reps without a quota now (or gone): an open incident ends, the rest is forgotten.
        for rep_id in sorted(set(self._states) - set(standings)):
            self._year_to_date.pop(rep_id, None)
            test = self._tests.pop(rep_id) if rep_id in self._tests else None
            state = self._states.pop(rep_id)
            if state != "on_pace":
                self._findings.append(QuotaPaceFinding(rep_id, "on_pace", None, None, at, test, None, state))
        self._year = quota.year
        return self

    def observe(self, observation: MonthlyTerritories) -> list[QuotaPaceFinding]:
        """Judge the reps' pace in the observation's year; nothing without one."""
        if observation.quota is None:
            self._findings = []
            return []
        return self.update(observation.quota, observation.month).findings

    def signal(self, finding: QuotaPaceFinding, emitted_at: datetime) -> Signal:
        """Behind by twice the allowed shortfall (on the year to date, or on the run rate since
        the run-rate test's estimated change) is critical, behind warning; ahead and back on
        pace are information."""
        standing = finding.standing
        if finding.state == "behind":
            floor = 1.0 - 2.0 * (1.0 - self.behind)
            since = None if finding.run_rate is None else finding.run_rate.rate_since("behind")
            critical = standing is not None and standing.pace < floor
            critical = critical or (finding.test == "run_rate" and since is not None and since < floor)
            severity = "critical" if critical else "warning"
        else:
            severity = "info"
        state = "cleared" if finding.state == "on_pace" else finding.state
        subject = Subject("rep", finding.rep_id)
        evidence = self._evidence(finding)
        return Signal.make(
            kind=self.kind,
            state=state,
            severity=severity,
            subject=subject,
            evidence=evidence,
            detected_at=finding.detected_at,
            emitted_at=emitted_at,
            summary=summary(subject, state, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal as it makes them (docs/EVENTS.md lists its evidence): a rep behind, judged
        on a straight line (no seasonal index)."""
        detector = QuotaPaceDetector(
            self.behind,
            self.ahead,
            self.hysteresis,
            self.min_months,
            self.run_rate_threshold,
            self.run_rate_noise,
            self.run_rate_shift,
        )
        months = max(self.min_months, 5)
        year = QuotaYear(2025, months, {"A": (50_000.0,) * months}, {"A": 1_000_000.0})
        month = datetime(2025 + months // 12, months % 12 + 1, 1, tzinfo=timezone.utc)
        (finding,) = detector.observe(MonthlyTerritories(month, {}, year))
        return detector.signal(finding, month)

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
            "run_rate_threshold": self.run_rate_threshold,
            "run_rate_noise": self.run_rate_noise,
            "run_rate_shift": self.run_rate_shift,
            "year": self._year,
            "states": dict(sorted(self._states.items())),
            "year_to_date": dict(sorted(self._year_to_date.items())),
            "tests": dict(sorted(self._tests.items())),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "QuotaPaceDetector":
        """Restore `state_dict()`'s output (thresholds are the settings', not the saved ones).
        The run-rate test keeps no state of its own: it is worked out again from the year's
        months at each judgement. A version 1 state (year to date only) loads as the year-to-date
        test's states."""
        states = dict(state.get("states") or {})
        year_to_date = dict(state["year_to_date"]) if "year_to_date" in state else dict(states)
        unknown = (set(states.values()) | set(year_to_date.values())) - set(STATES)
        if unknown:
            raise ValueError(f"unknown quota pace states {sorted(unknown)}; valid: {', '.join(STATES)}")
        if "tests" in state:
            tests = dict(state["tests"] or {})
        else:
            tests = {rep_id: "year_to_date" for rep_id, value in states.items() if value != "on_pace"}
        unknown = set(tests.values()) - set(TESTS)
        if unknown:
            raise ValueError(f"unknown quota pace tests {sorted(unknown)}; valid: {', '.join(TESTS)}")
        year = state.get("year")
        self._states, self._year_to_date, self._tests = states, year_to_date, tests
        self._year, self._findings = None if year is None else int(year), []
        return self

    def _evidence(self, finding: QuotaPaceFinding) -> dict[str, Any]:
        """The figures of a signal, the same keys whether or not the rep still has a quota and
        whichever test fired."""
        side = finding.ended if finding.state == "on_pace" else finding.state
        run_rate = finding.run_rate
        figures: dict[str, Any] = {
            "test": finding.test,
            "recent_run_rates": None,
            "run_rate_since": None,
            "run_rate": None,
            "run_rate_statistic": None,
            "run_rate_threshold": self.run_rate_threshold,
            "run_rate_noise": self.run_rate_noise,
        }
        if run_rate is not None and finding.standing is not None:
            ratios = [None if r is None else round(r, 4) for r in run_rate.ratios]
            since = run_rate.since(side) if side in ("behind", "ahead") else None
            rate = run_rate.rate_since(side) if side in ("behind", "ahead") else None
            figures.update(
                recent_run_rates=ratios[-RECENT_MONTHS:],
                run_rate_since=None if since is None else f"{finding.standing.year:04d}-{since:02d}",
                run_rate=None if rate is None else round(rate, 4),
                run_rate_statistic=round(run_rate.statistic(side), 3) if side in ("behind", "ahead") else None,
            )
        return {**_evidence(finding.standing, finding.threshold, self._year), **figures}


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


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "R03 is behind quota pace: 78% of expected to date (gap -120,000), projected 78% of
    quota" (the projection, sales to date over the share of a year elapsed, is the pace).

    >>> summary(Subject("rep", "R03"), "cleared", {"pace": 0.98})
    'R03 is back on quota pace: 98% of expected to date'
    """
    who, pace, gap = subject.label, evidence.get("pace"), evidence.get("gap")
    if state in RESOLVED_STATES:
        if pace is None:
            return f"{who} has no quota any more: quota pace is no longer judged"
        return f"{who} is back on quota pace: {percent(pace)} of expected to date"
    side = "behind" if state == "behind" else "ahead of" if state == "ahead" else state
    if evidence.get("test") == "run_rate" and evidence.get("run_rate") is not None:
        # The year so far may still be on pace: say what changed, and since when.
        since = evidence.get("run_rate_since")
        figures = f"run rate {percent(evidence['run_rate'])} of expected" + (f" since {since}" if since else "")
        if pace is not None:
            figures += f"; year to date {percent(pace)}"
        return f"{who} is {side} quota pace: {figures}"
    figures = f"{percent(pace)} of expected to date" if pace is not None else "no figures"
    if gap is not None:
        figures += f" (gap {float(gap):+,.0f})"
    projected, quota = evidence.get("projected_year_end"), evidence.get("quota")
    if projected is not None and quota:
        figures += f", projected {percent(float(projected) / float(quota))} of quota"
    return f"{who} is {side} quota pace: {figures}"
