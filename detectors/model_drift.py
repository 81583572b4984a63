"""Model drift: the potential model's prediction error rises."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

from river import drift

from core import river_codec
from core.formatting import signed_percent
from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import ModelErrors

STATE_VERSION = 2  # 2: river objects as data (core.river_codec), no pickle
# Days of error aggregates kept for locating a change (per day: count, sum, sum of squares).
_MAX_DAYS = 730


@dataclass(frozen=True)
class ErrorDriftEvidence:
    """The numbers behind an `ErrorDriftFinding`."""

    detector: str  # "adwin"
    delta: float  # ADWIN's significance value (its threshold)
    statistic: float  # Welch t of recent vs baseline error at the estimated start
    baseline_error: float  # mean error before the estimated start
    recent_error: float  # mean error since the estimated start
    samples_before: int
    samples_after: int


@dataclass(frozen=True)
class ErrorDriftFinding:
    """The model's error level rose significantly."""

    direction: str  # always "rise": falling error is good news, not a finding
    size: float  # relative rise of the mean error, e.g. 0.52 for +52%
    start: date  # estimated first day (UTC) of the higher error
    detected_at: datetime
    evidence: ErrorDriftEvidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, evidence as a nested dict."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["detected_at"] = self.detected_at.isoformat()
        return out


class ModelDriftDetector:
    """Finds a sustained rise of the potential model's prediction error.

    Fed one non-negative error at a time (an absolute or relative residual per scored
    prediction, or a daily mean), with its event time. The first `min_samples` errors
    set the scale; from then on river's `ADWIN` watches the error divided by that
    scale (ADWIN's bound assumes values of order one, so raw errors in euros or in
    small fractions would make it blind or jumpy). When ADWIN finds a change, the
    per-day error aggregates locate it: the split that best separates a lower
    baseline from a higher recent level gives the start and the size. A rise of at
    least `min_rise` is a finding; any detected change (also a fall) starts a new
    baseline, so one shift gives one finding.

    Parameters
    ----------
    delta
        ADWIN's significance value in (0, 1). Smaller: fewer false alarms, later
        detection.
    min_samples
        Errors that set the scale after the start and after each detected change,
        >= 10.
    min_rise
        Least relative rise of the mean error reported, >= 0 (0.1 = +10%).
    clock
        ADWIN checks for a change every `clock` errors, >= 1.

    Feed one error per prediction rather than daily means: ADWIN's bound has a term
    for values of range one that dominates when it sees few, smooth values (in the
    benchmark a +50% rise took about 26-40 days to find from daily means, 1-2 days
    from 60 errors a day). Hyperparameters of a restored state's ADWIN are those it
    was saved with until the next detected change.

    Examples
    --------
    Forty predictions a day; the mean absolute error rises by 50% on day 120. It is
    found a day later; the size, from one day of higher errors, is still rough.

    >>> import numpy as np
    >>> from datetime import datetime, timedelta, timezone
    >>> rng = np.random.default_rng(5)
    >>> detector = ModelDriftDetector()
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> found = []
    >>> for day in range(200):
    ...     scale = 1.5 if day >= 120 else 1.0
    ...     for k, e in enumerate(np.abs(rng.normal(0.0, 0.2 * scale, size=40))):
    ...         at = t0 + timedelta(days=day, minutes=10 * k)
    ...         found += detector.update(float(e), at).findings
    >>> f = found[0]
    >>> len(found), f.direction, round(f.size, 2), f.start.isoformat(), f.detected_at.date().isoformat()
    (1, 'rise', 0.71, '2025-05-01', '2025-05-02')
    >>> (t0 + timedelta(days=120)).date().isoformat()
    '2025-05-01'
    """

    name = kind = "model_drift"
    states = ("rise",)
    observes = ModelErrors
    triggers_rebalance = False
    # State, set by `_reset` and `load_state_dict`.
    _adwin: drift.ADWIN
    _scale: float | None  # None while the warm-up learns it
    _warmup_n: int
    _warmup_sum: float
    _days: dict[int, list[float]]  # day ordinal -> [count, sum, sum of squares]
    _findings: list[ErrorDriftFinding]

    def __init__(self, delta: float = 1e-5, min_samples: int = 200, min_rise: float = 0.1, clock: int = 1):
        if not (isinstance(delta, (int, float)) and 0 < delta < 1):
            raise ValueError(f"delta must be a number in (0, 1), got {delta!r}")
        if not (isinstance(min_samples, int) and min_samples >= 10):
            raise ValueError(f"min_samples must be an integer >= 10, got {min_samples!r}")
        if not (isinstance(min_rise, (int, float)) and math.isfinite(min_rise) and min_rise >= 0):
            raise ValueError(f"min_rise must be a finite number >= 0, got {min_rise!r}")
        if not (isinstance(clock, int) and clock >= 1):
            raise ValueError(f"clock must be an integer >= 1, got {clock!r}")
        self.delta = float(delta)
        self.min_samples = min_samples
        self.min_rise = float(min_rise)
        self.clock = clock
        self._reset()

    def update(self, error: float, at: datetime) -> "ModelDriftDetector":
        """Add one error observed at `at` (timezone-aware); `findings` then holds what it found."""
        error = float(error)
        if not math.isfinite(error) or error < 0:
            raise ValueError(f"error must be a finite number >= 0, got {error!r}")
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
        self._findings = []
        day = at.astimezone(timezone.utc).date().toordinal()
        self._add_to_day(day, error)
        if self._scale is None:
            self._warmup_n += 1
            self._warmup_sum += error
            if self._warmup_n >= self.min_samples:
                mean = self._warmup_sum / self._warmup_n
                self._scale = mean if mean > 0 else 1.0
            return self
        self._adwin.update(error / self._scale)
        if self._adwin.drift_detected:
            finding = self._locate(at)
            if finding is not None:
                self._findings.append(finding)
            self._rearm(keep_from=finding.start.toordinal() if finding else day)
        return self

    def observe(self, observation: ModelErrors) -> list[ErrorDriftFinding]:
        found: list[ErrorDriftFinding] = []
        for error in observation.errors:
            found += self.update(error, observation.month).findings
        return found

    def signal(self, finding: ErrorDriftFinding, emitted_at: datetime) -> Signal:
        subject = Subject("model", "potential")
        evidence = {
            "size": round(finding.size, 4),
            "started_on": finding.start.isoformat(),
            **finding.to_dict()["evidence"],
        }
        return Signal.make(
            kind=self.kind,
            state=finding.direction,
            severity="warning",
            subject=subject,
            evidence=evidence,
            detected_at=finding.detected_at,
            emitted_at=emitted_at,
            summary=summary(subject, finding.direction, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal as it makes them (docs/EVENTS.md lists its evidence)."""
        now = datetime(2025, 6, 1, tzinfo=timezone.utc)
        evidence = ErrorDriftEvidence("adwin", 1e-5, 4.0, 0.2, 0.28, 300, 120)
        return self.signal(ErrorDriftFinding("rise", 0.4, date(2025, 4, 1), now, evidence), now)

    def open_subjects(self) -> None:
        return None  # change points: counted as signals only

    def _add_to_day(self, day: int, error: float) -> None:
        row = self._days.get(day)
        if row is None:
            row = self._days[day] = [0, 0.0, 0.0]
            if len(self._days) > _MAX_DAYS:
                del self._days[min(self._days)]
        row[0] += 1
        row[1] += error
        row[2] += error * error

    def _locate(self, at: datetime) -> ErrorDriftFinding | None:
        """The day split that best separates a lower baseline from a higher recent error."""
        days = sorted(self._days)
        if len(days) < 2:
            return None
        rows = [self._days[d] for d in days]
        total = [sum(r[i] for r in rows) for i in range(3)]
        before = [0, 0.0, 0.0]
        best = None
        for k in range(1, len(days)):
            for i in range(3):
                before[i] += rows[k - 1][i]
            after = [total[i] - before[i] for i in range(3)]
            t = _welch_t(before, after)
            if t is not None and (best is None or t > best[0]):
                best = (t, k, list(before), after)
        if best is None:
            return None
        t, k, before, after = best
        baseline, recent = before[1] / before[0], after[1] / after[0]
        if baseline <= 0 or recent < baseline * (1.0 + self.min_rise):
            return None
        evidence = ErrorDriftEvidence("adwin", self.delta, t, baseline, recent, int(before[0]), int(after[0]))
        return ErrorDriftFinding("rise", recent / baseline - 1.0, date.fromordinal(days[k]), at, evidence)

    def _rearm(self, keep_from: int) -> None:
        """A new baseline: a fresh scale and ADWIN; day aggregates from `keep_from` on."""
        self._adwin = self._new_adwin()
        self._scale = None
        self._warmup_n, self._warmup_sum = 0, 0.0
        self._days = {d: row for d, row in self._days.items() if d >= keep_from}

    def _new_adwin(self) -> drift.ADWIN:
        return drift.ADWIN(delta=self.delta, clock=self.clock)

    @property
    def findings(self) -> list[ErrorDriftFinding]:
        """Findings of the last `update`."""
        return list(self._findings)

    @property
    def baseline_error(self) -> float | None:
        """The error level the detector compares with (None while it learns it)."""
        return self._scale

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, ADWIN included (`core.river_codec`)."""
        return {
            "version": STATE_VERSION,
            "delta": self.delta,
            "min_samples": self.min_samples,
            "min_rise": self.min_rise,
            "clock": self.clock,
            "scale": self._scale,
            "warmup_n": self._warmup_n,
            "warmup_sum": self._warmup_sum,
            "days": [[d, *row] for d, row in sorted(self._days.items())],
            "adwin": river_codec.dump(self._adwin),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "ModelDriftDetector":
        """Restore `state_dict()`'s output; a foreign or damaged state raises ValueError."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {state.get('version')!r}; valid: {STATE_VERSION}")
        adwin = river_codec.load(state["adwin"])
        if not isinstance(adwin, drift.ADWIN):
            raise ValueError(f"state holds a {type(adwin).__name__}, not an ADWIN")
        self._adwin = adwin
        self._scale = None if state["scale"] is None else float(state["scale"])
        self._warmup_n, self._warmup_sum = int(state["warmup_n"]), float(state["warmup_sum"])
        self._days = {int(d): [int(n), float(s), float(q)] for d, n, s, q in state["days"]}
        self._findings = []
        return self

    def _reset(self) -> None:
        self._adwin = self._new_adwin()
        self._scale = None
        self._warmup_n, self._warmup_sum = 0, 0.0
        self._days = {}
        self._findings = []


def _welch_t(a: list, b: list) -> float | None:
    """Welch's t of mean(b) - mean(a) from [count, sum, sum of squares]."""
    na, nb = a[0], b[0]
    if na < 2 or nb < 2:
        return None
    ma, mb = a[1] / na, b[1] / nb
    va = max(a[2] / na - ma * ma, 0.0) * na / (na - 1)
    vb = max(b[2] / nb - mb * mb, 0.0) * nb / (nb - 1)
    se = math.sqrt(va / na + vb / nb)
    if se == 0:
        return math.inf if mb > ma else None
    return (mb - ma) / se


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "the potential model's error rose +40% since 2025-04-01".

    >>> summary(Subject("model", "potential"), "rise", {"size": 0.4, "started_on": "2025-04-01"})
    "the potential model's error rose +40% since 2025-04-01"
    """
    if state in RESOLVED_STATES:
        return f"the {subject.label} model's error is back to normal"
    size = evidence.get("size")
    how_much = f" {signed_percent(size)}" if size is not None else ""
    since = f" since {evidence['started_on']}" if evidence.get("started_on") else ""
    return f"the {subject.label} model's error rose{how_much}{since}"
