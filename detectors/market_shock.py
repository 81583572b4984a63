"""Market shock: a region's demand drops or rises against the rest of the country."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np
from river import drift

from core import river_codec
from core.formatting import percent
from core.records import RESOLVED_STATES, Signal, Subject
from detectors.protocol import RegionalDay
from monitor.state import AccountState
from monitor.regions import region_name

MEASURES = ("sales", "orders")
DIRECTIONS = ("drop", "rise")
STATE_VERSION = 3  # 2: river objects as data (core.river_codec), no pickle; 3: buffers as arrays

# Informative days kept per region: the warm-up, the re-arm and the stretch between a
# change's start and its detection must fit (a slow change takes months to confirm).
_MIN_BUFFER_DAYS = 366
# A share is kept inside (_EPS, 1 - _EPS) so the variance p(1 - p) never vanishes.
_EPS = 1e-9
# A region whose drop or rise statistic passes this fraction of the threshold is
# left out of the other regions' reference until it settles.
_SUSPECT = 0.5
# ... unless the regions left out hold this much of the rest of the country.
_MAX_LEFT_OUT = 0.5
# Bounds of a region's level relative to where it started (after several findings).
_MIN_LEVEL = 1e-3


@dataclass(frozen=True)
class ShockEvidence:
    """The numbers behind a `ShockFinding`.

    Shares are the region's part of the country's measure (sales or orders) on
    informative days, which removes the seasonality every region shares.
    """

    detector: str  # the river.drift detector that fired, e.g. "page_hinkley"
    statistic: float  # its test statistic at detection (standardised cumulative deviation)
    threshold: float  # the threshold it crossed
    baseline_share: float  # region's share before the change
    recent_share: float  # region's share since the estimated start
    expected_since_start: float  # what the region would have had since the start at the baseline share
    actual_since_start: float  # what it had
    days_since_start: int  # informative (trading) days from the start to the detection, inclusive


@dataclass(frozen=True)
class ShockFinding:
    """A region's demand moved away from the rest of the country."""

    region: str
    direction: str  # "drop" or "rise"
    size: float  # relative change of the region's level vs before, e.g. -0.31
    start: date  # estimated first day of the change
    detected_on: date
    evidence: ShockEvidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, evidence as a nested dict."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["detected_on"] = self.detected_on.isoformat()
        return out


class MarketShockDetector:
    """Finds regions whose demand steps down or up relative to the rest of the country.

    Fed once per complete day of event time with that day's sales per region. Every
    region shares the seasonality (the December peak, the August lull, weekends), so
    the detector judges each region's *share*, not its level: it compares the
    region's sales x with what its baseline share p predicts from x plus the rest of
    the country, T, and standardises the residual by its own history,

        z = (x - p T) / sqrt(kappa p (1 - p) T),

    where kappa (the dispersion of order values, learnt per region) makes z
    unit-variance under the compound-Poisson noise of orders. Small regions pool
    consecutive days until a batch holds about `min_batch_orders` orders' worth of
    sales, so one large order does not look like a boom. Two river `PageHinkley`
    detectors per region (one per direction, alpha=1: a CUSUM) accumulate z; a drop
    or rise is found when the cumulative deviation passes `threshold`. The day the
    cumulative sum last left zero is the estimated start; the size compares the
    region's share since then with its baseline share as odds, which is the factor
    by which the region moved against the rest (-0.30 for a 30% drop).

    A region is judged after `min_history_days` days with sales in the country
    (weekends and holidays do not count). After a finding it starts over: its
    baseline is learnt anew from the `rearm_days` days after the detection, so one
    shock gives one finding and the new level becomes normal. Its measured change
    is then taken out of the other regions' rest of the country, so they do not
    look as if they rose when it dropped. (Until then they do: with few regions, or
    one region holding much of the country, a large shock can make a neighbour fire.)

    Detection speed is limited by the orders per region and day, not by the
    method: for a region with 9 orders a trading day, a 30% drop adds about 0.2
    nats of evidence a day through sales (0.45 through order counts), and keeping
    false alarms below one per 20 region-years needs about 9 nats. With order counts
    at hand (`measure="orders"`, e.g. with delta=0.35) the detection is about twice
    as fast, because a shock that thins orders leaves the order values unchanged and
    they only add noise. See docs/benchmarks/detectors.md.

    Parameters
    ----------
    threshold
        PageHinkley threshold (lambda) on the cumulative standardised deviation,
        > 0. Higher: fewer false alarms, later detection.
    delta
        PageHinkley delta: the standardised deviation per batch tolerated before it
        counts, >= 0. About half the shift of the smallest change worth catching
        quickly.
    min_history_days
        Days with sales (in the country) before a region is judged, integer >= 2.
    rearm_days
        Days with sales after a finding during which the region's new baseline is
        learnt and it cannot fire again, integer >= 2.
    baseline_halflife_days
        Half-life, in days with sales, of the baseline share and of kappa, > 0. Long
        enough that a shock is not absorbed before it is confirmed.
    min_batch_orders
        Least expected orders (sales: order-value-equivalent) in one observation of
        a region; days are pooled until it is reached, >= 0 (0: every day alone).
    min_change
        Relative change below which a region with many orders is not alarmed, in
        [0, 1): PageHinkley's delta is raised to half this change in z units of the
        batch when that is more than `delta`. Without it a region judged daily on
        dozens of orders would flag changes of a few percent, and false alarms would
        grow with the order volume.
    measure
        "sales" (default: the amounts in `sales_by_region`) or "orders" (order
        counts, passed as `orders_by_region`).

    Examples
    --------
    Five regions share a strong seasonality; region "B" loses 40% of its orders from
    day 300 on.

    >>> import numpy as np
    >>> from datetime import date, timedelta
    >>> rng = np.random.default_rng(3)
    >>> detector = MarketShockDetector()
    >>> base = {"A": 12.0, "B": 8.0, "C": 20.0, "D": 15.0, "E": 10.0}   # orders per day
    >>> day0 = date(2024, 1, 1)
    >>> found = []
    >>> for t in range(450):
    ...     day = day0 + timedelta(days=t)
    ...     season = (0.9, 0.95, 1.05, 1.05, 1.0, 0.95, 0.8, 0.6, 0.95, 1.05, 1.2, 1.5)[day.month - 1]
    ...     sales = {}
    ...     for region, rate in base.items():
    ...         factor = 0.6 if region == "B" and t >= 300 else 1.0
    ...         n = rng.poisson(rate * season * factor)
    ...         sales[region] = float(rng.gamma(2.0, 500.0, size=n).sum())
    ...     found += detector.update(day, sales).findings
    >>> f = found[0]
    >>> len(found), f.region, f.direction, round(f.size, 2)
    (1, 'B', 'drop', -0.48)
    >>> f.start, f.detected_on, f.evidence.detector
    (datetime.date(2024, 10, 27), datetime.date(2024, 11, 15), 'page_hinkley')
    >>> (day0 + timedelta(days=300)).isoformat()
    '2024-10-27'
    """

    name = kind = "market_shock"
    states = DIRECTIONS
    observes = RegionalDay
    triggers_rebalance = False  # a market moved: people decide, the territories may be fine
    # State, set by `_reset` and `load_state_dict`.
    _regions: dict[str, _Region]
    _last_day: date | None
    _findings: list[ShockFinding]

    def __init__(
        self,
        threshold: float = 10.0,
        delta: float = 0.3,
        min_history_days: int = 60,
        rearm_days: int = 90,
        baseline_halflife_days: float = 300.0,
        min_batch_orders: float = 8.0,
        min_change: float = 0.2,
        measure: str = "sales",
    ):
        if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
        if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
        if not (isinstance(min_history_days, int) and min_history_days >= 2):
            raise ValueError(f"min_history_days must be an integer >= 2, got {min_history_days!r}")
        if not (isinstance(rearm_days, int) and rearm_days >= 2):
            raise ValueError(f"rearm_days must be an integer >= 2, got {rearm_days!r}")
        if not (
            isinstance(baseline_halflife_days, (int, float))
            and math.isfinite(baseline_halflife_days)
            and baseline_halflife_days > 0
        ):
            raise ValueError(f"baseline_halflife_days must be a finite number > 0, got {baseline_halflife_days!r}")
        if not (
            isinstance(min_batch_orders, (int, float)) and math.isfinite(min_batch_orders) and min_batch_orders >= 0
        ):
            raise ValueError(f"min_batch_orders must be a finite number >= 0, got {min_batch_orders!r}")
        if not (isinstance(min_change, (int, float)) and 0 <= min_change < 1):
            raise ValueError(f"min_change must be a number in [0, 1), got {min_change!r}")
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(map(repr, MEASURES))}, got {measure!r}")
        self.threshold = float(threshold)
        self.delta = float(delta)
        self.min_history_days = min_history_days
        self.rearm_days = rearm_days
        self.baseline_halflife_days = float(baseline_halflife_days)
        self.min_batch_orders = float(min_batch_orders)
        self.min_change = float(min_change)
        self.measure = measure
        self._reset()

    # --- the update -------------------------------------------------------------------

    def update(
        self, day: date, sales_by_region: Mapping[str, float], orders_by_region: Mapping[str, float] | None = None
    ) -> "MarketShockDetector":
        """Judge one complete day; `findings` then holds what it found.

        Regions missing from the mapping sold nothing that day. A day at or before the
        last one fed is ignored, so replaying after a restore is harmless. Days on
        which the whole country sold nothing (weekends) carry no information and only
        advance the clock.
        """
        if isinstance(day, datetime):
            day = day.date()
        if not isinstance(day, date):
            raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
        self._findings = []
        if self._last_day is not None and day <= self._last_day:
            return self
        sales = _clean(sales_by_region, "sales_by_region")
        if self.measure == "orders":
            if orders_by_region is None:
                raise ValueError("measure='orders' needs orders_by_region (order counts per region)")
            signal = _clean(orders_by_region, "orders_by_region")
        else:
            signal = sales
        self._last_day = day
        for region in sorted(set(signal) | set(sales)):
            if region not in self._regions:
                self._regions[region] = _Region.new(self._fresh_detectors(), self.min_history_days)
        if sum(signal.values()) <= 0:
            return self
        rests = self._rests(signal)
        for region in sorted(self._regions):
            x = signal.get(region, 0.0)
            finding = self._judge(region, day, x, x + rests[region])
            if finding is not None:
                self._findings.append(finding)
        return self

    def observe(self, observation: RegionalDay) -> list[ShockFinding]:
        return self.update(observation.day, observation.sales, observation.counts).findings

    def signal(self, finding: ShockFinding, emitted_at: datetime) -> Signal:
        """A move of a third or more is critical."""
        subject = Subject("region", finding.region, region_name(finding.region))
        evidence = {
            "direction": finding.direction,
            "size": round(finding.size, 4),
            "started_on": finding.start.isoformat(),
            **finding.to_dict()["evidence"],
        }
        return Signal.make(
            kind=self.kind,
            state=finding.direction,
            severity="critical" if abs(finding.size) >= 0.3 else "warning",
            subject=subject,
            evidence=evidence,
            detected_at=datetime.combine(finding.detected_on, datetime.min.time(), timezone.utc),
            emitted_at=emitted_at,
            summary=summary(subject, finding.direction, evidence),
        )

    def example_signal(self) -> Signal:
        """A signal as it makes them (docs/EVENTS.md lists its evidence)."""
        evidence = ShockEvidence("page_hinkley", 12.0, 10.0, 0.1, 0.07, 100.0, 70.0, 15)
        finding = ShockFinding("DE-02", "drop", -0.3, date(2025, 5, 1), date(2025, 5, 20), evidence)
        return self.signal(finding, datetime(2025, 6, 1, tzinfo=timezone.utc))

    def open_subjects(self) -> None:
        return None  # change points: a shock is news, not a lasting state

    def affected_accounts(self, finding: ShockFinding, accounts: Sequence[AccountState]) -> frozenset[str]:
        return frozenset(a.account_id for a in accounts if a.region == finding.region)

    def _rests(self, signal: Mapping[str, float]) -> dict[str, float]:
        """Each region's rest of the country, robust to the other regions' changes.

        Changes already found are taken out through the regions' levels. A region that
        is re-learning its level after a finding, or whose statistic is past half the
        threshold (a change may be under way), is left out of the others' reference,
        and the remaining regions are scaled up by the national shares, so a region's
        drop does not make the others look as if they rose.
        """
        # Sorted everywhere: sums in a fixed order give the same floats after a restore.
        regions = sorted(self._regions)
        corrected = {region: signal.get(region, 0.0) / self._regions[region].level for region in regions}
        total = sum(corrected.values())
        shares = {region: self._regions[region].national_share() for region in regions}
        excluded = [region for region in regions if self._suspect(self._regions[region])]
        rests = {}
        for region in regions:
            full = max(total - corrected[region], 0.0)
            others = [j for j in excluded if j != region]
            left_out = sum(shares[j] or 0.0 for j in others)
            own = shares[region] or 0.0
            if not others or left_out >= _MAX_LEFT_OUT * (1.0 - own):
                rests[region] = full
                continue
            partial = max(full - sum(corrected[j] for j in others), 0.0)
            rests[region] = partial * (1.0 - own) / (1.0 - own - left_out)
        return rests

    def _suspect(self, st: "_Region") -> bool:
        if st.rearming:
            return True
        return (
            st.judged and max(_ph_statistic(st.down, "drop"), _ph_statistic(st.up, "rise")) > _SUSPECT * self.threshold
        )

    def _judge(self, region: str, day: date, x: float, total: float) -> ShockFinding | None:
        st = self._regions[region]
        if total <= 0:
            return None
        st.buffer.append((day.toordinal(), x, total))
        if st.warmup_left > 0:
            st.warmup_left -= 1
            if st.warmup_left == 0:
                st.start_baseline(self._decay)
            return None
        p = st.share()
        if p <= _EPS or p >= 1.0 - _EPS:
            # never sold anything, or is the whole company (one state's accounts): its share
            # has nothing to move against
            st.learn(x, total, self._decay)
            return None
        # Small regions: pool days until the batch holds enough orders that its
        # residual is close to normal (one large order must not look like a boom).
        st.batch.add(day, x, total)
        if p * st.batch.total / st.kappa < self.min_batch_orders:
            return None
        batch, st.batch = st.batch, _Batch()
        residual = batch.x - p * batch.total
        z = residual / math.sqrt(st.kappa * p * (1.0 - p) * batch.total)
        # delta in z units is a smaller relative change the more orders a batch holds;
        # big regions (judged daily on many orders) tolerate changes below min_change / 2.
        effective_orders = p * batch.total / st.kappa
        delta = max(self.delta, 0.5 * self.min_change * math.sqrt(effective_orders / (1.0 - p)))
        finding = None
        for direction, detector in (("drop", st.down), ("rise", st.up)):
            detector.delta = delta
            detector.update(z)
            statistic = _ph_statistic(detector, direction)
            # The cumulative sum is back at its extreme: a change, if any, starts later.
            if statistic <= 0.0:
                st.pending[direction] = None
            elif st.pending[direction] is None:
                st.pending[direction] = (batch.first_day, p)
            if detector.drift_detected and finding is None:
                finding = self._finding(region, direction, day, statistic, st)
        st.learn(batch.x, batch.total, self._decay**batch.days, residual=residual, p=p)
        if finding is not None:
            st.rearm(self._fresh_detectors(), self.rearm_days)
        return finding

    def _finding(self, region: str, direction: str, day: date, statistic: float, st: "_Region") -> ShockFinding:
        pending = st.pending[direction] or (day.toordinal(), st.share())
        start, p = pending
        since = [row for row in st.buffer if row[0] >= start]
        x = sum(row[1] for row in since)
        total = sum(row[2] for row in since)
        q = x / total if total > 0 else 0.0
        p = min(max(p, _EPS), 1 - _EPS)
        q = min(max(q, _EPS), 1 - _EPS)
        size = (q / (1.0 - q)) / (p / (1.0 - p)) - 1.0
        evidence = ShockEvidence(
            detector="page_hinkley",
            statistic=statistic,
            threshold=self.threshold,
            baseline_share=p,
            recent_share=q,
            expected_since_start=p * total,
            actual_since_start=x,
            days_since_start=len(since),
        )
        return ShockFinding(region, direction, size, date.fromordinal(start), day, evidence)

    def _fresh_detectors(self) -> tuple[drift.PageHinkley, drift.PageHinkley]:
        # alpha=1: a plain CUSUM, no forgetting; min_instances=1 because the warm-up
        # (and after a finding the re-arm) has learnt the baseline already.
        def make(mode: str) -> drift.PageHinkley:
            return drift.PageHinkley(min_instances=1, delta=self.delta, threshold=self.threshold, alpha=1.0, mode=mode)

        return make("down"), make("up")

    @property
    def _decay(self) -> float:
        return 0.5 ** (1.0 / self.baseline_halflife_days)

    # --- reading ----------------------------------------------------------------------

    @property
    def findings(self) -> list[ShockFinding]:
        """Findings of the last `update`, by region."""
        return list(self._findings)

    @property
    def statistics(self) -> dict[str, dict[str, float]]:
        """Per judged region, the current drop and rise statistics (0 = nothing building up)."""
        out = {}
        for region, st in sorted(self._regions.items()):
            if st.warmup_left == 0:
                out[region] = {"drop": _ph_statistic(st.down, "drop"), "rise": _ph_statistic(st.up, "rise")}
        return out

    @property
    def levels(self) -> dict[str, float]:
        """Per region, its level against the rest of the country relative to its first
        baseline, as measured after its findings (1.0: no change found)."""
        return {region: st.level for region, st in sorted(self._regions.items())}

    @property
    def last_day(self) -> date | None:
        """The last day fed."""
        return self._last_day

    # --- state ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, the river detectors included (`core.river_codec`)."""
        return {
            "version": STATE_VERSION,
            "threshold": self.threshold,
            "delta": self.delta,
            "min_history_days": self.min_history_days,
            "rearm_days": self.rearm_days,
            "baseline_halflife_days": self.baseline_halflife_days,
            "min_batch_orders": self.min_batch_orders,
            "min_change": self.min_change,
            "measure": self.measure,
            "last_day": self._last_day.isoformat() if self._last_day else None,
            "regions": {region: st.to_dict() for region, st in sorted(self._regions.items())},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "MarketShockDetector":
        """Restore `state_dict()`'s output. Hyperparameters stay those of this instance."""
        if state.get("version") not in (2, STATE_VERSION):
            raise ValueError(f"unknown state version {state.get('version')!r}; valid: 2, {STATE_VERSION}")
        if state.get("measure", self.measure) != self.measure:
            raise ValueError(
                f"state was saved with measure={state['measure']!r}, this detector uses measure={self.measure!r}"
            )
        regions = {region: _Region.from_dict(data) for region, data in state.get("regions", {}).items()}
        for st in regions.values():
            for detector in (st.down, st.up):
                detector.threshold = self.threshold  # delta is set before every update
        last = state.get("last_day")
        self._regions = regions
        self._last_day = date.fromisoformat(last) if last else None
        self._findings = []
        return self

    def _reset(self) -> None:
        self._regions = {}
        self._last_day = None
        self._findings = []


class _Batch:
    """Consecutive days pooled into one observation."""

    def __init__(self, first_day: int = 0, days: int = 0, x: float = 0.0, total: float = 0.0) -> None:
        self.first_day, self.days, self.x, self.total = first_day, days, x, total

    def add(self, day: date, x: float, total: float) -> None:
        if self.days == 0:
            self.first_day = day.toordinal()
        self.days += 1
        self.x += x
        self.total += total

    def to_list(self) -> list[float]:
        return [self.first_day, self.days, self.x, self.total]


class _Region:
    """One region's baseline, dispersion, detectors and recent days."""

    def __init__(self) -> None:
        self.warmup_left = 0  # days with sales still to learn before the region is judged
        self.warmup_rows = 0  # length of the current warm-up
        self.level = 1.0  # the region's level against its first baseline, from its findings
        self.level_before = 1.0  # during a re-arm: the level before the finding ...
        self.share_before: float | None = None  # ... and the baseline share then
        self.sum_x = 0.0  # exponentially weighted sums of the region's and the country's measure
        self.sum_total = 0.0
        self.kappa = 1.0  # dispersion: Var(x - pT) = kappa p (1 - p) T
        self.kappa_num = 0.0
        self.kappa_den = 0.0
        self.down: drift.PageHinkley
        self.up: drift.PageHinkley
        self.pending: dict[str, tuple[int, float] | None] = {"drop": None, "rise": None}
        self.batch = _Batch()
        self.buffer: deque[tuple[int, float, float]] = deque(maxlen=_MIN_BUFFER_DAYS)  # (day, x, total)

    @classmethod
    def new(cls, detectors: tuple[drift.PageHinkley, drift.PageHinkley], warmup: int) -> "_Region":
        st = cls()
        st.down, st.up = detectors
        st.warmup_left = st.warmup_rows = warmup
        return st

    def share(self) -> float:
        return self.sum_x / self.sum_total if self.sum_total > 0 else 0.0

    @property
    def judged(self) -> bool:
        return self.warmup_left == 0

    @property
    def rearming(self) -> bool:
        return self.share_before is not None

    def national_share(self) -> float | None:
        """The region's share of the country with the changes found taken out (None
        before its first baseline)."""
        if self.share_before is not None:  # rearming
            share, level = self.share_before, self.level_before
        elif self.judged:
            share, level = self.share(), self.level
        else:
            return None
        share = min(max(share, _EPS), 1 - _EPS)
        odds = share / (1.0 - share) / level
        return odds / (1.0 + odds)

    def start_baseline(self, decay: float) -> None:
        """End of a warm-up: baseline share and dispersion from the warm-up days."""
        rows = list(self.buffer)[-self.warmup_rows :]
        n = len(rows)
        self.sum_x = sum(decay ** (n - 1 - i) * row[1] for i, row in enumerate(rows))
        self.sum_total = sum(decay ** (n - 1 - i) * row[2] for i, row in enumerate(rows))
        p = self.share()
        if self.share_before is not None:
            before = min(max(self.share_before, _EPS), 1 - _EPS)
            now = min(max(p, _EPS), 1 - _EPS)
            self.level = _clip_level(self.level_before * (now / (1 - now)) / (before / (1 - before)))
            self.share_before = None
        if p <= _EPS or p >= 1 - _EPS:
            self.kappa_num, self.kappa_den, self.kappa = 0.0, 0.0, 1.0
            return
        self.kappa_num = sum(
            decay ** (n - 1 - i) * (row[1] - p * row[2]) ** 2 / (p * (1 - p) * row[2]) for i, row in enumerate(rows)
        )
        self.kappa_den = sum(decay ** (n - 1 - i) for i in range(n))
        self._update_kappa()

    def learn(
        self, x: float, total: float, decay: float, residual: float | None = None, p: float | None = None
    ) -> None:
        self.sum_x = decay * self.sum_x + x
        self.sum_total = decay * self.sum_total + total
        if residual is not None and p is not None:
            self.kappa_num = decay * self.kappa_num + residual**2 / (p * (1 - p) * total)
            self.kappa_den = decay * self.kappa_den + 1.0
            self._update_kappa()

    def _update_kappa(self) -> None:
        if self.kappa_den > 0 and self.kappa_num > 0:
            self.kappa = self.kappa_num / self.kappa_den

    def rearm(self, detectors: tuple[drift.PageHinkley, drift.PageHinkley], warmup: int) -> None:
        """After a finding: learn the new baseline (share and dispersion) from scratch.

        When the re-arm ends, the region's level is measured from its new baseline
        against the old one, and from then on the other regions compare with a rest of
        the country that has this change taken out. (Not at once from the finding's
        size: after a false alarm that size is noise, and correcting every other
        region with it made more false alarms in the benchmark.)
        """
        self.level_before, self.share_before = self.level, self.share()
        self.down, self.up = detectors
        self.pending = {"drop": None, "rise": None}
        self.batch = _Batch()
        self.warmup_left = self.warmup_rows = warmup
        self.sum_x = self.sum_total = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "warmup_left": self.warmup_left,
            "warmup_rows": self.warmup_rows,
            "level": self.level,
            "level_before": self.level_before,
            "share_before": self.share_before,
            "sum_x": self.sum_x,
            "sum_total": self.sum_total,
            "kappa": self.kappa,
            "kappa_num": self.kappa_num,
            "kappa_den": self.kappa_den,
            "pending": {k: list(v) if v else None for k, v in self.pending.items()},
            "batch": self.batch.to_list(),
            # Saved every judged day: as the rows' exact bytes, faster than JSON numbers.
            "buffer": river_codec.dump_array(np.array(self.buffer, dtype=float).reshape(-1, 3), level=1),
            "detectors": river_codec.dump([self.down, self.up]),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "_Region":
        st = cls()
        st.warmup_left = int(data["warmup_left"])
        st.warmup_rows = int(data["warmup_rows"])
        st.level, st.level_before = float(data["level"]), float(data["level_before"])
        st.share_before = None if data["share_before"] is None else float(data["share_before"])
        st.sum_x, st.sum_total = float(data["sum_x"]), float(data["sum_total"])
        st.kappa, st.kappa_num, st.kappa_den = float(data["kappa"]), float(data["kappa_num"]), float(data["kappa_den"])
        unknown = set(data["pending"]) - set(DIRECTIONS)
        if unknown:
            raise ValueError(f"unknown directions {sorted(unknown)}; valid: {', '.join(DIRECTIONS)}")
        st.pending = {d: (int(v[0]), float(v[1])) if v else None for d, v in data["pending"].items()}
        first_day, days, x, total = data["batch"]
        st.batch = _Batch(int(first_day), int(days), float(x), float(total))
        rows = data["buffer"]  # version 2: a list of rows
        rows = river_codec.load_array(rows).tolist() if isinstance(rows, dict) else rows
        st.buffer.extend((int(r[0]), float(r[1]), float(r[2])) for r in rows)
        st.down, st.up = river_codec.load(data["detectors"])
        if not all(isinstance(d, drift.PageHinkley) for d in (st.down, st.up)):
            raise river_codec.CheckpointError("a region's detectors must be two PageHinkley")
        return st


def _clip_level(level: float) -> float:
    return min(max(level, _MIN_LEVEL), 1.0 / _MIN_LEVEL)


def _ph_statistic(detector: drift.PageHinkley, direction: str) -> float:
    """PageHinkley's test value for one direction (river 0.26 keeps it in private sums)."""
    if direction == "drop":
        return max(0.0, detector._max_decrease - detector._sum_decrease)
    return max(0.0, detector._sum_increase - detector._min_increase)


def _clean(values: Mapping[str, float], name: str) -> dict[str, float]:
    out = {}
    for region, value in values.items():
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}[{region!r}] must be a finite number >= 0, got {value!r}")
        out[str(region)] = value
    return out


def summary(subject: Subject, state: str, evidence: Mapping[str, Any]) -> str:
    """E.g. "market shock in Bavaria (DE-BY): demand dropped 20% against the rest of the country
    since 2025-05-01".

    >>> summary(Subject("region", "DE-BY", "Bavaria"), "rise", {"size": 0.25})
    'market shock in Bavaria (DE-BY): demand rose 25% against the rest of the country'
    """
    if state in RESOLVED_STATES:
        return f"market shock in {subject.label} is over"
    size = evidence.get("size")
    moved = "dropped" if state == "drop" else "rose" if state == "rise" else "moved"
    how_much = f" {percent(abs(float(size)))}" if size is not None else ""
    since = f" since {evidence['started_on']}" if evidence.get("started_on") else ""
    return f"market shock in {subject.label}: demand {moved}{how_much} against the rest of the country{since}"
