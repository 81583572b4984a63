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

_MONTH_CACHE: dict[str, int] = {}
VARIANT: dict = {}


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
    """Each region's deseasonalised sales level over time, to bring old sales to today's level.

    A regional market shock moves every account of a region at once, which a model
    trained on all accounts learns only slowly; the region's total sales see it within a
    month. `factors` answers, for windows ending at a month, how the region's level of
    the last `recent` months compares with its level over the whole window, shrunk
    toward 1 by how noisy the region's monthly totals are (a region of ten accounts
    moves a lot by chance).
    """

    def __init__(self, recent: int = 2, spread: float = 2.0) -> None:
        self.recent = recent
        self.spread = spread
        self.totals: dict[str, dict[str, float]] = {}
        self._national_cache: dict[str, float] | None = None

    def update(self, totals: Mapping[str, Mapping[str, float]]) -> None:
        self._national_cache = None
        for region, months in totals.items():
            self.totals.setdefault(region, {}).update({k: float(v) for k, v in months.items()})
        for region, months in self.totals.items():
            if len(months) > 2 * KEPT_MONTHS:
                for key in sorted(months, key=_month_idx)[: len(months) - 2 * KEPT_MONTHS]:
                    del months[key]

    def table(self, region: str, at: int, seasonal: SeasonalIndex | None = None) -> np.ndarray:
        """factor[n] for windows of n = 0..KEPT_MONTHS months ending before month index `at`."""
        out = np.ones(KEPT_MONTHS + 1)
        months = self.totals.get(region)
        if not months:
            return out
        national = self._national()
        keys = [_key_of(m) for m in range(at - KEPT_MONTHS, at)]
        share = np.array([months.get(k, 0.0) / national[k] if national.get(k) else np.nan for k in keys])
        if np.isnan(share[-self.recent:]).any() or np.any(share[-self.recent:] <= 0):
            return out
        valid = share[~np.isnan(share) & (share > 0)]
        if len(valid) < self.recent + 2:
            return out
        # Per-month variance of the log share, robust (MAD) so that the shock itself does not count as noise.
        steps = np.diff(np.log(valid))
        if VARIANT.get("robust", True):
            noise = float((1.4826 * np.median(np.abs(steps - np.median(steps)))) ** 2) / 2.0
        else:
            noise = float(np.var(steps)) / 2.0
        recent = float(share[-self.recent:].mean())
        filled = np.where(np.isnan(share), 0.0, share)
        counts = np.cumsum((~np.isnan(share))[::-1])
        sums = np.cumsum(filled[::-1])
        for n in range(1, KEPT_MONTHS + 1):
            if counts[n - 1] == 0 or sums[n - 1] <= 0:
                continue
            log_ratio = math.log(recent * counts[n - 1] / sums[n - 1])
            sigma = math.sqrt(noise * (1.0 / self.recent + 1.0 / counts[n - 1]))
            kept = max(0.0, abs(log_ratio) - self.spread * sigma)
            out[n] = math.exp(math.copysign(kept, log_ratio))
        return out

    def _national(self) -> dict[str, float]:
        if self._national_cache is None:
            national: dict[str, float] = {}
            for months in self.totals.values():
                for key, value in months.items():
                    national[key] = national.get(key, 0.0) + value
            self._national_cache = national
        return self._national_cache

    def to_dict(self) -> dict[str, Any]:
        return {"recent": self.recent, "spread": self.spread,
                "totals": {r: dict(m) for r, m in self.totals.items()}}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "RegionalLevels":
        levels = cls(recent=int(row["recent"]), spread=float(row["spread"]))
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
        Accounts with fewer months of history are blended with the segment prior:
        weight history / prior_months on the model. 0 disables the blend.
    shrink_months
        Scale (in months of history) of the combiner's history weights: the share
        of the account's own sales in the estimate grows like h / (h + shrink_months).
    forget
        Per learning batch (month), how much of the combiner's and profile model's
        evidence is kept (1.0 = never forget; 0.9 = a month-old batch counts 90%).
    min_profile_months
        Months of history an account needs before its realised rate trains the profile model.
    """

    def __init__(self, *, prior_months: int = 3, shrink_months: float = 12.0, forget: float = 1.0,
                 min_profile_months: int = 6) -> None:
        if not isinstance(prior_months, int) or prior_months < 0:
            raise ValueError(f"prior_months must be an int >= 0, got {prior_months!r}")
        if not shrink_months > 0:
            raise ValueError(f"shrink_months must be > 0, got {shrink_months!r}")
        if not 0.0 < forget <= 1.0:
            raise ValueError(f"forget must be in (0, 1], got {forget!r}")
        if not isinstance(min_profile_months, int) or min_profile_months < 1:
            raise ValueError(f"min_profile_months must be an int >= 1, got {min_profile_months!r}")
        self.prior_months = prior_months
        self.shrink_months = float(shrink_months)
        self.forget = float(forget)
        self.min_profile_months = min_profile_months
        self.seasonal = SeasonalIndex()
        self.regions = RegionalLevels(**VARIANT.get("regions", {}))
        self._profile = linear_model.BayesianLinearRegression(alpha=1.0, beta=1.0)
        self._firmographic = linear_model.BayesianLinearRegression(alpha=1.0, beta=1.0)
        self._combiner = linear_model.BayesianLinearRegression(alpha=1.0, beta=1.0)
        self._profile_rows = 0
        self._combiner_rows = 0
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
        """Prequential error: MAE, relative MAE (sum |error| / sum label) and the count."""
        return {
            "mae": self._mae.get(),
            "relative_mae": self._abs_error / self._abs_label if self._abs_label > 0 else 0.0,
            "learned": float(self._learned),
        }

    def predict(self, features: Mapping[str, Any]) -> float:
        """Expected yearly potential (>= 0) of an account with these features."""
        return float(self.predict_many([features])[0])

    def learn(self, features: Mapping[str, Any], label: float) -> float:
        """Learn one (features, yearly label) pair; returns the prediction made before learning."""
        return float(self.learn_many([features], [label])[0])

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Potentials of many accounts at once (the fast path)."""
        if not rows:
            return np.zeros(0)
        frame = pd.DataFrame.from_records(rows)
        return self._predict_frame(frame)

    def learn_many(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[float]) -> np.ndarray:
        """Learn a batch; returns the predictions made before learning from it (prequential)."""
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} feature rows but {len(labels)} labels")
        if not rows:
            return np.zeros(0)
        frame = pd.DataFrame.from_records(rows)
        y = np.asarray(labels, dtype=float)
        if not np.all(np.isfinite(y)) or np.any(y < 0):
            raise ValueError("labels must be finite and >= 0")
        before = self._predict_frame(frame)
        for truth, guess in zip(y.tolist(), before.tolist()):
            self._mae.update(truth, guess)
        self._abs_error += float(np.abs(y - before).sum())
        self._abs_label += float(y.sum())

        segments = self._segment_keys(frame)
        for key, label in zip(segments, y.tolist()):
            for k in key:
                self._segments.setdefault(k, stats.Mean()).update(label)
        combined = self._combiner_design(frame)  # with the profile as predicted, before it learns
        self._learn_profile(frame)
        self._combiner_rows = self._learn_blr(self._combiner, combined, pd.Series(y / MONEY_UNIT), self._combiner_rows)
        self._learned += len(y)
        return before

    def prior(self, features: Mapping[str, Any]) -> float:
        """The segment prior: running mean label of the industry x size band (or coarser)."""
        return float(self._prior_values(pd.DataFrame.from_records([features]))[0])

    # -- internals ---------------------------------------------------------------------------

    def _segment_keys(self, frame: pd.DataFrame) -> list[tuple[str, str, str]]:
        industry = frame["industry"].fillna(UNKNOWN).astype(str).tolist()
        band = frame["size_band"].fillna(UNKNOWN).astype(str).tolist()
        return [(f"{i}|{b}", f"{i}|*", "*") for i, b in zip(industry, band)]

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
        design = pd.DataFrame({
            "bias": 1.0,
            "log_employees": frame["log_employees"].astype(float),
            "employees_missing": frame["employees_missing"].astype(float),
        }, index=frame.index)
        if activity:
            design["log_minutes_3m"] = np.log1p(frame["minutes_3m"].astype(float))
            design["log_minutes_12m"] = np.log1p(frame["minutes_12m"].astype(float))
            design["log_pipeline"] = np.log1p(frame["pipeline"].astype(float))
        for column in ("industry", "region"):
            dummies = pd.get_dummies(frame[column].fillna(UNKNOWN).astype(str), prefix=column, dtype=float)
            design = pd.concat([design, dummies], axis=1)
        return design

    def _profile_values(self, frame: pd.DataFrame) -> np.ndarray:
        """exp(profile model) in money units: the activity model where the account has a
        record of activity, else the firmographic one (no minutes yet is not "small")."""
        out = np.zeros(len(frame))
        if self._profile_rows == 0:
            return out
        seasoned = frame["history_months"].to_numpy() >= self.min_profile_months
        for model, rows, activity in ((self._profile, seasoned, True), (self._firmographic, ~seasoned, False)):
            if rows.any():
                log_rate = np.asarray(model.predict_many(self._profile_design(frame.loc[rows], activity=activity)))
                out[rows] = np.exp(np.clip(log_rate, -5.0, 25.0)) / MONEY_UNIT
        return out

    def _learn_profile(self, frame: pd.DataFrame) -> None:
        rate = frame["sales_24m"].astype(float).to_numpy()
        keep = (frame["history_months"].to_numpy() >= self.min_profile_months) & (rate > 0)
        if not keep.any():
            return
        rows = frame.loc[keep]
        target = pd.Series(np.log(rate[keep]), index=rows.index)
        self._learn_blr(self._firmographic, self._profile_design(rows, activity=False), target, self._profile_rows)
        self._profile_rows = self._learn_blr(self._profile, self._profile_design(rows, activity=True), target,
                                             self._profile_rows)

    def _regional_factors(self, frame: pd.DataFrame) -> dict[int, np.ndarray]:
        """Per window, each row's regional level factor (1 where nothing is known)."""
        out = {window: np.ones(len(frame)) for window in WINDOWS}
        if not self.regions.totals or not VARIANT.get("regional", True):
            return out
        keys = list(zip(frame["region"].astype(str).tolist(), frame["month"].astype(str).tolist()))
        tables: dict[tuple[str, str], np.ndarray] = {}
        for key in set(keys):
            tables[key] = self.regions.table(key[0], _month_idx(key[1]), self.seasonal)
        stacked = np.stack([tables[key] for key in keys])
        rows = np.arange(len(frame))
        for window in WINDOWS:
            n = frame[f"sales_{window}m_months"].astype(int).to_numpy()
            out[window] = stacked[rows, n]
        return out

    def _combiner_design(self, frame: pd.DataFrame) -> pd.DataFrame:
        history = frame["history_months"].astype(float).to_numpy()
        prior = self._prior_values(frame) / MONEY_UNIT
        factors = self._regional_factors(frame)
        profile = self._profile_values(frame) * factors[WINDOWS[-1]] if self._profile_rows else prior
        order_share = np.where(history > 0, frame["order_months"].astype(float).to_numpy() / np.maximum(history, 1), 0.0)
        design = {"bias": np.ones(len(frame)), "pipeline": frame["pipeline"].astype(float).to_numpy() / MONEY_UNIT}
        if VARIANT.get("prior_feature", False):
            design["prior"] = prior
        for k in VARIANT.get("ks", (self.shrink_months,)):
            own = history / (history + k)
            design[f"profile_k{k}"] = profile * (1 - own)
            for window in VARIANT.get("windows", WINDOWS):
                rate = frame[f"sales_{window}m"].astype(float).to_numpy() / MONEY_UNIT * factors[window]
                design[f"sales_{window}m_k{k}"] = rate * own
                if VARIANT.get("q", False):
                    design[f"sales_{window}m_k{k}_q"] = rate * own * order_share
        return pd.DataFrame(design, index=frame.index)

    def _learn_blr(self, model: linear_model.BayesianLinearRegression, design: pd.DataFrame,
                   target: pd.Series, seen: int) -> int:
        if self.forget < 1.0 and seen:
            # Per-row smoothing s such that the whole batch decays old evidence by `forget`.
            model.smoothing = self.forget ** (1.0 / len(design))
        else:
            model.smoothing = None
        model.learn_many(design, target)
        return seen + len(design)

    def _predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        prior = self._prior_values(frame)
        if self._combiner_rows:
            model = np.asarray(self._combiner.predict_many(self._combiner_design(frame)), dtype=float) * MONEY_UNIT
        else:
            model = prior.copy()
        model = np.maximum(model, 0.0)
        if self.prior_months:
            history = frame["history_months"].astype(float).to_numpy()
            weight = np.clip(history / self.prior_months, 0.0, 1.0)
            has_prior = prior > 0
            model = np.where(has_prior, weight * model + (1 - weight) * prior, model)
        return model

    # -- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state: hyperparameters, counts, the seasonal index, river objects pickled."""
        return {
            "version": 1,
            "params": {"prior_months": self.prior_months, "shrink_months": self.shrink_months,
                       "forget": self.forget, "min_profile_months": self.min_profile_months},
            "seasonal": self.seasonal.to_dict(),
            "learned": self._learned,
            "profile_rows": self._profile_rows,
            "combiner_rows": self._combiner_rows,
            "abs_error": self._abs_error,
            "abs_label": self._abs_label,
            "river": _pack({"profile": self._profile, "firmographic": self._firmographic, "combiner": self._combiner,
                            "segments": self._segments, "mae": self._mae}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "PotentialModel":
        if state.get("version") != 1:
            raise ValueError(f"unknown potential model state version {state.get('version')!r}")
        self.__init__(**state["params"])  # type: ignore[misc]
        self.seasonal = SeasonalIndex.from_dict(state["seasonal"])
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
