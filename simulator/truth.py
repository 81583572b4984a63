"""Ground truth of the simulation: what each account is really worth, when.

The event generator draws orders from exactly these expectations, so benchmarks can
score the monitor's potential model, detectors and rebalancer against them:

- an account's deseasonalised yearly potential at a moment (`true_yearly_potential`),
  which is what the potential model should converge to;
- the expected order value in any window (`expected_order_value`), including
  seasonality and the shock, which is what realised sales average to;
- a table of both per account and month (`ground_truth_frame`).

Orders are spread uniformly over each month's business time (weekdays 07-19 UTC), and
the shock multiplies the rate from its start on; the functions here integrate that.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from simulator.clock import add_months, as_utc, business_seconds, month_boundaries
from monitor.regions import default_admin_areas
from simulator.company import Company, Shock, SimAccount

if TYPE_CHECKING:
    import pandas as pd

# Monthly demand multipliers, January..December; mean exactly 1 so a year's orders
# add up to the yearly potential. Year-end budgets peak in December, August is the
# holiday lull, and the profile changes gradually in between.
SEASONALITY: tuple[float, ...] = (0.90, 0.95, 1.05, 1.05, 1.00, 0.95, 0.80, 0.60, 0.95, 1.05, 1.20, 1.50)


def seasonality(month: int) -> float:
    """Demand multiplier of calendar month 1..12."""
    return SEASONALITY[month - 1]


def is_shocked(account: SimAccount, shock: Shock | None) -> bool:
    if shock is None or account.region != shock.region:
        return False
    return not shock.areas or _admin2_at(account.lat, account.lon) in shock.areas


@lru_cache(maxsize=65536)
def _admin2_at(lat: float, lon: float) -> str:
    # Called per account and month: one lookup per location.
    return str(default_admin_areas().lookup(lat, lon).admin2 or "")


def shock_multiplier(account: SimAccount, at: datetime, shock: Shock | None) -> float:
    """Demand multiplier of the shock for `account` at `at` (1.0 outside it)."""
    if is_shocked(account, shock) and as_utc(at) >= shock.start:  # type: ignore[union-attr]
        return shock.factor  # type: ignore[union-attr]
    return 1.0


def true_yearly_potential(account: SimAccount, at: datetime, shock: Shock | None = None) -> float:
    """Deseasonalised yearly potential at `at`: what a perfect potential model predicts."""
    return account.true_potential * shock_multiplier(account, at, shock)


def _month_fraction_value(
    account: SimAccount, month_start: datetime, t0: datetime, t1: datetime, shock: Shock | None
) -> float:
    """Expected order value of one calendar month that falls into [t0, t1)."""
    month_end = add_months(month_start, 1)
    lo, hi = max(t0, month_start), min(t1, month_end)
    if hi <= lo:
        return 0.0
    whole = business_seconds(month_start, month_end)
    if whole == 0:
        return 0.0
    if is_shocked(account, shock):
        cut = min(max(shock.start, lo), hi)  # type: ignore[union-attr]
        weighted = business_seconds(lo, cut) + shock.factor * business_seconds(cut, hi)  # type: ignore[union-attr]
    else:
        weighted = float(business_seconds(lo, hi))
    return account.true_potential / 12.0 * seasonality(month_start.month) * weighted / whole


def expected_order_value(account: SimAccount, t0: datetime, t1: datetime, shock: Shock | None = None) -> float:
    """Expected sum of the account's order amounts with occurred_at in [t0, t1).

    Valid inside the simulated period (a simulation starting mid-month only
    generates the part of that month after its start, and so does this).
    """
    t0, t1 = as_utc(t0), as_utc(t1)
    total = 0.0
    month = add_months(t0, 0)
    while month < t1:
        total += _month_fraction_value(account, month, t0, t1, shock)
        month = add_months(month, 1)
    return total


def rep_true_potential(
    company: Company, at: datetime, shock: Shock | None = None, assignment: dict[str, str] | None = None
) -> dict[str, float]:
    """Each rep's true yearly potential at `at` under `assignment` (default: the initial owners)."""
    totals = {r.rep_id: 0.0 for r in company.reps}
    for a in company.accounts:
        owner = assignment.get(a.account_id, a.rep_id) if assignment else a.rep_id
        totals[owner] += true_yearly_potential(a, at, shock)
    return totals


def ground_truth_frame(company: Company, *, months: int = 24, shock: Shock | None = None) -> "pd.DataFrame":
    """One row per account and simulated month.

    Columns: month_start (UTC), account_id, rep_id, region, industry,
    yearly_potential (deseasonalised, at the end of the month, i.e. after a shock
    that starts within it) and expected_value (expected order value in the month).
    """
    import pandas as pd  # only benchmarks need the table; keep `import simulator` light

    bounds = month_boundaries(company.start, months)
    n = len(company.accounts)
    base = np.array([a.true_potential for a in company.accounts])
    shocked = np.array([is_shocked(a, shock) for a in company.accounts])
    frames = []
    for k in range(months):
        t0, t1 = bounds[k], bounds[k + 1]
        month_start = add_months(t0, 0)
        whole = max(business_seconds(month_start, add_months(month_start, 1)), 1)
        # Business time of the month inside the simulation, split at the shock's start.
        cut = min(max(shock.start, t0), t1) if shock is not None else t1
        before, after = business_seconds(t0, cut), business_seconds(cut, t1)
        factor = shock.factor if shock is not None else 1.0
        active_at_end = shock is not None and t1 > shock.start
        weight = np.where(shocked, before + factor * after, before + after) / whole
        frames.append(
            pd.DataFrame(
                {
                    "month_start": pd.Timestamp(t0),
                    "account_id": [a.account_id for a in company.accounts],
                    "rep_id": [a.rep_id for a in company.accounts],
                    "region": [a.region for a in company.accounts],
                    "industry": [a.industry for a in company.accounts],
                    "yearly_potential": np.where(shocked & active_at_end, base * factor, base),
                    "expected_value": base / 12.0 * seasonality(month_start.month) * weight,
                },
                index=pd.RangeIndex(n),
            )
        )
    return pd.concat(frames, ignore_index=True)
