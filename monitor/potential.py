"""Online model of each account's expected yearly potential, learned from what accounts buy.

The potential model answers "how much would this account buy in a year, on average?"
for every account, new or old. Once a month of event time the planner calls
`learn_from_history`: for each account the model sees the features the account had
three months ago and what it bought since (the label, deseasonalised and annualised),
is scored on that prediction first (progressive validation), then learns from it.
`predict_potential` values every account now; a territory's potential is their sum.

The parts, all saved by `PotentialModel.state_dict`:

- `SeasonalIndex`, learned from the company's total sales per calendar month: sales
  features and labels are deseasonalised with it, so a 3-month label can be
  annualised without calling December's peak a trend;
- `RegionalLevels`, each region's sales against the typical region's: brings an
  account's past sales to its region's current level, so a regional market shock
  reaches every account of the region within a month or two instead of after
  a year of trailing sales;
- two profile models (river `BayesianLinearRegression` on the log of the account's
  realised yearly rate): from industry, size and region, and from those plus
  activity minutes and open pipeline; every account, even one without orders,
  gets an estimate;
- the combiner (river `BayesianLinearRegression` in money units), which blends the
  profile estimate with the account's own rates over the last 3 months and its whole
  history (up to 24): the own part weighs more the longer the history (h / (h + 6)
  before the learned weights) and the more regularly the account orders;
- the segment prior: the running mean label of industry x size band. It is used alone
  before the model has learned anything; after that a new account is valued by the
  segment prior (a quarter) and the firmographic profile (the rest), blended into
  the model as the account's history grows to `prior_months`. A new account of a
  known segment is never valued at zero.

Pure Python, numpy, pandas and river: no Kafka, no database. Months are UTC calendar
months of event time, as in `monitor.state`; "features at `at`" read only month
buckets strictly before `at`'s month.

Examples
--------

Four hundred accounts whose yearly potential grows with size, 24 months of noisy
monthly sales; the model learns month by month and beats the last 12 months' sales
as an estimate of the true potential:

>>> import random
>>> from datetime import datetime, timezone
>>> from monitor.state import AccountState, trailing_sum
>>> rng = random.Random(7)
>>> months = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
>>> truth, accounts = {}, []
>>> for i in range(400):
...     employees = int(rng.lognormvariate(3.5, 1.0)) + 1
...     truth[f"a{i}"] = 800 * employees ** 0.7 * rng.lognormvariate(0, 0.3)
...     sales = {k: truth[f"a{i}"] / 12 * rng.expovariate(1.0) for k in months}
...     accounts.append(AccountState(
...         f"a{i}", industry=rng.choice(["retail", "logistics"]), employees=employees,
...         region=rng.choice("NSEW"), known=True, profile_at="2024-01-01T00:00:00+00:00",
...         monthly_sales=sales))
>>> model = PotentialModel()
>>> for m in range(2, 25):  # month ends 2024-03-01 .. 2026-01-01
...     scored = learn_from_history(model, accounts, datetime(2024 + m // 12, m % 12 + 1, 1, tzinfo=timezone.utc))
>>> model.learned, len(scored)
(8800, 400)
>>> at = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> potential = predict_potential(model, accounts, at)
>>> model_mae = sum(abs(potential[a] - t) for a, t in truth.items()) / len(truth)
>>> last_12 = {a.account_id: trailing_sum(a.monthly_sales, datetime(2025, 12, 31, tzinfo=timezone.utc), 12)
...            for a in accounts}
>>> baseline_mae = sum(abs(last_12[a] - t) for a, t in truth.items()) / len(truth)
>>> round(model_mae / baseline_mae, 2)
0.62

A new account is valued from the segment prior and its profile: 200 employees are
worth more than the average of the 50-249 band (truth here: 800 x 200^0.7 = 32,600):

>>> new = features_at(AccountState("new", industry="retail", employees=200, known=True), at)
>>> round(model.prior(new), -2), round(model.predict(new), -2)
(20300.0, 28100.0)
>>> restored = PotentialModel.from_state_dict(model.state_dict())
>>> restored.predict(new) == model.predict(new)
True
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from river import linear_model, metrics, stats

from core import river_codec
from monitor.state import KEPT_MONTHS, AccountState

__all__ = [
    "PotentialModel",
    "RegionalLevels",
    "SeasonalIndex",
    "features_at",
    "learn_from_history",
    "predict_potential",
    "sales_totals",
    "size_band",
]

# Sales windows (months) of the rate features; the longest is capped by what the state keeps.
WINDOWS: tuple[int, ...] = (3, 6, 12, 24)
# The windows the combiner uses: the recent quarter and all history. 6 and 12 months add
# nothing measurable, and for accounts younger than a year 12 and 24 are the same column,
# so the weights learned in the first year split between them arbitrarily.
COMBINED_WINDOWS: tuple[int, ...] = (3, 24)
# Employee bands of the segment prior (lower bounds).
SIZE_BANDS: tuple[tuple[int, str], ...] = ((1000, "1000+"), (250, "250-999"), (50, "50-249"), (10, "10-49"), (1, "1-9"))
UNKNOWN = "unknown"
# Money is fed to the linear models in units of 10k (any currency): keeps the
# normal equations well conditioned without a scaler whose drift would move the weights.
MONEY_UNIT = 10_000.0
# Value of the profile models' intercept column (see PotentialModel._profile_design).
INTERCEPT = 10.0
# Industry and region values that get a one-hot column each; others share OTHER.
LEVEL_COLUMNS = ("industry", "region")
MAX_LEVELS = 32
OTHER = "(other)"
STATE_VERSION = 2  # 2: river objects as data (core.river_codec), no pickle

_MONTH_CACHE: dict[str, int] = {}


def _month_idx(key: str) -> int:
    idx = _MONTH_CACHE.get(key)
    if idx is None:
        idx = _MONTH_CACHE[key] = int(key[:4]) * 12 + int(key[5:7]) - 1
    return idx


def _idx_of(moment: datetime) -> int:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.year * 12 + moment.month - 1


def _iso_idx(iso: str) -> int:
    """Month index of an ISO time stored by monitor.state (always UTC there)."""
    if iso.endswith("+00:00") or iso.endswith("Z"):
        return int(iso[:4]) * 12 + int(iso[5:7]) - 1
    return _idx_of(datetime.fromisoformat(iso))


def size_band(employees: int | float | None) -> str:
    """Employee band of the segment prior: '1-9', '10-49', '50-249', '250-999', '1000+'."""
    if employees is None or not employees > 0:
        return UNKNOWN
    for lower, name in SIZE_BANDS:
        if employees >= lower:
            return name
    return SIZE_BANDS[-1][1]


# --- seasonality -------------------------------------------------------------------------


class SeasonalIndex:
    """Multiplicative demand index per calendar month, learned from total sales per month.

    Each month's total is divided by a 12-month moving average around it (centred
    2x12 where the months exist, else the 12-month window nearest to centred); the
    ratios are averaged per calendar month and normalised to mean 1. Until 12
    consecutive months have been seen every factor is 1.

    >>> index = SeasonalIndex()
    >>> index.factor(12)
    1.0
    >>> peak = {f"2024-{m:02d}": (150.0 if m == 12 else 100.0) for m in range(1, 13)}
    >>> index.update(peak)
    >>> round(index.factor(12), 2), round(index.factor(6), 2)
    (1.44, 0.96)
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.factors: list[float] = [1.0] * 12

    def factor(self, calendar_month: int) -> float:
        return self.factors[calendar_month - 1]

    def factor_of_idx(self, idx: int) -> float:
        return self.factors[idx % 12]

    def update(self, totals: Mapping[str, float]) -> None:
        """Record total sales of complete months (later values replace earlier ones) and refit."""
        self.totals.update({key: float(value) for key, value in totals.items()})
        if len(self.totals) > 4 * KEPT_MONTHS:  # keep a bounded history
            for key in sorted(self.totals, key=_month_idx)[: len(self.totals) - 4 * KEPT_MONTHS]:
                del self.totals[key]
        self._fit()

    def _fit(self) -> None:
        by_idx = {_month_idx(key): value for key, value in self.totals.items()}
        ratios: list[list[float]] = [[] for _ in range(12)]
        for k, value in by_idx.items():
            centred = [k + d for d in range(-6, 7)]
            if all(m in by_idx for m in centred):
                level = (sum(by_idx[m] for m in centred[1:-1]) + 0.5 * (by_idx[k - 6] + by_idx[k + 6])) / 12.0
            else:
                level = None
                for offset in sorted(range(-11, 1), key=lambda o: abs(o + 5.5)):  # windows containing k
                    window = [k + offset + d for d in range(12)]
                    if all(m in by_idx for m in window):
                        level = sum(by_idx[m] for m in window) / 12.0
                        break
            if level:
                ratios[k % 12].append(value / level)
        if any(not r for r in ratios):
            return  # not a full year yet: keep the previous (initially flat) index
        means = [sum(r) / len(r) for r in ratios]
        scale = sum(means) / 12.0
        if scale > 0:
            self.factors = [m / scale for m in means]

    def to_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals), "factors": list(self.factors)}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "SeasonalIndex":
        index = cls()
        index.totals = {k: float(v) for k, v in row["totals"].items()}
        index.factors = [float(f) for f in row["factors"]]
        return index


class RegionalLevels:
    """Each region's sales against the typical region's, to bring old sales to today's level.

    A regional market shock moves every account of a region at once, which a model
    trained on all accounts learns only slowly (its labels arrive months later) but
    the region's total sales show within a month or two. Each month's regional total
    is divided by the typical region's (the median over regions, each scaled to its
    own mean): that cancels the seasonality and the national trend all regions share,
    so it needs no seasonal index, and a shock in one region does not read as a rise
    in all others, as a share of the company total would.

    `table(region, at)[n]` is the factor that brings a rate measured over the `n`
    months before month `at` to the region's level of its last `recent_months`: the
    ratio of the two mean relative levels, soft-thresholded at `threshold` standard errors of
    the region's month-to-month noise (robust, MAD) so that chance wobbles of a small
    region change nothing and a real shift passes almost whole.

    >>> import random
    >>> rng = random.Random(1)
    >>> months = [f"2024-{m:02d}" for m in range(1, 13)]
    >>> def sales(region, k):  # common seasonality, a little noise; north halves from November
    ...     level = 0.5 if region == "north" and k >= "2024-11" else 1.0
    ...     return 100.0 * level * (1.2 if k == "2024-12" else 1.0) * rng.uniform(0.97, 1.03)
    >>> levels = RegionalLevels()
    >>> levels.update({r: {k: sales(r, k) for k in months} for r in ("north", "south", "east", "west")})
    >>> december = 2025 * 12  # month index of January 2025: windows end with December 2024
    >>> levels.table("north", december)[[2, 6, 12]].round(2).tolist()
    [1.0, 0.63, 0.57]
    >>> levels.table("south", december)[[2, 6, 12]].round(2).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, recent_months: int = 2, threshold: float = 1.5) -> None:
        if not isinstance(recent_months, int) or not 1 <= recent_months <= 6:
            raise ValueError(f"recent_months must be an int in 1..6, got {recent_months!r}")
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0 (standard errors), got {threshold!r}")
        self.recent = recent_months
        self.threshold = float(threshold)
        self.totals: dict[str, dict[str, float]] = {}
        self._reference_cache: dict[int, np.ndarray] = {}

    def update(self, totals: Mapping[str, Mapping[str, float]]) -> None:
        self._reference_cache = {}
        for region, months in totals.items():
            self.totals.setdefault(region, {}).update({k: float(v) for k, v in months.items()})
        for region, months in self.totals.items():
            if len(months) > 2 * KEPT_MONTHS:
                for key in sorted(months, key=_month_idx)[: len(months) - 2 * KEPT_MONTHS]:
                    del months[key]

    def table(self, region: str, at: int) -> np.ndarray:
        """factor[n] for windows of n = 0..KEPT_MONTHS months ending before month index `at`."""
        out = np.ones(KEPT_MONTHS + 1)
        months = self.totals.get(region)
        if not months:
            return out
        reference = self._reference(at)
        series = np.array([months.get(_key_of(m), 0.0) for m in range(at - KEPT_MONTHS, at)])
        share = series / reference  # nan where the company had no sales yet
        if np.isnan(share[-self.recent:]).any() or np.any(share[-self.recent:] <= 0):
            return out
        valid = share[~np.isnan(share) & (share > 0)]
        if len(valid) < self.recent + 2:
            return out
        # Per-month variance of the log relative level, robust (MAD) so that a shift is not counted as noise.
        steps = np.diff(np.log(valid))
        noise = float((1.4826 * np.median(np.abs(steps - np.median(steps)))) ** 2) / 2.0
        recent = float(share[-self.recent:].mean())
        filled = np.where(np.isnan(share), 0.0, share)
        counts = np.cumsum((~np.isnan(share))[::-1])
        sums = np.cumsum(filled[::-1])
        for n in range(1, KEPT_MONTHS + 1):
            if counts[n - 1] == 0 or sums[n - 1] <= 0:
                continue
            log_ratio = math.log(recent * counts[n - 1] / sums[n - 1])
            sigma = math.sqrt(noise * (1.0 / self.recent + 1.0 / counts[n - 1]))
            kept = max(0.0, abs(log_ratio) - self.threshold * sigma)
            out[n] = math.exp(math.copysign(kept, log_ratio))
        return out

    def _reference(self, at: int) -> np.ndarray:
        """The typical region's sales per month (the 24 before `at`), each region scaled to
        its own mean: a median over regions, so that one region's shock is not read as
        every other region's rise (as a share of the total would)."""
        cached = self._reference_cache.get(at)
        if cached is not None:
            return cached
        span = range(at - KEPT_MONTHS, at)
        table = np.array([[months.get(_key_of(m), 0.0) for m in span] for months in self.totals.values()])
        national = table.sum(axis=0) if len(table) else np.zeros(KEPT_MONTHS)
        seen = national > 0
        reference = np.full(KEPT_MONTHS, np.nan)
        if seen.any():
            steady = table[:, seen]
            steady = steady[(steady > 0).all(axis=1)]
            if len(steady) >= 3:
                reference[seen] = np.median(steady / steady.mean(axis=1, keepdims=True), axis=0)
            else:
                reference[seen] = national[seen] / national[seen].mean()
        self._reference_cache[at] = reference
        return reference

    def to_dict(self) -> dict[str, Any]:
        return {"recent_months": self.recent, "threshold": self.threshold,
                "totals": {r: dict(m) for r, m in self.totals.items()}}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "RegionalLevels":
        levels = cls(recent_months=int(row["recent_months"]), threshold=float(row["threshold"]))
        levels.totals = {r: {k: float(v) for k, v in m.items()} for r, m in row["totals"].items()}
        return levels


def _key_of(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


# --- features ----------------------------------------------------------------------------


def _first_idx(account: AccountState, before: int | None = None) -> int | None:
    """First month with any evidence of the account (profile, sales, minutes, opportunity)."""
    limit = before if before is not None else 1 << 30
    first = limit
    for buckets in (account.monthly_sales, account.monthly_minutes):
        for key in buckets:
            idx = _MONTH_CACHE.get(key) or _month_idx(key)
            if idx < first:
                first = idx
    for moment, _ in account.opportunities.values():
        idx = _iso_idx(moment)
        if idx < first:
            first = idx
    if account.profile_at:
        idx = _iso_idx(account.profile_at)
        if idx < first:
            first = idx
    return first if first < limit else None


def _past(buckets: Mapping[str, float], a: int, history: int) -> list[float]:
    """Values of the `history` months before month `a`, newest first (0 where no bucket),
    cut where the state may have pruned (state.py keeps KEPT_MONTHS from its newest bucket)."""
    by_offset = [0.0] * history
    newest = -1
    for key, value in buckets.items():
        idx = _MONTH_CACHE.get(key) or _month_idx(key)
        if idx > newest:
            newest = idx
        offset = a - 1 - idx
        if 0 <= offset < history:
            by_offset[offset] = value
    if newest >= 0:
        kept = newest - KEPT_MONTHS + 1  # oldest month the state can still hold
        if a - history < kept:
            del by_offset[max(a - kept, 0):]
    return by_offset


def features_at(account: AccountState, at: datetime, *,
                seasonal: SeasonalIndex | None = None) -> dict[str, float | str]:
    """Features of `account` as they were known at `at`: only months strictly before `at`'s month.

    Money rates are deseasonalised with `seasonal` (if given) and annualised over the
    months of the window the account existed in (`sales_<w>m_months` says how many).
    Opportunities count if their last update was before `at`'s month (the state keeps
    only the last one). Missing industry or employees become "unknown" / a flag.

    >>> from monitor.state import AccountState
    >>> acc = AccountState("a", industry="retail", employees=12, known=True,
    ...                    profile_at="2024-01-01T00:00:00+00:00",
    ...                    monthly_sales={"2024-01": 100.0, "2024-03": 200.0, "2024-04": 999.0})
    >>> f = features_at(acc, datetime(2024, 4, 15, tzinfo=timezone.utc))
    >>> f["history_months"], f["sales_3m"], f["order_months"], f["size_band"]
    (3.0, 1200.0, 2.0, '10-49')
    """
    a = _idx_of(at)
    first = _first_idx(account, before=a)
    history = 0 if first is None else min(a - first, KEPT_MONTHS)
    sales = _past(account.monthly_sales, a, history)
    minutes = _past(account.monthly_minutes, a, history)
    if seasonal is None:
        factors = [1.0] * len(sales)
    else:
        factors = [seasonal.factors[(a - 1 - d) % 12] for d in range(len(sales))]

    row: dict[str, float | str] = {}
    total = weight = 0.0
    done = 0
    for window in WINDOWS:
        n = min(window, len(sales))
        for d in range(done, n):
            total += sales[d]
            weight += factors[d]
        done = n
        row[f"sales_{window}m"] = 12.0 * total / weight if weight > 0 else 0.0
        row[f"sales_{window}m_months"] = float(n)
    for window in (3, 12):
        n = min(window, len(minutes))
        row[f"minutes_{window}m"] = 12.0 * sum(minutes[:n]) / n if n else 0.0
    order_months = [d for d, value in enumerate(sales) if value > 0]
    row["order_months"] = float(len(order_months))
    row["months_since_first_order"] = float(order_months[-1] + 1) if order_months else 0.0
    row["history_months"] = float(history)
    row["pipeline"] = float(sum(value for moment, value in account.opportunities.values()
                                if value is not None and _iso_idx(moment) < a))
    row["industry"] = account.industry or UNKNOWN
    row["size_band"] = size_band(account.employees)
    row["log_employees"] = math.log1p(account.employees) if account.employees and account.employees > 0 else 0.0
    row["employees_missing"] = 0.0 if account.employees and account.employees > 0 else 1.0
    row["region"] = account.region or UNKNOWN
    located = account.lat is not None and account.lon is not None
    # Coarse location (0.5 degree, ~50 km): enough for a regional market, no street address.
    row["lat"] = round(account.lat * 2) / 2 if located else 0.0
    row["lon"] = round(account.lon * 2) / 2 if located else 0.0
    row["month"] = _key_of(a)
    return row


# --- the model -----------------------------------------------------------------------------


class PotentialModel:
    """Expected yearly potential of an account, learned online, scored prequentially.

    Parameters
    ----------
    prior_months
        Accounts with fewer months of history are blended with the new-account estimate
        (segment prior and firmographic profile), with a weight falling linearly from 1 at
        no history to 0 at `prior_months`. Before the model has learned anything the
        segment prior is used alone.
    prior_weight
        Share of the segment prior in the new-account estimate (0..1), the rest being the
        firmographic profile model. Measured on the simulator, that model alone is ~20%
        better than the segment mean for a brand-new account and a 0.25 blend a little
        better still.
    shrink_months
        How fast the combiner moves from the profile estimate to the account's own
        sales: the own share of its features is h / (h + shrink_months) for h months of
        history (its learned weights then scale both parts).
    min_profile_months
        Months of history an account needs before its realised rate trains the profile
        models, and before its activity figures are used to estimate it.
    recent_months, threshold
        Of the regional level adjustment (`RegionalLevels`).
    """

    def __init__(self, *, prior_months: int = 6, prior_weight: float = 0.25, shrink_months: float = 6.0,
                 min_profile_months: int = 6, recent_months: int = 2,
                 threshold: float = 1.5) -> None:
        if not isinstance(prior_months, int) or prior_months < 0:
            raise ValueError(f"prior_months must be an int >= 0, got {prior_months!r}")
        if not 0.0 <= prior_weight <= 1.0:
            raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight!r}")
        if not shrink_months > 0:
            raise ValueError(f"shrink_months must be > 0, got {shrink_months!r}")
        if not isinstance(min_profile_months, int) or min_profile_months < 1:
            raise ValueError(f"min_profile_months must be an int >= 1, got {min_profile_months!r}")
        self.prior_months = prior_months
        self.prior_weight = float(prior_weight)
        self.shrink_months = float(shrink_months)
        self.min_profile_months = min_profile_months
        self.seasonal = SeasonalIndex()
        self.regions = RegionalLevels(recent_months=recent_months, threshold=threshold)
        # Log-rate models: with activity figures, and firmographic only (for young accounts).
        self._profile = linear_model.BayesianLinearRegression()
        self._firmographic = linear_model.BayesianLinearRegression()
        self._profile_rows = 0
        # Money-unit blend of the profile estimate with the account's own sales rates.
        self._combiner = linear_model.BayesianLinearRegression()
        self._combiner_rows = 0
        # Segment prior: "industry|band", then "industry|*", then "*".
        self._segments: dict[str, stats.Mean] = {}
        # Stands in for a missing employee count.
        self._log_employees = stats.Mean()
        self._mae = metrics.MAE()
        self._abs_error = 0.0
        self._abs_label = 0.0
        self._learned = 0
        # Industry and region values with a column of their own (see `_bounded`).
        self._levels: dict[str, list[str]] = {}
        # The last month whose end `learn_from_history` has learned ("YYYY-MM").
        self.last_month: str | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def learned(self) -> int:
        """Number of (features, label) pairs learned from."""
        return self._learned

    @property
    def mae(self) -> float:
        """Prequential mean absolute error of the predictions against their labels."""
        return self._mae.get()

    @property
    def metrics(self) -> dict[str, float]:
        """Prequential error: MAE, relative MAE (sum |error| / sum label) and the count.

        The labels are a few months of real orders, so most of this error is their
        noise; it is a drift signal (it jumps when the market moves), not the accuracy
        against the true potential, which only a simulation knows.
        """
        return {
            "mae": self._mae.get(),
            "relative_mae": self._abs_error / self._abs_label if self._abs_label > 0 else 0.0,
            "learned": float(self._learned),
        }

    def predict(self, features: Mapping[str, Any]) -> float:
        """Expected yearly potential (>= 0) of an account with these features (`features_at`)."""
        return float(self.predict_many([features])[0])

    def learn(self, features: Mapping[str, Any], label: float) -> float:
        """Learn one (features, yearly label) pair; returns the prediction made before learning."""
        return float(self.learn_many([features], [label])[0])

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Potentials of many accounts at once: one mini-batch through the river models."""
        if len(rows) == 0:
            return np.zeros(0)
        return self._predict_frame(_frame(rows))

    def learn_many(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[float]) -> np.ndarray:
        """Learn a batch; returns the predictions made before learning from any of it."""
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} feature rows but {len(labels)} labels")
        if len(rows) == 0:
            return np.zeros(0)
        y = np.asarray(labels, dtype=float)
        if not np.all(np.isfinite(y)) or np.any(y < 0):
            raise ValueError("labels must be finite and >= 0")
        frame = _frame(rows)
        before = self._predict_frame(frame)
        self._admit_levels(frame)
        for truth, guess in zip(y.tolist(), before.tolist()):
            self._mae.update(truth, guess)
        self._abs_error += float(np.abs(y - before).sum())
        self._abs_label += float(y.sum())

        combined = self._combiner_design(frame)  # with the profile as it was, like `before`
        self._learn_profile(frame)
        # Rows without any estimate (the very first batch: no segment means yet) would
        # teach the intercept that every account is average; skip them.
        usable = ((combined["profile"] > 0) | (combined["prior"] > 0)).to_numpy()
        if usable.any():
            self._combiner.learn_many(combined.loc[usable],
                                      pd.Series(y[usable] / MONEY_UNIT, index=combined.index[usable]))
            self._combiner_rows += int(usable.sum())
        for keys, label in zip(self._segment_keys(frame), y.tolist()):
            for key in keys:
                self._segments.setdefault(key, stats.Mean()).update(label)
        self._learned += len(y)
        return before

    def prior(self, features: Mapping[str, Any]) -> float:
        """The segment prior: mean label of the industry x size band (else industry, else all); 0 if none."""
        return float(self._prior_values(_frame([features]))[0])

    # -- internals ---------------------------------------------------------------------------

    def _admit_levels(self, frame: pd.DataFrame) -> None:
        """Give new industry and region values a column of their own while there is room.

        Each value is a one-hot column of the profile models, whose state is a square matrix
        over the columns, and a segment prior: free-text industries must not grow them (or
        the checkpoint) without end. Values come in the order they are first learned; once a
        column has MAX_LEVELS values, later ones share OTHER."""
        for column in LEVEL_COLUMNS:
            known = self._levels.setdefault(column, [])
            for value in dict.fromkeys(frame[column].tolist()):
                if len(known) >= MAX_LEVELS:
                    break
                if value not in known:
                    known.append(value)

    def _level(self, column: str, frame: pd.DataFrame) -> list[str]:
        """The column's values, those without a column of their own as OTHER."""
        known = set(self._levels.get(column, ()))
        if len(known) < MAX_LEVELS:
            return frame[column].tolist()  # not full: an unseen value simply has no column yet
        return [value if value in known else OTHER for value in frame[column].tolist()]

    def _segment_keys(self, frame: pd.DataFrame) -> list[tuple[str, str, str]]:
        return [(f"{i}|{b}", f"{i}|*", "*") for i, b in zip(self._level("industry", frame), frame["size_band"].tolist())]

    def _prior_values(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame))
        for n, keys in enumerate(self._segment_keys(frame)):
            for key in keys:
                mean = self._segments.get(key)
                if mean is not None and mean.n > 0:
                    out[n] = mean.get()
                    break
        return out

    def _profile_design(self, frame: pd.DataFrame, *, activity: bool) -> pd.DataFrame:
        # A large constant for the intercept: the ridge prior then leaves the intercept in it
        # and the one-hot columns carry deviations, so an unseen industry or region (no
        # column) gets the average, not a fraction of the intercept.
        missing = frame["employees_missing"].to_numpy() > 0
        log_employees = np.where(missing, self._log_employees.get(), frame["log_employees"].to_numpy())
        columns = {"bias": np.full(len(frame), INTERCEPT), "log_employees": log_employees,
                   "employees_missing": missing.astype(float)}
        if activity:
            columns["log_minutes_3m"] = np.log1p(frame["minutes_3m"].to_numpy())
            columns["log_minutes_12m"] = np.log1p(frame["minutes_12m"].to_numpy())
            columns["log_pipeline"] = np.log1p(frame["pipeline"].to_numpy())
        design = pd.DataFrame(columns, index=frame.index)
        dummies = [pd.get_dummies(pd.Series(self._level(column, frame), index=frame.index), prefix=column, dtype=float)
                   for column in LEVEL_COLUMNS]
        return pd.concat([design, *dummies], axis=1)

    def _profile_values(self, frame: pd.DataFrame) -> np.ndarray:
        """exp(profile model), money units: with activity figures where the account has a
        record of them, else firmographic only ("no minutes yet" must not read as "small")."""
        out = np.zeros(len(frame))
        seasoned = frame["history_months"].to_numpy() >= self.min_profile_months
        for model, rows, activity in ((self._profile, seasoned, True), (self._firmographic, ~seasoned, False)):
            if rows.any():
                design = self._profile_design(frame.loc[rows], activity=activity)
                log_rate = np.asarray(model.predict_many(design), dtype=float)
                out[rows] = np.exp(np.clip(log_rate, -10.0, 30.0)) / MONEY_UNIT
        return out

    def _learn_profile(self, frame: pd.DataFrame) -> None:
        # Target: log of the deseasonalised yearly rate over the account's history (up to 24
        # months): long enough to rarely be 0, unlike a 3-month label.
        rate = frame["sales_24m"].to_numpy()
        keep = (frame["history_months"].to_numpy() >= self.min_profile_months) & (rate > 0)
        if not keep.any():
            return
        rows = frame.loc[keep]
        for value in rows.loc[rows["employees_missing"] == 0, "log_employees"].tolist():
            self._log_employees.update(value)
        target = pd.Series(np.log(rate[keep]), index=rows.index)
        self._firmographic.learn_many(self._profile_design(rows, activity=False), target)
        self._profile.learn_many(self._profile_design(rows, activity=True), target)
        self._profile_rows += int(keep.sum())

    def _regional_factors(self, frame: pd.DataFrame) -> dict[int, np.ndarray]:
        """Per sales window, each row's regional level factor (1 where nothing is known)."""
        if not self.regions.totals:
            return {window: np.ones(len(frame)) for window in WINDOWS}
        keys = list(zip(frame["region"].tolist(), frame["month"].tolist()))
        tables = {key: self.regions.table(key[0], _month_idx(key[1])) if key[1] else np.ones(KEPT_MONTHS + 1)
                  for key in set(keys)}
        stacked = np.stack([tables[key] for key in keys])
        rows = np.arange(len(frame))
        months = {window: np.clip(frame[f"sales_{window}m_months"].to_numpy().astype(int), 0, KEPT_MONTHS)
                  for window in WINDOWS}
        return {window: stacked[rows, months[window]] for window in WINDOWS}

    def _combiner_design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The combiner's inputs, money units: the profile estimate weighted by 1 - own and the
        account's own rates weighted by own = h / (h + shrink_months), each also times the
        share of months with an order (frequent buyers' rates are less noisy)."""
        history = frame["history_months"].to_numpy()
        own = history / (history + self.shrink_months)
        regular = frame["order_months"].to_numpy() / np.maximum(history, 1.0)
        factors = self._regional_factors(frame)
        # The account's estimate before its own sales: the profile model's once it has
        # learned, else (cold start) the segment prior, in a column of its own so the two
        # do not share a weight.
        trained = self._profile_rows > 0
        estimate = self._profile_values(frame) * factors[WINDOWS[-1]] if trained else np.zeros(len(frame))
        prior = np.zeros(len(frame)) if trained else self._prior_values(frame) / MONEY_UNIT
        rates = {window: frame[f"sales_{window}m"].to_numpy() / MONEY_UNIT * factors[window] * own
                 for window in COMBINED_WINDOWS}
        design = {
            "bias": np.ones(len(frame)),
            "profile": estimate * (1.0 - own),
            "prior": prior * (1.0 - own),
            **{f"sales_{window}m": rate for window, rate in rates.items()},
            "sales_regular": rates[COMBINED_WINDOWS[-1]] * regular,
        }
        return pd.DataFrame(design, index=frame.index)

    def _predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        prior = self._prior_values(frame)
        if not self._combiner_rows:
            return prior  # cold start: the segment prior alone
        estimate = np.asarray(self._combiner.predict_many(self._combiner_design(frame)), dtype=float)
        estimate = np.maximum(estimate * MONEY_UNIT, 0.0)
        if self.prior_months:
            history = frame["history_months"].to_numpy()
            young = history < self.prior_months
            if young.any():
                estimate[young] = self._young_values(frame.loc[young], prior[young], estimate[young])
        return estimate

    def _young_values(self, frame: pd.DataFrame, prior: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Accounts with little history: the model blended with the new-account estimate
        (segment prior and firmographic profile), whose weight falls from 1 at no history
        to 0 at `prior_months`."""
        if self._profile_rows:
            design = self._profile_design(frame, activity=False)
            log_rate = np.asarray(self._firmographic.predict_many(design), dtype=float)
            firmographic = np.exp(np.clip(log_rate, -10.0, 30.0))
            new = np.where(prior > 0, self.prior_weight * prior + (1.0 - self.prior_weight) * firmographic,
                           firmographic)
        else:
            new = np.where(prior > 0, prior, model)
        weight = np.clip(frame["history_months"].to_numpy() / self.prior_months, 0.0, 1.0)
        return weight * model + (1.0 - weight) * new

    # -- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state: parameters, counts, seasonal index, regional totals, river objects.

        The river objects (three BayesianLinearRegression, the segment means, the MAE
        metric) are plain data too (`core.river_codec`): loading a foreign state runs no code.
        """
        return {
            "version": STATE_VERSION,
            "params": self._params(),
            "seasonal": self.seasonal.to_dict(),
            "regions": self.regions.to_dict(),
            "learned": self._learned,
            "last_month": self.last_month,
            "profile_rows": self._profile_rows,
            "combiner_rows": self._combiner_rows,
            "abs_error": self._abs_error,
            "abs_label": self._abs_label,
            "levels": self._levels,
            "river": river_codec.dump({"profile": self._profile, "firmographic": self._firmographic,
                            "combiner": self._combiner, "segments": self._segments, "mae": self._mae,
                            "log_employees": self._log_employees}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "PotentialModel":
        """Restore `state_dict()` output (parameters included) into this model; returns it."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown potential model state version {state.get('version')!r}; "
                             f"expected {STATE_VERSION}")
        self.__init__(**state["params"])  # type: ignore[misc]
        self.seasonal = SeasonalIndex.from_dict(state["seasonal"])
        self.regions = RegionalLevels.from_dict(state["regions"])
        self._learned = int(state["learned"])
        self.last_month = state["last_month"]
        self._profile_rows = int(state["profile_rows"])
        self._combiner_rows = int(state["combiner_rows"])
        self._abs_error = float(state["abs_error"])
        self._abs_label = float(state["abs_label"])
        self._levels = {column: [str(value) for value in state["levels"].get(column, [])][:MAX_LEVELS]
                        for column in LEVEL_COLUMNS}
        river_objects = river_codec.load(state["river"])
        if not isinstance(river_objects, dict):
            raise river_codec.CheckpointError(f"the model's river objects are a {type(river_objects).__name__}")
        self._profile = river_objects["profile"]
        self._firmographic = river_objects["firmographic"]
        self._combiner = river_objects["combiner"]
        self._segments = river_objects["segments"]
        self._mae = river_objects["mae"]
        self._log_employees = river_objects["log_employees"]
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "PotentialModel":
        return cls().load_state_dict(state)

    def _params(self) -> dict[str, Any]:
        return {"prior_months": self.prior_months, "prior_weight": self.prior_weight,
                "shrink_months": self.shrink_months, "min_profile_months": self.min_profile_months,
                "recent_months": self.regions.recent, "threshold": self.regions.threshold}


# Columns `features_at` produces, with the value used when a hand-made row lacks one.
_DEFAULTS: dict[str, float | str] = {
    **{f"sales_{w}m": 0.0 for w in WINDOWS},
    **{f"sales_{w}m_months": 0.0 for w in WINDOWS},
    "minutes_3m": 0.0, "minutes_12m": 0.0, "order_months": 0.0, "months_since_first_order": 0.0,
    "history_months": 0.0, "pipeline": 0.0, "industry": UNKNOWN, "size_band": UNKNOWN,
    "log_employees": 0.0, "employees_missing": 1.0, "region": UNKNOWN, "lat": 0.0, "lon": 0.0, "month": "",
}
_TEXT = {name for name, value in _DEFAULTS.items() if isinstance(value, str)}


def _frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Feature rows as a typed frame: every expected column, missing values defaulted."""
    rows = list(rows)
    frame = pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows)))
    for name, default in _DEFAULTS.items():
        if name not in frame.columns:
            frame[name] = default
        elif name in _TEXT:
            frame[name] = frame[name].where(frame[name].notna() & (frame[name] != ""), default).astype(str)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").fillna(default).astype(float)
    return frame


# --- the planner's steps -------------------------------------------------------------------


def _live(account: AccountState) -> bool:
    return account.known and not account.closed


def sales_totals(accounts: Iterable[AccountState], before: datetime) -> tuple[dict[str, float],
                                                                            dict[str, dict[str, float]]]:
    """Total sales per complete month, and per region and month, over all accounts.

    Only months strictly before `before`'s month, and only the last KEPT_MONTHS - 1 of
    them: an older month may already be pruned from accounts that have a bucket in
    `before`'s month, and its total would shrink.
    """
    limit = _idx_of(before)
    oldest = limit - KEPT_MONTHS + 1
    company: dict[str, float] = {}
    regions: dict[str, dict[str, float]] = {}
    for account in accounts:
        region = regions.setdefault(account.region or UNKNOWN, {})
        for key, value in account.monthly_sales.items():
            if oldest <= (_MONTH_CACHE.get(key) or _month_idx(key)) < limit:
                company[key] = company.get(key, 0.0) + value
                region[key] = region.get(key, 0.0) + value
    return company, regions


def _month_start(idx: int) -> datetime:
    return datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)


def learn_from_history(model: PotentialModel, accounts: Iterable[AccountState], month_end: datetime, *,
                       label_months: int = 3) -> list[tuple[str, float, float]]:
    """The monthly training step: learn what each account bought in the last `label_months`.

    `month_end` is the instant the completed month ends (the first instant of the next
    month); the label window is the `label_months` months before it, the features are
    taken at the window's start. The label is the window's deseasonalised sales,
    annualised. Accounts that did not exist for the whole window, closed and unknown
    accounts are skipped. Returns (account_id, prediction before learning, label).

    A month is learned once: a call for a month at or before the last one learned
    (a replay after a restart) changes nothing and returns [].
    """
    if not isinstance(label_months, int) or not 1 <= label_months <= 12:
        raise ValueError(f"label_months must be an int in 1..12, got {label_months!r}")
    end = _idx_of(month_end)
    if model.last_month is not None and end - 1 <= _month_idx(model.last_month):
        return []
    accounts = [a for a in accounts if _live(a)]
    company, regions = sales_totals(accounts, month_end)
    model.seasonal.update(company)
    model.regions.update(regions)
    model.last_month = _key_of(end - 1)
    start = end - label_months
    feature_time = _month_start(start)
    weight = sum(model.seasonal.factor_of_idx(m) for m in range(start, end))
    ids, rows, labels = [], [], []
    for account in accounts:
        first = _first_idx(account)
        if first is None or first > start:
            continue
        total = 0.0
        for key, value in account.monthly_sales.items():
            if start <= _month_idx(key) < end:
                total += value
        ids.append(account.account_id)
        rows.append(features_at(account, feature_time, seasonal=model.seasonal))
        labels.append(12.0 * total / weight)
    before = model.learn_many(rows, labels) if rows else np.zeros(0)
    return list(zip(ids, before.tolist(), labels))


def predict_potential(model: PotentialModel, accounts: Iterable[AccountState], at: datetime) -> dict[str, float]:
    """Expected yearly potential of every account at `at` (closed accounts: 0)."""
    live, closed = [], []
    for account in accounts:
        (closed if account.closed else live).append(account)
    rows = [features_at(account, at, seasonal=model.seasonal) for account in live]
    values = model.predict_many(rows) if rows else np.zeros(0)
    result = {account.account_id: float(v) for account, v in zip(live, values.tolist())}
    result.update({account.account_id: 0.0 for account in closed})
    return result
