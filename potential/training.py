"""The planner's steps: `learn_from_history` (the monthly training pass, with the company's
and regions' sales totals) and `predict_potential` (every account valued now)."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import numpy as np

from monitor.state import KEPT_MONTHS, AccountState
from potential.features import UNKNOWN, _first_idx, feature_frame_at
from potential.model import PotentialModel
from potential.months import _MONTH_CACHE, _idx_of, _key_of, _month_idx, _month_start


def _live(account: AccountState) -> bool:
    return account.known and not account.closed


def sales_totals(
    accounts: Iterable[AccountState], before: datetime
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
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


def learn_from_history(
    model: PotentialModel, accounts: Iterable[AccountState], month_end: datetime, *, label_months: int = 3
) -> list[tuple[str, float, float]]:
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
    learned, labels = [], []
    for account in accounts:
        first = _first_idx(account)
        if first is None or first > start:
            continue
        total = 0.0
        for key, value in account.monthly_sales.items():
            if start <= _month_idx(key) < end:
                total += value
        learned.append(account)
        labels.append(12.0 * total / weight)
    if not learned:
        return []
    frame = feature_frame_at(learned, feature_time, seasonal=model.seasonal)
    before = model.learn_many(frame, labels)
    return list(zip((account.account_id for account in learned), before.tolist(), labels))


def predict_potential(model: PotentialModel, accounts: Iterable[AccountState], at: datetime) -> dict[str, float]:
    """Expected yearly potential of every account at `at` (closed accounts: 0)."""
    live: list[AccountState] = []
    closed: list[AccountState] = []
    for account in accounts:
        (closed if account.closed else live).append(account)
    frame = feature_frame_at(live, at, seasonal=model.seasonal)
    values = model.predict_many(frame) if live else np.zeros(0)
    result = {account.account_id: float(v) for account, v in zip(live, values.tolist())}
    result.update({account.account_id: 0.0 for account in closed})
    return result
