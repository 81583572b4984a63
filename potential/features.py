"""Features of an account at a moment (`features_at`: only months before it), the size
bands of the segment prior, and the typed frame the model reads feature rows into."""

from __future__ import annotations

import math
from datetime import datetime
from itertools import islice
from typing import Any, Iterable, Mapping

import pandas as pd

from monitor.state import KEPT_MONTHS, AccountState, opportunity_as_of
from potential.months import _MONTH_CACHE, _idx_of, _iso_idx, _key_of, _month_idx
from potential.normalise import SeasonalIndex

# Sales windows (months) of the rate features; the longest is capped by what the state keeps.
WINDOWS: tuple[int, ...] = (3, 6, 12, 24)
# Employee bands of the segment prior (lower bounds).
SIZE_BANDS: tuple[tuple[int, str], ...] = ((1000, "1000+"), (250, "250-999"), (50, "50-249"), (10, "10-49"), (1, "1-9"))
UNKNOWN = "unknown"
# The rate features' names, made once: a judgement makes a row for every account.
_SALES_NAMES = tuple((window, f"sales_{window}m", f"sales_{window}m_months") for window in WINDOWS)
_MINUTES_NAMES = ((3, "minutes_3m"), (12, "minutes_12m"))
#: Feature rows turned into the frame at a time (`feature_frame`).
FRAME_CHUNK = 4096


def size_band(employees: int | float | None) -> str:
    """Employee band of the segment prior: '1-9', '10-49', '50-249', '250-999', '1000+'."""
    if employees is None or not employees > 0:
        return UNKNOWN
    for lower, name in SIZE_BANDS:
        if employees >= lower:
            return name
    return SIZE_BANDS[-1][1]


def _first_idx(account: AccountState, before: int | None = None) -> int | None:
    """First month with any evidence of the account (profile, sales, minutes, opportunity)."""
    limit = before if before is not None else 1 << 30
    first = limit
    for buckets in (account.monthly_sales, account.monthly_minutes):
        for key in buckets:
            idx = _MONTH_CACHE.get(key) or _month_idx(key)
            if idx < first:
                first = idx
    for entry in account.opportunities.values():
        for moment in entry[0::2]:
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
            del by_offset[max(a - kept, 0) :]
    return by_offset


def features_at(
    account: AccountState, at: datetime, *, seasonal: SeasonalIndex | None = None
) -> dict[str, float | str]:
    """Features of `account` as they were known at `at`: only months strictly before `at`'s month.

    Money rates are deseasonalised with `seasonal` (if given) and annualised over the
    months of the window the account existed in (`sales_<w>m_months` says how many).
    Opportunities count with their last update before `at`'s month (the state keeps the
    newest update and the newest of an earlier month, so this is exact for the newest
    update's month and later; further back an opportunity updated since is left out). Missing industry or employees become "unknown" / a flag.

    >>> from datetime import timezone
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
    # At most KEPT_MONTHS - 1 months, as `training.sales_totals`: the state prunes the month
    # before those once the account has a bucket in `at`'s month, so a longer history would
    # change with the account's first order of the month (and not with what was known at `at`).
    history = 0 if first is None else min(a - first, KEPT_MONTHS - 1)
    sales = _past(account.monthly_sales, a, history)
    minutes = _past(account.monthly_minutes, a, history)
    if seasonal is None:
        factors = [1.0] * len(sales)
    else:
        factors = [seasonal.factors[(a - 1 - d) % 12] for d in range(len(sales))]

    row: dict[str, float | str] = {}
    total = weight = 0.0
    done = 0
    for window, rate_name, months_name in _SALES_NAMES:
        n = min(window, len(sales))
        for d in range(done, n):
            total += sales[d]
            weight += factors[d]
        done = n
        row[rate_name] = 12.0 * total / weight if weight > 0 else 0.0
        row[months_name] = float(n)
    for window, name in _MINUTES_NAMES:
        n = min(window, len(minutes))
        row[name] = 12.0 * sum(minutes[:n]) / n if n else 0.0
    order_months = [d for d, value in enumerate(sales) if value > 0]
    row["order_months"] = float(len(order_months))
    row["months_since_first_order"] = float(order_months[-1] + 1) if order_months else 0.0
    row["history_months"] = float(history)
    month = _key_of(a)
    known = (opportunity_as_of(entry, month) for entry in account.opportunities.values())
    row["pipeline"] = float(sum(update[1] for update in known if update is not None and update[1] is not None))
    row["industry"] = account.industry or UNKNOWN
    row["size_band"] = size_band(account.employees)
    row["log_employees"] = math.log1p(account.employees) if account.employees and account.employees > 0 else 0.0
    row["employees_missing"] = 0.0 if account.employees and account.employees > 0 else 1.0
    row["region"] = account.region or UNKNOWN
    # Coarse location (0.5 degree, ~50 km): enough for a regional market, no street address.
    if account.lat is not None and account.lon is not None:
        row["lat"], row["lon"] = round(account.lat * 2) / 2, round(account.lon * 2) / 2
    else:
        row["lat"], row["lon"] = 0.0, 0.0
    row["month"] = month
    return row


# Columns `features_at` produces, with the value used when a hand-made row lacks one.
_DEFAULTS: dict[str, float | str] = {
    **{f"sales_{w}m": 0.0 for w in WINDOWS},
    **{f"sales_{w}m_months": 0.0 for w in WINDOWS},
    "minutes_3m": 0.0,
    "minutes_12m": 0.0,
    "order_months": 0.0,
    "months_since_first_order": 0.0,
    "history_months": 0.0,
    "pipeline": 0.0,
    "industry": UNKNOWN,
    "size_band": UNKNOWN,
    "log_employees": 0.0,
    "employees_missing": 1.0,
    "region": UNKNOWN,
    "lat": 0.0,
    "lon": 0.0,
    "month": "",
}
_TEXT = {name for name, value in _DEFAULTS.items() if isinstance(value, str)}


def feature_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Feature rows as a typed frame: every expected column, missing values defaulted.

    Rows are taken FRAME_CHUNK at a time, so a generator of a whole company's rows never
    has them all alive at once (a row is a dict of 2 kB; its line in the frame 0.2 kB)."""
    rows = iter(rows)
    chunks = []
    while chunk := list(islice(rows, FRAME_CHUNK)):
        chunks.append(_typed_frame(chunk))
    if len(chunks) == 1:
        return chunks[0]
    return pd.concat(chunks, ignore_index=True) if chunks else _typed_frame([])


def _typed_frame(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows)))
    for name, default in _DEFAULTS.items():
        if name not in frame.columns:
            frame[name] = default
        elif name in _TEXT:
            frame[name] = frame[name].where(frame[name].notna() & (frame[name] != ""), default).astype(str)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").fillna(default).astype(float)
    return frame
