"""Market shock: a region's demand drops or rises against the rest of the country."""

from __future__ import annotations

import base64
import math
import pickle
from collections import deque
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Mapping

from river import drift

MEASURES = ("sales", "orders")
DIRECTIONS = ("drop", "rise")
STATE_VERSION = 1

# Informative days kept per region: the warm-up, the re-arm and the stretch between a
# change's start and its detection must fit (a slow change takes months to confirm).
_MIN_BUFFER_DAYS = 366
# A share is kept inside (_EPS, 1 - _EPS) so the variance p(1 - p) never vanishes.
_EPS = 1e-9


@dataclass(frozen=True)
class ShockEvidence:
    """The numbers behind a `ShockFinding`.

    Shares are the region's part of the country's measure (sales or orders) on
    informative days, which removes the seasonality every region shares.
    """

    detector: str               # the river.drift detector that fired, e.g. "page_hinkley"
    statistic: float            # its test statistic at detection (standardised cumulative deviation)
    threshold: float            # the threshold it crossed
    baseline_share: float       # region's share before the change
    recent_share: float         # region's share since the estimated start
    expected_since_start: float  # what the region would have had since the start at the baseline share
    actual_since_start: float   # what it had
    days_since_start: int       # informative (trading) days from the start to the detection, inclusive


@dataclass(frozen=True)
class ShockFinding:
    """A region's demand moved away from the rest of the country."""

    region: str
    direction: str              # "drop" or "rise"
    size: float                 # relative change of the region's level vs before, e.g. -0.31
    start: date                 # estimated first day of the change
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
    the detector judges each region's *share* of the country's total, not its level:
    on each day with any sales it compares the region's sales x with what its
    baseline share p predicts from the day's total T, and standardises the residual
    by its own history,

        z = (x - p T) / sqrt(kappa p (1 - p) T),

    where kappa (the dispersion of order values) makes z unit-variance for the
    compound-Poisson noise of orders. Two river `PageHinkley` detectors per region,
    one per direction, accumulate z; a drop or rise is found when the cumulative
    deviation passes `threshold`. The day the cumulative sum last left zero is the
    estimated start, and the size compares the region's share since then with its
    baseline share, as odds, which equals the factor by which the region moved
    relative to the rest (-0.30 for a 30% drop).

    A region is judged only after `min_history_days` days with sales in the
    country (weekends and holidays do not count). After a finding the region starts
    over: its baseline is learnt anew from `rearm_days` days after the detection, so
    one shock gives one finding and the new level becomes normal.

    Detection speed is limited by the number of orders per region and day: the
    cumulative evidence for a 30% drop grows by about 0.2 (sales) or 0.45 (order
    counts) nats per trading day for a region with 9 orders a day, and ruling out
    false alarms for decades needs about 9 nats. With order counts at hand
    (`measure="orders"`) the same false-alarm rate is reached about twice as fast,
    because order values add noise but no information when a shock thins orders.

    Parameters
    ----------
    threshold
        PageHinkley threshold (lambda) on the cumulative standardised deviation,
        > 0. Higher: fewer false alarms, later detection.
    delta
        PageHinkley delta: the per-day standardised deviation tolerated before it
        counts, >= 0. About half the shift to detect quickest.
    min_history_days
        Days with sales (in the country) before a region is judged, >= 2.
    rearm_days
        Days with sales after a finding during which the region's new baseline is
        learnt and it cannot fire again, >= 2.
    baseline_halflife_days
        Half-life, in days with sales, of the baseline share and of kappa, > 0.
        Long enough that a shock is not absorbed before it is confirmed.
    measure
        "sales" (default: the amounts in `sales_by_region`) or "orders" (order
        counts, passed as `orders_by_region`).

    Examples
    --------
    Three regions share a strong seasonality; region "B" loses 40% of its orders from
    day 300 on.

    >>> import numpy as np
    >>> from datetime import date, timedelta
    >>> rng = np.random.default_rng(3)
    >>> detector = MarketShockDetector()
    >>> base = {"A": 12.0, "B": 8.0, "C": 20.0}        # orders per day
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
    (1, 'B', 'drop', -0.46)
    >>> f.start, f.detected_on, f.evidence.detector
    (datetime.date(2024, 10, 27), datetime.date(2024, 11, 6), 'page_hinkley')
    >>> (day0 + timedelta(days=300)).isoformat()
    '2024-10-27'
    """

    def __init__(self, threshold: float = 12.0, delta: float = 0.3, min_history_days: int = 60,
                 rearm_days: int = 40, baseline_halflife_days: float = 250.0, min_batch_orders: float = 5.0,
                 measure: str = "sales"):
        if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
        if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
        if not (isinstance(min_history_days, int) and min_history_days >= 2):
            raise ValueError(f"min_history_days must be an integer >= 2, got {min_history_days!r}")
        if not (isinstance(rearm_days, int) and rearm_days >= 2):
            raise ValueError(f"rearm_days must be an integer >= 2, got {rearm_days!r}")
        if not (isinstance(baseline_halflife_days, (int, float)) and math.isfinite(baseline_halflife_days)
                and baseline_halflife_days > 0):
            raise ValueError(f"baseline_halflife_days must be a finite number > 0, got {baseline_halflife_days!r}")
        if not (isinstance(min_batch_orders, (int, float)) and math.isfinite(min_batch_orders)
                and min_batch_orders >= 0):
            raise ValueError(f"min_batch_orders must be a finite number >= 0, got {min_batch_orders!r}")
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(map(repr, MEASURES))}, got {measure!r}")
        self.threshold = float(threshold)
        self.delta = float(delta)
        self.min_history_days = min_history_days
        self.rearm_days = rearm_days
        self.baseline_halflife_days = float(baseline_halflife_days)
        self.min_batch_orders = float(min_batch_orders)
        self.measure = measure
        self._reset()

    # --- the update -------------------------------------------------------------------

    def update(self, day: date, sales_by_region: Mapping[str, float],
               orders_by_region: Mapping[str, float] | None = None) -> "MarketShockDetector":
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
        for region in set(signal) | set(sales):
            if region not in self._regions:
                self._regions[region] = _Region.new(self._fresh_detectors(), self.min_history_days)
        total = sum(signal.values())
        if total <= 0:
            return self
        total_sales = sum(sales.values())
        for region in sorted(self._regions):
            finding = self._judge(region, day, signal.get(region, 0.0), total,
                                  sales.get(region, 0.0), total_sales)
            if finding is not None:
                self._findings.append(finding)
        return self

    def _judge(self, region: str, day: date, x: float, total: float,
               x_sales: float, total_sales: float) -> ShockFinding | None:
        st = self._regions[region]
        st.buffer.append((day.toordinal(), x, total, x_sales, total_sales))
        if st.warmup_left > 0:
            st.warmup_left -= 1
            if st.warmup_left == 0:
                st.start_baseline(self._decay)
            return None
        p = st.share()
        if p <= _EPS:  # never sold anything: nothing to compare with
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
        finding = None
        for direction, detector in (("drop", st.down), ("rise", st.up)):
            detector.update(z)
            statistic = _ph_statistic(detector, direction)
            # The cumulative sum is back at its extreme: a change, if any, starts later.
            if statistic <= 0.0:
                st.pending[direction] = None
            elif st.pending[direction] is None:
                st.pending[direction] = (batch.first_day, p)
            if detector.drift_detected and finding is None:
                finding = self._finding(region, direction, day, statistic, st)
        st.learn(batch.x, batch.total, self._decay ** batch.days, residual=residual, p=p)
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
            detector="page_hinkley", statistic=statistic, threshold=self.threshold,
            baseline_share=p, recent_share=q, expected_since_start=p * total,
            actual_since_start=x, days_since_start=len(since),
        )
        return ShockFinding(region, direction, size, date.fromordinal(start), day, evidence)

    def _fresh_detectors(self) -> tuple[drift.PageHinkley, drift.PageHinkley]:
        # alpha=1: a plain CUSUM, no forgetting; min_instances=1 because the warm-up
        # (and after a finding the re-arm) has learnt the baseline already.
        make = lambda mode: drift.PageHinkley(min_instances=1, delta=self.delta, threshold=self.threshold,
                                              alpha=1.0, mode=mode)
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
    def last_day(self) -> date | None:
        """The last day fed."""
        return self._last_day

    # --- state ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; the river detectors are pickled and base64-encoded."""
        return {
            "version": STATE_VERSION,
            "threshold": self.threshold, "delta": self.delta, "min_history_days": self.min_history_days,
            "rearm_days": self.rearm_days, "baseline_halflife_days": self.baseline_halflife_days,
            "min_batch_orders": self.min_batch_orders, "measure": self.measure,
            "last_day": self._last_day.isoformat() if self._last_day else None,
            "regions": {region: st.to_dict() for region, st in sorted(self._regions.items())},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "MarketShockDetector":
        """Restore `state_dict()`'s output. Hyperparameters stay those of this instance.

        Only load states this service wrote: the river detectors inside are pickles.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {state.get('version')!r}; valid: {STATE_VERSION}")
        if state.get("measure", self.measure) != self.measure:
            raise ValueError(f"state was saved with measure={state['measure']!r}, "
                             f"this detector uses measure={self.measure!r}")
        regions = {region: _Region.from_dict(data) for region, data in state.get("regions", {}).items()}
        for st in regions.values():
            for detector in (st.down, st.up):
                detector.threshold, detector.delta = self.threshold, self.delta
        last = state.get("last_day")
        self._regions = regions
        self._last_day = date.fromisoformat(last) if last else None
        self._findings = []
        return self

    def _reset(self) -> None:
        self._regions: dict[str, _Region] = {}
        self._last_day: date | None = None
        self._findings: list[ShockFinding] = []


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
        self.warmup_left = 0      # days with sales still to learn before the region is judged
        self.warmup_rows = 0      # length of the current warm-up
        self.sum_x = 0.0          # exponentially weighted sums of the region's and the country's measure
        self.sum_total = 0.0
        self.kappa = 1.0          # dispersion: Var(x - pT) = kappa p (1 - p) T
        self.kappa_num = 0.0
        self.kappa_den = 0.0
        self.down: drift.PageHinkley
        self.up: drift.PageHinkley
        self.pending: dict[str, tuple[int, float] | None] = {"drop": None, "rise": None}
        self.batch = _Batch()
        self.buffer: deque[tuple[int, float, float, float, float]] = deque(maxlen=_MIN_BUFFER_DAYS)

    @classmethod
    def new(cls, detectors: tuple[drift.PageHinkley, drift.PageHinkley], warmup: int) -> "_Region":
        st = cls()
        st.down, st.up = detectors
        st.warmup_left = st.warmup_rows = warmup
        return st

    def share(self) -> float:
        return self.sum_x / self.sum_total if self.sum_total > 0 else 0.0

    def start_baseline(self, decay: float) -> None:
        """End of a warm-up: baseline share and dispersion from the warm-up days."""
        rows = list(self.buffer)[-self.warmup_rows:]
        n = len(rows)
        self.sum_x = sum(decay ** (n - 1 - i) * row[1] for i, row in enumerate(rows))
        self.sum_total = sum(decay ** (n - 1 - i) * row[2] for i, row in enumerate(rows))
        p = self.share()
        if p <= _EPS or p >= 1 - _EPS:
            self.kappa_num, self.kappa_den, self.kappa = 0.0, 0.0, 1.0
            return
        self.kappa_num = sum(decay ** (n - 1 - i) * (row[1] - p * row[2]) ** 2 / (p * (1 - p) * row[2])
                             for i, row in enumerate(rows))
        self.kappa_den = sum(decay ** (n - 1 - i) for i in range(n))
        self._update_kappa()

    def learn(self, x: float, total: float, decay: float, residual: float | None = None,
              p: float | None = None) -> None:
        self.sum_x = decay * self.sum_x + x
        self.sum_total = decay * self.sum_total + total
        if residual is not None and p is not None:
            self.kappa_num = decay * self.kappa_num + residual ** 2 / (p * (1 - p) * total)
            self.kappa_den = decay * self.kappa_den + 1.0
            self._update_kappa()

    def _update_kappa(self) -> None:
        if self.kappa_den > 0 and self.kappa_num > 0:
            self.kappa = self.kappa_num / self.kappa_den

    def rearm(self, detectors: tuple[drift.PageHinkley, drift.PageHinkley], warmup: int) -> None:
        """After a finding: learn the new level from scratch, keep the dispersion."""
        self.down, self.up = detectors
        self.pending = {"drop": None, "rise": None}
        self.batch = _Batch()
        self.warmup_left = self.warmup_rows = warmup
        self.sum_x = self.sum_total = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "warmup_left": self.warmup_left, "warmup_rows": self.warmup_rows,
            "sum_x": self.sum_x, "sum_total": self.sum_total,
            "kappa": self.kappa, "kappa_num": self.kappa_num, "kappa_den": self.kappa_den,
            "pending": {k: list(v) if v else None for k, v in self.pending.items()},
            "batch": self.batch.to_list(),
            "buffer": [list(row) for row in self.buffer],
            "detectors": base64.b64encode(pickle.dumps((self.down, self.up))).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "_Region":
        st = cls()
        st.warmup_left = int(data["warmup_left"])
        st.warmup_rows = int(data["warmup_rows"])
        st.sum_x, st.sum_total = float(data["sum_x"]), float(data["sum_total"])
        st.kappa, st.kappa_num, st.kappa_den = float(data["kappa"]), float(data["kappa_num"]), float(data["kappa_den"])
        unknown = set(data["pending"]) - set(DIRECTIONS)
        if unknown:
            raise ValueError(f"unknown directions {sorted(unknown)}; valid: {', '.join(DIRECTIONS)}")
        st.pending = {d: (int(v[0]), float(v[1])) if v else None for d, v in data["pending"].items()}
        first_day, days, x, total = data["batch"]
        st.batch = _Batch(int(first_day), int(days), float(x), float(total))
        st.buffer.extend((int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in data["buffer"])
        st.down, st.up = pickle.loads(base64.b64decode(data["detectors"]))
        return st


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
