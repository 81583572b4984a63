"""Account and rep state, and the per-rep territory aggregates built from it.

Pure functions over plain dataclasses; the Faust tables store their `to_dict()` form.
Sales and activity minutes are kept in calendar-month buckets of event time, so late
and out-of-order events land in the month they happened, and the trailing window
is a sum of whole months ending at the planner's watermark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from monitor.contract import Event

# Month buckets older than this (relative to the account's newest bucket) are pruned.
KEPT_MONTHS = 24


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def month_index(key: str) -> int:
    year, month = key.split("-")
    return int(year) * 12 + int(month) - 1


@dataclass
class AccountState:
    account_id: str
    lat: float | None = None
    lon: float | None = None
    industry: str | None = None
    employees: int | None = None
    rep_id: str | None = None
    locked: bool = False
    closed: bool = False
    # True once an account.upserted arrived; orders may come first and are kept.
    known: bool = False
    monthly_sales: dict[str, float] = field(default_factory=dict)
    monthly_minutes: dict[str, float] = field(default_factory=dict)
    open_pipeline: dict[str, float] = field(default_factory=dict)
    last_event_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "AccountState":
        return cls(**row)


@dataclass
class RepState:
    rep_id: str
    home_lat: float
    home_lon: float
    capacity_fte: float = 1.0
    active: bool = True
    max_travel_km: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "RepState":
        return cls(**row)


def apply_account_event(state: AccountState | None, event: Event) -> AccountState:
    """Apply an account-keyed event to the account's state (a new object)."""
    data = event.data
    current = AccountState.from_dict(state.to_dict()) if state else AccountState(account_id=data["account_id"])
    month = month_key(event.occurred_at)
    if event.type == "account.upserted":
        current.lat, current.lon = data["lat"], data["lon"]
        current.industry = data["industry"]
        current.employees = data["employees"]
        if data["rep_id"] is not None:
            current.rep_id = data["rep_id"]
        current.locked = data["locked"]
        current.known, current.closed = True, False
    elif event.type == "account.closed":
        current.closed = True
    elif event.type == "order.placed":
        current.monthly_sales[month] = round(current.monthly_sales.get(month, 0.0) + data["amount"], 2)
    elif event.type == "activity.logged":
        minutes = data["duration_min"] + data["travel_min"]
        current.monthly_minutes[month] = current.monthly_minutes.get(month, 0.0) + minutes
    elif event.type == "opportunity.updated":
        if data["stage"] == "open":
            probability = data["probability"] if data["probability"] is not None else 0.5
            current.open_pipeline[data["opportunity_id"]] = data["amount"] * probability
        else:
            current.open_pipeline.pop(data["opportunity_id"], None)
    elif event.type == "assignment.override":
        current.rep_id = data["rep_id"]
        current.locked = data["locked"]
    else:
        raise ValueError(f"not an account event: {event.type}")
    current.monthly_sales = _prune(current.monthly_sales)
    current.monthly_minutes = _prune(current.monthly_minutes)
    if current.last_event_at is None or event.occurred_at.isoformat() > current.last_event_at:
        current.last_event_at = event.occurred_at.isoformat()
    return current


def apply_rep_event(event: Event) -> RepState:
    data = event.data
    return RepState(
        rep_id=data["rep_id"],
        home_lat=data["home_lat"],
        home_lon=data["home_lon"],
        capacity_fte=data["capacity_fte"],
        active=data["active"],
        max_travel_km=data["max_travel_km"],
    )


def _prune(buckets: dict[str, float]) -> dict[str, float]:
    if len(buckets) <= KEPT_MONTHS:
        return buckets
    newest = max(month_index(key) for key in buckets)
    return {key: value for key, value in buckets.items() if newest - month_index(key) < KEPT_MONTHS}


def trailing_sum(buckets: Mapping[str, float], watermark: datetime, months: int) -> float:
    """Sum of the `months` whole calendar months ending with the watermark's month."""
    last = month_index(month_key(watermark))
    return sum(value for key, value in buckets.items() if 0 <= last - month_index(key) < months)


@dataclass(frozen=True)
class RepAggregate:
    rep_id: str
    accounts: int
    potential: float
    workload_min: float
    capacity_fte: float
    share: float
    fair_share: float

    @property
    def deviation(self) -> float:
        return self.share / self.fair_share - 1.0 if self.fair_share > 0 else 0.0


def territory_aggregates(
    accounts: Iterable[AccountState],
    reps: Iterable[RepState],
    *,
    watermark: datetime,
    window_months: int = 12,
) -> dict[str, RepAggregate]:
    """Per active rep: accounts, trailing-window potential and workload, share, fair share.

    Potential is trailing sales for now (a learned model replaces it later). Fair share
    is weighted by capacity: a 0.5 FTE rep should carry half of a full-time rep.
    """
    active = {rep.rep_id: rep for rep in reps if rep.active}
    counts = {rep_id: 0 for rep_id in active}
    potential = {rep_id: 0.0 for rep_id in active}
    workload = {rep_id: 0.0 for rep_id in active}
    for account in accounts:
        if account.closed or not account.known or account.rep_id not in active:
            continue
        counts[account.rep_id] += 1
        potential[account.rep_id] += trailing_sum(account.monthly_sales, watermark, window_months)
        workload[account.rep_id] += trailing_sum(account.monthly_minutes, watermark, window_months)
    total_potential = sum(potential.values())
    total_capacity = sum(rep.capacity_fte for rep in active.values())
    return {
        rep_id: RepAggregate(
            rep_id=rep_id,
            accounts=counts[rep_id],
            potential=potential[rep_id],
            workload_min=workload[rep_id],
            capacity_fte=rep.capacity_fte,
            share=potential[rep_id] / total_potential if total_potential > 0 else 0.0,
            fair_share=rep.capacity_fte / total_capacity if total_capacity > 0 else 0.0,
        )
        for rep_id, rep in active.items()
    }
