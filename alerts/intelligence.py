"""Sales intelligence per territory: the lists a manager hands a rep with a new territory.

A rebalance tells a rep *which* accounts they now own; these tables tell them *where to
start*. Pure pandas over the account rows a proposal carries (``proposal["accounts"]``,
built by ``planner.planner.account_context_row``); no I/O, so the weekly report, the
review page and a notebook all compute the same thing.

Per territory (rep):

- **ABC classes**, by potential and by realised sales (last twelve months), with the
  usual Pareto rule: rank accounts by value, largest first; an account is **A** while the
  accounts ranked before it make up less than 80% of the territory's total, **B** while
  they make up less than 95%, **C** after that. So A is the few accounts that carry the
  first 80% of the value (the account that crosses the 80% line is still A), B the next
  15%, C the long tail. Accounts worth nothing are C; a territory worth nothing is all C.
  An account that is A by potential but C by sales is under-served or under-realised.
- **Lapsed** accounts: they have ordered, but the months since their last order exceed
  ``max(2, 1.5 x their typical gap between ordering months)``. A monthly buyer is lapsed
  after 3 silent months, a quarterly one after 5. An account with a single ordering month
  has no rhythm yet and is assumed to buy half-yearly (lapsed after 10 silent months).
- **Sleeping giants**: potential in the territory's top 20% (at least one account), but
  activity minutes or sales in the territory's bottom third: large accounts nobody works.
  A measure that does not vary within the territory (no activity recorded at all) says
  nothing and is not used.

Months are "YYYY-MM" keys; ``as_of`` is the last complete month the figures run through
(``proposal["accounts_as_of"]``): an account that ordered in that month is 0 months silent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "ABC_A_UP_TO",
    "ABC_B_UP_TO",
    "ACCOUNT_COLUMNS",
    "TerritoryIntelligence",
    "abc_classes",
    "account_frame",
    "lapsed_accounts",
    "months_between",
    "sleeping_giants",
    "territory_intelligence",
]

ABC_A_UP_TO = 0.80  # cumulative share of value before an account, below which it is A
ABC_B_UP_TO = 0.95  # ... below which it is B; C otherwise
LAPSE_MIN_MONTHS = 2  # never lapsed after this many silent months or fewer
LAPSE_GAP_FACTOR = 1.5  # lapsed when silent longer than this many typical gaps
UNKNOWN_GAP_MONTHS = 6.0  # the rhythm assumed for an account with a single ordering month
GIANT_TOP_SHARE = 0.20  # sleeping giants: potential in the territory's top 20% ...
QUIET_BOTTOM_SHARE = 1 / 3  # ... and activity or sales in its bottom third

#: The columns of an account row (``planner.planner.account_context_row``).
ACCOUNT_COLUMNS = (
    "account_id",
    "lat",
    "lon",
    "rep_id",
    "potential",
    "sales_12m",
    "active_months_12m",
    "last_order_month",
    "typical_gap_months",
    "activity_minutes_12m",
)
_NUMBERS = ("potential", "sales_12m", "active_months_12m", "typical_gap_months", "activity_minutes_12m")
_CLASSES = ("A", "B", "C")


@dataclass(frozen=True)
class TerritoryIntelligence:
    """One territory's intelligence tables.

    - ``accounts``: every account of the territory, largest potential first, with the row
      columns plus ``abc_potential``, ``abc_sales``, ``months_since_order`` (NaN if never
      ordered), ``lapsed`` and ``sleeping_giant``.
    - ``abc``: index A, B, C; columns ``accounts_by_potential``, ``potential``,
      ``potential_share``, ``accounts_by_sales``, ``sales_12m``, ``sales_share``.
    - ``lapsed``: see :func:`lapsed_accounts`. ``sleeping_giants``: see :func:`sleeping_giants`.
    """

    rep_id: str
    accounts: pd.DataFrame
    abc: pd.DataFrame
    lapsed: pd.DataFrame
    sleeping_giants: pd.DataFrame

    @property
    def potential(self) -> float:
        return float(self.accounts["potential"].sum())

    @property
    def sales_12m(self) -> float:
        return float(self.accounts["sales_12m"].sum())


def months_between(earlier: str, later: str) -> int:
    """Whole calendar months from one "YYYY-MM" key to another.

    >>> months_between("2024-11", "2025-02")
    3
    """
    return _month_number(later) - _month_number(earlier)


def _month_number(key: str) -> int:
    year, month = key.split("-")
    return int(year) * 12 + int(month) - 1


def account_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """The rows as a DataFrame with every column of :data:`ACCOUNT_COLUMNS` (missing
    ones empty) and numeric columns as floats: what the other functions expect."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for column in ACCOUNT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = frame.loc[:, [*ACCOUNT_COLUMNS, *(c for c in frame.columns if c not in ACCOUNT_COLUMNS)]]
    for column in _NUMBERS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("potential", "sales_12m", "activity_minutes_12m", "active_months_12m"):
        frame[column] = frame[column].fillna(0.0)
    frame["account_id"] = frame["account_id"].astype(str)
    frame["last_order_month"] = frame["last_order_month"].astype(object).where(frame["last_order_month"].notna(), None)
    return frame


def abc_classes(values: pd.Series) -> pd.Series:
    """ "A", "B" or "C" per value, same index: the Pareto rule of the module docstring.

    Ties are ranked by index, so the classes do not depend on the input order.

    >>> abc_classes(pd.Series([2, 50, 5, 30, 3, 10], index=list("fadbec"))).sort_index().tolist()
    ['A', 'A', 'B', 'B', 'C', 'C']
    """
    values = pd.to_numeric(values, errors="coerce").fillna(0.0).clip(lower=0.0)
    classes = pd.Series("C", index=values.index, dtype=object)
    total = float(values.sum())
    if total <= 0:
        return classes
    order = sorted(values.index, key=lambda label: (-values[label], str(label)))
    ranked = values.loc[order]
    before = (ranked.cumsum() - ranked) / total  # share of the accounts ranked before each
    slack = 1e-9  # exact splits (80 of 100) must not fall to the next class by rounding
    ranked_classes = pd.Series("C", index=ranked.index, dtype=object)
    ranked_classes[(before < ABC_B_UP_TO - slack) & (ranked > 0)] = "B"
    ranked_classes[(before < ABC_A_UP_TO - slack) & (ranked > 0)] = "A"
    classes.loc[ranked_classes.index] = ranked_classes
    return classes


def lapsed_accounts(frame: pd.DataFrame, *, as_of: str) -> pd.DataFrame:
    """Accounts that ordered before but have been silent longer than their rhythm allows.

    Columns: ``account_id``, ``rep_id``, ``last_order_month``, ``months_since_order``,
    ``typical_gap_months`` (NaN: a single ordering month), ``lapse_after_months`` (the
    threshold applied), ``sales_12m``, ``potential``; largest potential first.
    """
    frame = account_frame(frame)
    silent = _months_since_order(frame, as_of)
    gap = frame["typical_gap_months"].fillna(UNKNOWN_GAP_MONTHS)
    threshold = (gap * LAPSE_GAP_FACTOR).clip(lower=LAPSE_MIN_MONTHS)
    lapsed = frame.assign(months_since_order=silent, lapse_after_months=threshold)
    lapsed = lapsed[silent.notna() & (silent > threshold)]
    columns = [
        "account_id",
        "rep_id",
        "last_order_month",
        "months_since_order",
        "typical_gap_months",
        "lapse_after_months",
        "sales_12m",
        "potential",
    ]
    lapsed = lapsed.loc[:, columns].sort_values(
        ["potential", "sales_12m", "account_id"], ascending=[False, False, True]
    )
    return lapsed.astype({"months_since_order": int}).reset_index(drop=True)


def sleeping_giants(frame: pd.DataFrame) -> pd.DataFrame:
    """High-potential accounts with little activity or sales, within one territory.

    Pass one territory's accounts (the ranks are relative to them). Columns:
    ``account_id``, ``rep_id``, ``potential``, ``potential_rank`` (1 = largest),
    ``sales_12m``, ``activity_minutes_12m``, ``quiet_on`` ("activity", "sales" or
    "activity and sales"); largest potential first.
    """
    frame = account_frame(frame)
    columns = ["account_id", "rep_id", "potential", "potential_rank", "sales_12m", "activity_minutes_12m", "quiet_on"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ranked = frame.sort_values(["potential", "account_id"], ascending=[False, True]).reset_index(drop=True)
    ranked["potential_rank"] = range(1, len(ranked) + 1)
    top = ranked[
        (ranked["potential_rank"] <= max(1, math.ceil(GIANT_TOP_SHARE * len(ranked)))) & (ranked["potential"] > 0)
    ]
    quiet_activity = _bottom_share(ranked["activity_minutes_12m"])
    quiet_sales = _bottom_share(ranked["sales_12m"])
    labels = pd.Series(
        [
            " and ".join(name for name, quiet in (("activity", a), ("sales", s)) if quiet)
            for a, s in zip(quiet_activity, quiet_sales)
        ],
        index=ranked.index,
    )
    giants = top.assign(quiet_on=labels[top.index])
    giants = giants[giants["quiet_on"] != ""]
    return giants.loc[:, columns].reset_index(drop=True)


def _bottom_share(values: pd.Series) -> pd.Series:
    """True for values at or below the largest of the lowest ``QUIET_BOTTOM_SHARE`` of
    them (ties included); all False when the cut would take every value, since a measure
    that does not separate accounts cannot call any of them quiet."""
    ordered = values.sort_values(kind="stable")
    cut = ordered.iloc[max(1, math.ceil(QUIET_BOTTOM_SHARE * len(ordered))) - 1]
    if cut >= ordered.iloc[-1]:
        return pd.Series(False, index=values.index)
    return values <= cut


def _months_since_order(frame: pd.DataFrame, as_of: str) -> pd.Series:
    return (
        frame["last_order_month"]
        .map(lambda month: float(months_between(month, as_of)) if isinstance(month, str) and month else math.nan)
        .astype(float)
    )


def _abc_summary(accounts: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    totals = {measure: float(accounts[measure].sum()) for measure in ("potential", "sales_12m")}
    for grade in _CLASSES:
        potential = float(accounts.loc[accounts["abc_potential"] == grade, "potential"].sum())
        sales = float(accounts.loc[accounts["abc_sales"] == grade, "sales_12m"].sum())
        rows[grade] = {
            "accounts_by_potential": int((accounts["abc_potential"] == grade).sum()),
            "potential": potential,
            "potential_share": potential / totals["potential"] if totals["potential"] else 0.0,
            "accounts_by_sales": int((accounts["abc_sales"] == grade).sum()),
            "sales_12m": sales,
            "sales_share": sales / totals["sales_12m"] if totals["sales_12m"] else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")


def territory_intelligence(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    *,
    as_of: str,
    rep_ids: Iterable[str] | None = None,
) -> dict[str, TerritoryIntelligence]:
    """The intelligence of each territory in ``rows`` (or of ``rep_ids`` only, in that
    order; a rep without accounts gets empty tables). Accounts without a rep are left out.

    To see the territories a proposal would create, pass rows whose ``rep_id`` already
    has the moves applied.
    """
    frame = account_frame(rows)
    frame = frame[frame["rep_id"].notna()]
    wanted = list(rep_ids) if rep_ids is not None else sorted(frame["rep_id"].astype(str).unique())
    out: dict[str, TerritoryIntelligence] = {}
    for rep_id in wanted:
        mine = frame[frame["rep_id"] == rep_id].sort_values(["potential", "account_id"], ascending=[False, True])
        mine = mine.reset_index(drop=True)
        lapsed = lapsed_accounts(mine, as_of=as_of)
        giants = sleeping_giants(mine)
        accounts = mine.assign(
            abc_potential=abc_classes(mine["potential"]),
            abc_sales=abc_classes(mine["sales_12m"]),
            months_since_order=_months_since_order(mine, as_of),
            lapsed=mine["account_id"].isin(lapsed["account_id"]),
            sleeping_giant=mine["account_id"].isin(giants["account_id"]),
        )
        out[rep_id] = TerritoryIntelligence(
            rep_id=rep_id, accounts=accounts, abc=_abc_summary(accounts), lapsed=lapsed, sleeping_giants=giants
        )
    return out
