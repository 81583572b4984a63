"""Seasonal and regional normalisation of sales: `SeasonalIndex` (demand per calendar
month, to deseasonalise) and `RegionalLevels` (each region's level against the typical
region's, to bring past sales to today's level)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from monitor.state import KEPT_MONTHS
from potential.months import _key_of, _month_idx


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
        # Tables by (region, month index): every prediction of a month asks for the same ones.
        self._table_cache: dict[tuple[str, int], np.ndarray] = {}

    def update(self, totals: Mapping[str, Mapping[str, float]]) -> None:
        self._reference_cache, self._table_cache = {}, {}
        for region, months in totals.items():
            self.totals.setdefault(region, {}).update({k: float(v) for k, v in months.items()})
        for region, months in self.totals.items():
            if len(months) > 2 * KEPT_MONTHS:
                for key in sorted(months, key=_month_idx)[: len(months) - 2 * KEPT_MONTHS]:
                    del months[key]

    def table(self, region: str, at: int) -> np.ndarray:
        """factor[n] for windows of n = 0..KEPT_MONTHS months ending before month index `at`
        (read-only: the same array serves every call until the totals change)."""
        cached = self._table_cache.get((region, at))
        if cached is None:
            cached = self._table_cache[(region, at)] = self._compute_table(region, at)
            cached.flags.writeable = False
        return cached

    def _compute_table(self, region: str, at: int) -> np.ndarray:
        out = np.ones(KEPT_MONTHS + 1)
        months = self.totals.get(region)
        if not months:
            return out
        reference = self._reference(at)
        series = np.array([months.get(_key_of(m), 0.0) for m in range(at - KEPT_MONTHS, at)])
        share = series / reference  # nan where the company had no sales yet
        if np.isnan(share[-self.recent :]).any() or np.any(share[-self.recent :] <= 0):
            return out
        valid = share[~np.isnan(share) & (share > 0)]
        if len(valid) < self.recent + 2:
            return out
        # Per-month variance of the log relative level, robust (MAD) so that a shift is not counted as noise.
        steps = np.diff(np.log(valid))
        noise = float((1.4826 * np.median(np.abs(steps - np.median(steps)))) ** 2) / 2.0
        recent = float(share[-self.recent :].mean())
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
        return {
            "recent_months": self.recent,
            "threshold": self.threshold,
            "totals": {r: dict(m) for r, m in self.totals.items()},
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "RegionalLevels":
        levels = cls(recent_months=int(row["recent_months"]), threshold=float(row["threshold"]))
        levels.totals = {r: {k: float(v) for k, v in m.items()} for r, m in row["totals"].items()}
        return levels
