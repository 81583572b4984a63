"""Online model of each account's expected yearly potential, learned from what accounts buy.

The potential model answers "how much would this account buy in a year, on average?"
for every account, new or old, and learns online from realised sales: once a month
(of event time) it is shown, for each account, the features the account had some
months ago and what the account actually bought since (the label), and it is scored
on that prediction before it learns from it (progressive validation).

Three parts, all with state that `state_dict` saves:

- a **seasonal index** (`SeasonalIndex`) learned from the company's total sales per
  calendar month; sales features and labels are deseasonalised with it, so a short
  label window (3 months) can be annualised without calling December's peak a trend;
- a **profile model**: Bayesian linear regression (river) of the log of an account's
  realised yearly rate on what is known about it besides its sales amounts (industry,
  size, region, activity minutes, open pipeline); it gives every account, even one
  without orders, a firmographic estimate;
- a **combiner**: Bayesian linear regression (river) in money units that blends that
  estimate with the account's own deseasonalised sales rates over 3, 6, 12 and 24
  months, with weights that depend on how many months of history the account has
  (a short history is noisy, so it leans on the profile, a long one on its own sales).

Accounts with less than `prior_months` of history are blended with the **segment
prior**, the running mean label of their industry x size band, so a new account is
never valued at zero.

Everything is pure Python/numpy: no Kafka, no database. Months are UTC calendar
months of event time, as in `monitor.state`: "features at `at`" only read month
buckets strictly before `at`'s month.

Examples
--------

>>> from datetime import datetime, timezone
>>> from monitor.state import AccountState
>>> def account(i, yearly):
...     # 24 months of steady sales, 2024-01 .. 2025-12
...     months = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
...     return AccountState(f"a{i}", industry="retail", employees=20, known=True,
...                         profile_at="2024-01-01T00:00:00+00:00",
...                         monthly_sales={k: yearly / 12 for k in months})
>>> accounts = [account(i, 10_000 + 1_000 * (i % 10)) for i in range(200)]
>>> model = PotentialModel()
>>> for month in range(4, 13):
...     scored = learn_from_history(model, accounts, datetime(2025, month, 1, tzinfo=timezone.utc))
>>> model.learned
1800
>>> potential = predict_potential(model, accounts, datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> round(potential["a3"], -2), round(potential["a9"], -2)
(13000.0, 19000.0)
>>> new = AccountState("new", industry="retail", employees=20, known=True)
>>> round(model.predict(features_at(new, datetime(2026, 1, 1, tzinfo=timezone.utc))), -2)
14500.0
"""

from __future__ import annotations

import base64
import math
import pickle
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from river import linear_model, metrics, stats

from monitor.state import KEPT_MONTHS, AccountState

__all__ = [
    "PotentialModel",
    "SeasonalIndex",
    "features_at",
    "learn_from_history",
    "predict_potential",
    "size_band",
]

# Sales windows (months) of the rate features; the longest is capped by what the state keeps.
WINDOWS: tuple[int, ...] = (3, 6, 12, 24)
# Employee bands of the segment prior (lower bounds).
SIZE_BANDS: tuple[tuple[int, str], ...] = ((1000, "1000+"), (250, "250-999"), (50, "50-249"), (10, "10-49"), (1, "1-9"))
UNKNOWN = "unknown"
# Money is fed to the linear models in units of 10k (any currency): keeps the
# normal equations well conditioned without a scaler whose drift would move the weights.
MONEY_UNIT = 10_000.0
STATE_VERSION = 1

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
    >>> round(index.factor(12), 3), round(index.factor(6), 3)
    (1.429, 0.952)
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
    """Each region's share of the company's sales per month, to bring old sales to today's level.

    A regional market shock moves every account of a region at once, which a model
    trained on all accounts learns only slowly (its labels arrive months later) but
    the region's share of total sales shows within a month or two. The share also
    cancels the seasonality all regions have in common, so it needs no seasonal index.

    `table(region, at)[n]` is the factor that brings a rate measured over the `n`
    months before month `at` to the region's level of its last `recent_months`: the
    ratio of the two mean shares, soft-thresholded at `threshold` standard errors of
    the region's month-to-month noise (robust, MAD) so that chance wobbles of a small
    region change nothing and a real shift passes almost whole.

    >>> levels = RegionalLevels()
    >>> months = [f"2024-{m:02d}" for m in range(1, 13)]
    >>> levels.update({"north": {k: (40.0 if k >= "2024-11" else 100.0) + m % 3 for m, k in enumerate(months)},
    ...                "south": {k: 300.0 + m % 2 for m, k in enumerate(months)}})
    >>> table = levels.table("north", 2025 * 12)   # windows ending with December 2024
    >>> round(table[2], 2), round(table[12], 2) < 0.55, levels.table("south", 2025 * 12)[12]
    (1.0, True, 1.0)
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
        # Per-month variance of the log share, robust (MAD) so that a shift is not counted as noise.
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
    candidates = []
    for buckets in (account.monthly_sales, account.monthly_minutes):
        for key in buckets:
            idx = _month_idx(key)
            if before is None or idx < before:
                candidates.append(idx)
    for moment, _ in account.opportunities.values():
        idx = _iso_idx(moment)
        if before is None or idx < before:
            candidates.append(idx)
    if account.profile_at:
        idx = _iso_idx(account.profile_at)
        if before is None or idx < before:
            candidates.append(idx)
    return min(candidates) if candidates else None


def _horizon(buckets: Mapping[str, float]) -> int | None:
    """Oldest month the state can still hold (state.py prunes relative to the newest bucket)."""
    if not buckets:
        return None
    return max(_month_idx(key) for key in buckets) - KEPT_MONTHS + 1


def features_at(account: AccountState, at: datetime, *,
                seasonal: SeasonalIndex | None = None) -> dict[str, float | str]:
    """Features of `account` as they were known at `at`: only months strictly before `at`'s month.

    Money rates are deseasonalised with `seasonal` (if given) and annualised over the
    months of the window the account existed in (`history_months` says how many).
    Missing industry or employees become "unknown" / a flag, never an error.

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
    factor = seasonal.factor_of_idx if seasonal is not None else (lambda _idx: 1.0)

    sales: dict[int, float] = {}
    for key, value in account.monthly_sales.items():
        idx = _month_idx(key)
        if idx < a:
            sales[idx] = value
    minutes: dict[int, float] = {}
    for key, value in account.monthly_minutes.items():
        idx = _month_idx(key)
        if idx < a:
            minutes[idx] = value
    sales_from = a - history
    horizon = _horizon(account.monthly_sales)
    if horizon is not None:
        sales_from = max(sales_from, horizon)
    minutes_from = a - history
    horizon = _horizon(account.monthly_minutes)
    if horizon is not None:
        minutes_from = max(minutes_from, horizon)

    row: dict[str, float | str] = {}
    for window in WINDOWS:
        lo = max(a - window, sales_from)
        weight = sum(factor(m) for m in range(lo, a))
        total = sum(v for m, v in sales.items() if m >= lo)
        row[f"sales_{window}m"] = 12.0 * total / weight if weight > 0 else 0.0
        row[f"sales_{window}m_months"] = float(a - lo) if a > lo else 0.0
    for window in (3, 12):
        lo = max(a - window, minutes_from)
        total = sum(v for m, v in minutes.items() if m >= lo)
        row[f"minutes_{window}m"] = 12.0 * total / (a - lo) if a > lo else 0.0
    order_months = [m for m, v in sales.items() if m >= sales_from and v > 0]
    row["order_months"] = float(len(order_months))
    row["months_since_first_order"] = float(a - min(order_months)) if order_months else 0.0
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


def _pack(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")


def _unpack(text: str) -> Any:
    return pickle.loads(base64.b64decode(text.encode("ascii")))


class PotentialModel:
    """Expected yearly potential of an account, learned online, scored prequentially.

    Parameters
    ----------
    prior_months
        Accounts with fewer months of history are blended with the segment prior, with
        a weight that falls linearly from `prior_weight` (no history) to 0 (`prior_months`).
        Before the model has learned anything the prior is used alone.
    prior_weight
        Weight of the segment prior for an account without history (0..1). Measured on
        the simulator, the firmographic model alone is ~20% better than the segment mean
        for a new account and a 0.25 blend a little better still.
    shrink_months
        How fast the combiner moves from the profile estimate to the account's own
        sales: the own share of its features is h / (h + shrink_months) for h months of
        history (its learned weights then scale both parts).
    min_profile_months
        Months of history an account needs before its realised rate trains the profile
        models, and before its activity figures are used to estimate it.
    forget
        Share of the profile models' and combiner's evidence kept per learning batch
        (one batch per month): 1.0 never forgets, 0.95 halves a batch's weight in ~14 months.
    recent_months, threshold
        Of the regional level adjustment (`RegionalLevels`).
    """

    def __init__(self, *, prior_months: int = 3, prior_weight: float = 0.25, shrink_months: float = 12.0,
                 min_profile_months: int = 6, forget: float = 1.0, recent_months: int = 2,
                 threshold: float = 1.5) -> None:
        if not isinstance(prior_months, int) or prior_months < 0:
            raise ValueError(f"prior_months must be an int >= 0, got {prior_months!r}")
        if not 0.0 <= prior_weight <= 1.0:
            raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight!r}")
        if not shrink_months > 0:
            raise ValueError(f"shrink_months must be > 0, got {shrink_months!r}")
        if not isinstance(min_profile_months, int) or min_profile_months < 1:
            raise ValueError(f"min_profile_months must be an int >= 1, got {min_profile_months!r}")
        if not 0.0 < forget <= 1.0:
            raise ValueError(f"forget must be in (0, 1], got {forget!r}")
        self.prior_months = prior_months
        self.prior_weight = float(prior_weight)
        self.shrink_months = float(shrink_months)
        self.min_profile_months = min_profile_months
        self.forget = float(forget)
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
        self._mae = metrics.MAE()
        self._abs_error = 0.0
        self._abs_label = 0.0
        self._learned = 0

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
            self._learn_blr(self._combiner, combined.loc[usable],
                            pd.Series(y[usable] / MONEY_UNIT, index=combined.index[usable]),
                            first=self._combiner_rows == 0)
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

    @staticmethod
    def _segment_keys(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
        return [(f"{i}|{b}", f"{i}|*", "*") for i, b in zip(frame["industry"].tolist(), frame["size_band"].tolist())]

    def _prior_values(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame))
        for n, keys in enumerate(self._segment_keys(frame)):
            for key in keys:
                mean = self._segments.get(key)
                if mean is not None and mean.n > 0:
                    out[n] = mean.get()
                    break
        return out

    @staticmethod
    def _profile_design(frame: pd.DataFrame, *, activity: bool) -> pd.DataFrame:
        columns = {"bias": np.ones(len(frame)), "log_employees": frame["log_employees"].to_numpy(),
                   "employees_missing": frame["employees_missing"].to_numpy()}
        if activity:
            columns["log_minutes_3m"] = np.log1p(frame["minutes_3m"].to_numpy())
            columns["log_minutes_12m"] = np.log1p(frame["minutes_12m"].to_numpy())
            columns["log_pipeline"] = np.log1p(frame["pipeline"].to_numpy())
        design = pd.DataFrame(columns, index=frame.index)
        dummies = [pd.get_dummies(frame[column], prefix=column, dtype=float) for column in ("industry", "region")]
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
        target = pd.Series(np.log(rate[keep]), index=rows.index)
        first = self._profile_rows == 0
        self._learn_blr(self._firmographic, self._profile_design(rows, activity=False), target, first=first)
        self._learn_blr(self._profile, self._profile_design(rows, activity=True), target, first=first)
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
        history = frame["history_months"].to_numpy()
        own = history / (history + self.shrink_months)
        factors = self._regional_factors(frame)
        # The account's estimate before its own sales: the profile model's once it has
        # learned, else (cold start) the segment prior, in a column of its own so the two
        # do not share a weight.
        trained = self._profile_rows > 0
        estimate = self._profile_values(frame) * factors[WINDOWS[-1]] if trained else np.zeros(len(frame))
        prior = np.zeros(len(frame)) if trained else self._prior_values(frame) / MONEY_UNIT
        design = {
            "bias": np.ones(len(frame)),
            "profile": estimate * (1.0 - own),
            "prior": prior * (1.0 - own),
            "pipeline": frame["pipeline"].to_numpy() / MONEY_UNIT,
        }
        for window in WINDOWS:
            design[f"sales_{window}m"] = frame[f"sales_{window}m"].to_numpy() / MONEY_UNIT * factors[window] * own
        return pd.DataFrame(design, index=frame.index)

    def _learn_blr(self, model: linear_model.BayesianLinearRegression, design: pd.DataFrame,
                   target: pd.Series, *, first: bool) -> None:
        # river's smoothing s decays the evidence per row; spread `forget` over the batch.
        model.smoothing = None if self.forget == 1.0 or first else self.forget ** (1.0 / len(design))
        model.learn_many(design, target)

    def _predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        prior = self._prior_values(frame)
        if not self._combiner_rows:
            return prior
        estimate = np.asarray(self._combiner.predict_many(self._combiner_design(frame)), dtype=float)
        estimate = np.maximum(estimate * MONEY_UNIT, 0.0)
        if self.prior_months and self.prior_weight:
            history = frame["history_months"].to_numpy()
            weight = self.prior_weight * np.clip(1.0 - history / self.prior_months, 0.0, 1.0)
            estimate = np.where(prior > 0, weight * prior + (1.0 - weight) * estimate, estimate)
        return estimate

    # -- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state: parameters, counts, seasonal index, regional totals, river objects.

        The river objects (three BayesianLinearRegression, the segment means, the MAE
        metric) are pickled and base64-encoded: load only state you wrote yourself.
        """
        return {
            "version": STATE_VERSION,
            "params": self._params(),
            "seasonal": self.seasonal.to_dict(),
            "regions": self.regions.to_dict(),
            "learned": self._learned,
            "profile_rows": self._profile_rows,
            "combiner_rows": self._combiner_rows,
            "abs_error": self._abs_error,
            "abs_label": self._abs_label,
            "river": _pack({"profile": self._profile, "firmographic": self._firmographic,
                            "combiner": self._combiner, "segments": self._segments, "mae": self._mae}),
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
        self._profile_rows = int(state["profile_rows"])
        self._combiner_rows = int(state["combiner_rows"])
        self._abs_error = float(state["abs_error"])
        self._abs_label = float(state["abs_label"])
        river_objects = _unpack(state["river"])
        self._profile = river_objects["profile"]
        self._firmographic = river_objects["firmographic"]
        self._combiner = river_objects["combiner"]
        self._segments = river_objects["segments"]
        self._mae = river_objects["mae"]
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "PotentialModel":
        return cls().load_state_dict(state)

    def _params(self) -> dict[str, Any]:
        return {"prior_months": self.prior_months, "prior_weight": self.prior_weight,
                "shrink_months": self.shrink_months, "min_profile_months": self.min_profile_months,
                "forget": self.forget, "recent_months": self.regions.recent, "threshold": self.regions.threshold}


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
    frame = pd.DataFrame.from_records(list(rows))
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


def monthly_totals(accounts: Iterable[AccountState], before: datetime) -> dict[str, float]:
    """Total sales per complete month (strictly before `before`'s month) over all accounts."""
    limit = _idx_of(before)
    totals: dict[str, float] = {}
    for account in accounts:
        for key, value in account.monthly_sales.items():
            if _month_idx(key) < limit:
                totals[key] = totals.get(key, 0.0) + value
    return totals


def regional_totals(accounts: Iterable[AccountState], before: datetime) -> dict[str, dict[str, float]]:
    """Total sales per region and complete month (strictly before `before`'s month)."""
    limit = _idx_of(before)
    totals: dict[str, dict[str, float]] = {}
    for account in accounts:
        region = totals.setdefault(account.region or UNKNOWN, {})
        for key, value in account.monthly_sales.items():
            if _month_idx(key) < limit:
                region[key] = region.get(key, 0.0) + value
    return totals


def _add_months(idx: int, months: int) -> datetime:
    target = idx + months
    return datetime(target // 12, target % 12 + 1, 1, tzinfo=timezone.utc)


def learn_from_history(model: PotentialModel, accounts: Iterable[AccountState], month_end: datetime, *,
                       label_months: int = 3) -> list[tuple[str, float, float]]:
    """The monthly training step: learn what each account bought in the last `label_months`.

    `month_end` is the instant the completed month ends (the first instant of the next
    month); the label window is the `label_months` months before it, the features are
    taken at the window's start. The label is the window's deseasonalised sales,
    annualised. Accounts that did not exist for the whole window, closed and unknown
    accounts are skipped. Returns (account_id, prediction before learning, label).
    """
    if not isinstance(label_months, int) or not 1 <= label_months <= 12:
        raise ValueError(f"label_months must be an int in 1..12, got {label_months!r}")
    accounts = [a for a in accounts if _live(a)]
    model.seasonal.update(monthly_totals(accounts, month_end))
    model.regions.update(regional_totals(accounts, month_end))
    end = _idx_of(month_end)
    start = end - label_months
    feature_time = _add_months(start, 0)
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
