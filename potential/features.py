"""Features of an account at a moment (`features_at`: only months before it), the size
bands of the segment prior, and the typed frame the model reads feature rows into."""

from __future__ import annotations

import math
from datetime import datetime
from itertools import islice
from typing import Any, Callable, Iterable, Mapping

import numpy as np
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
#: Feature rows turned into the frame at a time (`feature_frame`, `feature_frame_at`).
FRAME_CHUNK = 4096
#: Months of history a feature row reads at most (see `features_at`).
HISTORY_MONTHS = KEPT_MONTHS - 1
_PROFILE_COLUMNS = ("pipeline", "industry", "size_band", "log_employees", "employees_missing", "region", "lat", "lon")


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
        if buckets:  # "YYYY-MM" keys sort as their months
            idx = _month_idx(min(buckets))
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


def _months_back(buckets: Mapping[str, float], a: int, history: int, slot: int, into: tuple[list, list, list]) -> int:
    """Add the buckets of the `history` months before month `a` to `into` (row `slot`, offset:
    0 for the month before `a`, value); return how many of those months are known: fewer
    where the state may have pruned them (state.py keeps KEPT_MONTHS from its newest bucket)."""
    rows, offsets, values = into
    newest = -1
    for key, value in buckets.items():
        idx = _MONTH_CACHE.get(key) or _month_idx(key)
        if idx > newest:
            newest = idx
        offset = a - 1 - idx
        if 0 <= offset < history:
            rows.append(slot)
            offsets.append(offset)
            values.append(value)
    kept = newest - KEPT_MONTHS + 1  # oldest month the state can still hold
    return max(a - kept, 0) if newest >= 0 and a - history < kept else history


def features_at(
    account: AccountState, at: datetime, *, seasonal: SeasonalIndex | None = None
) -> dict[str, float | str]:
    """Features of `account` as they were known at `at`: only months strictly before `at`'s month.

    The history is the months since the account's first evidence (profile, sales, minutes,
    an opportunity), at most KEPT_MONTHS - 1, and only those the state still holds.
    Money rates are deseasonalised with `seasonal` (if given) and annualised over the
    months of the window the account existed in (`sales_<w>m_months` says how many).
    Opportunities count with their last update before `at`'s month (the state keeps the
    newest update and the newest of an earlier month, so this is exact for the newest
    update's month and later; further back an opportunity updated since is left out). Missing industry or employees become "unknown" / a flag.
    `feature_frame_at` computes them for many accounts at once.

    >>> from datetime import timezone
    >>> from monitor.state import AccountState
    >>> acc = AccountState("a", industry="retail", employees=12, known=True,
    ...                    profile_at="2024-01-01T00:00:00+00:00",
    ...                    monthly_sales={"2024-01": 100.0, "2024-03": 200.0, "2024-04": 999.0})
    >>> f = features_at(acc, datetime(2024, 4, 15, tzinfo=timezone.utc))
    >>> f["history_months"], f["sales_3m"], f["order_months"], f["size_band"]
    (3.0, 1200.0, 2.0, '10-49')
    """
    return feature_frame_at([account], at, seasonal=seasonal).to_dict("records")[0]


def feature_frame_at(
    accounts: Iterable[AccountState], at: datetime, *, seasonal: SeasonalIndex | None = None
) -> pd.DataFrame:
    """`features_at` of each account, as a typed frame in the accounts' order, FRAME_CHUNK
    accounts at a time. The windows are summed over arrays of a chunk's months (a judgement
    values the whole company), in the order the definition adds them, so each row is exactly
    its account's features."""
    a = _idx_of(at)
    factors = [seasonal.factors[(a - 1 - d) % 12] if seasonal is not None else 1.0 for d in range(HISTORY_MONTHS)]
    # weights[d]: the seasonal weight of the d + 1 months before `at`'s month (cumsum adds in order).
    weights = np.cumsum(np.array(factors, dtype=float))
    return _in_chunks(accounts, lambda chunk: _chunk_features(chunk, a, weights))


def _in_chunks(items: Iterable[Any], frame_of: Callable[[list[Any]], pd.DataFrame]) -> pd.DataFrame:
    """The frames `frame_of` makes of FRAME_CHUNK items at a time, one after the other."""
    items = iter(items)
    chunks = []
    while chunk := list(islice(items, FRAME_CHUNK)):
        chunks.append(frame_of(chunk))
    if len(chunks) == 1:
        return chunks[0]
    return pd.concat(chunks, ignore_index=True) if chunks else _typed_frame([])


def _chunk_features(accounts: list[AccountState], a: int, weights: np.ndarray) -> pd.DataFrame:
    n = len(accounts)
    history = np.zeros(n, dtype=np.int64)
    sales_known, minutes_known = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    sales_at: tuple[list, list, list] = ([], [], [])
    minutes_at: tuple[list, list, list] = ([], [], [])
    profile: dict[str, list] = {name: [] for name in _PROFILE_COLUMNS}
    month = _key_of(a)
    for slot, account in enumerate(accounts):
        first = _first_idx(account, before=a)
        # At most KEPT_MONTHS - 1 months, as `training.sales_totals`: the state prunes the month
        # before those once the account has a bucket in `at`'s month, so a longer history would
        # change with the account's first order of the month (and not with what was known at `at`).
        months = 0 if first is None else min(a - first, HISTORY_MONTHS)
        history[slot] = months
        sales_known[slot] = _months_back(account.monthly_sales, a, months, slot, sales_at)
        minutes_known[slot] = _months_back(account.monthly_minutes, a, months, slot, minutes_at)
        known = (opportunity_as_of(entry, month) for entry in account.opportunities.values())
        profile["pipeline"].append(
            float(sum(update[1] for update in known if update is not None and update[1] is not None))
        )
        profile["industry"].append(account.industry or UNKNOWN)
        profile["size_band"].append(size_band(account.employees))
        employees = max(account.employees or 0, 0)
        profile["log_employees"].append(math.log1p(employees))
        profile["employees_missing"].append(0.0 if employees > 0 else 1.0)
        profile["region"].append(account.region or UNKNOWN)
        # Coarse location (0.5 degree, ~50 km): enough for a regional market, no street address.
        lat, lon = account.lat, account.lon
        if lat is None or lon is None:
            lat = lon = 0.0
        profile["lat"].append(round(lat * 2) / 2)
        profile["lon"].append(round(lon * 2) / 2)
    sales = _month_matrix(n, sales_at, sales_known)
    minutes = _month_matrix(n, minutes_at, minutes_known)
    columns: dict[str, Any] = {}
    for window, rate_name, months_name in _SALES_NAMES:
        used = np.minimum(window, sales_known)
        total = _first_months_sum(sales, used)
        weight = np.where(used > 0, weights[np.maximum(used - 1, 0)], 0.0)
        columns[rate_name] = np.divide(12.0 * total, weight, out=np.zeros(n), where=weight > 0)
        columns[months_name] = used.astype(float)
    for window, name in _MINUTES_NAMES:
        used = np.minimum(window, minutes_known)
        total = _first_months_sum(minutes, used)
        columns[name] = np.divide(12.0 * total, used, out=np.zeros(n), where=used > 0)
    ordered = sales > 0
    columns["order_months"] = ordered.sum(axis=1).astype(float)
    columns["months_since_first_order"] = (
        np.where(ordered, np.arange(1, HISTORY_MONTHS + 1), 0).max(axis=1, initial=0).astype(float)
    )
    columns["history_months"] = history.astype(float)
    columns |= profile
    columns["month"] = [month] * n
    return _typed_frame(pd.DataFrame(columns, index=pd.RangeIndex(n)))


def _month_matrix(n: int, entries: tuple[list, list, list], known: np.ndarray) -> np.ndarray:
    """Row per account, column d: the month d + 1 before `at`'s; months not known are 0."""
    matrix = np.zeros((n, HISTORY_MONTHS))
    rows, offsets, values = entries
    matrix[rows, offsets] = np.asarray(values, dtype=float)
    matrix[np.arange(HISTORY_MONTHS) >= known[:, None]] = 0.0
    return matrix


def _first_months_sum(matrix: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Per row, the sum of its first `months` columns, added one by one from the first."""
    sums = np.cumsum(matrix, axis=1)
    return np.where(months > 0, sums[np.arange(len(matrix)), np.maximum(months - 1, 0)], 0.0)


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
    return _in_chunks(rows, _typed_frame)


def _typed_frame(rows: list[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows)))
    for name, default in _DEFAULTS.items():
        if name not in frame.columns:
            frame[name] = default
        elif name in _TEXT:
            frame[name] = frame[name].where(frame[name].notna() & (frame[name] != ""), default).astype(str)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").fillna(default).astype(float)
    return frame
