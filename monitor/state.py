"""Account and rep state, and the per-rep territory aggregates built from it.

Pure functions over plain dataclasses; the Faust tables store their `to_dict()` form.
Sales and activity minutes are kept in calendar-month buckets of event time, so late
and out-of-order events land in the month they happened, and the trailing window
is a sum of whole months ending at the planner's watermark.
"""

from __future__ import annotations

import sys
from types import MappingProxyType
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from core.contract import Event
from core.shares import RepShare, rep_shares
from monitor import dedupe
from monitor.regions import admin_area

# Month buckets older than this (relative to the account's newest bucket) are pruned.
KEPT_MONTHS = 24


def month_key(moment: datetime) -> str:
    # One shared string per month: every account's month buckets are keyed by it.
    return sys.intern(f"{moment.year:04d}-{moment.month:02d}")


def month_index(key: str) -> int:
    year, month = key.split("-")
    return int(year) * 12 + int(month) - 1


def month_key_of_index(index: int) -> str:
    """The "YYYY-MM" key of a `month_index`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(slots=True)  # no per-instance dict: a worker holds one of these per account
class AccountState:
    """What the service keeps of an account: ids, coordinates and figures, no names.

    Every field that an event sets carries the event time it was set at (`*_at`), and
    an older event never overwrites a newer one: the state is the same whatever order
    late and out-of-order events arrive in.
    """

    account_id: str
    lat: float | None = None
    lon: float | None = None
    industry: str | None = None
    employees: int | None = None
    # Only reps who serve this segment (or every segment) may be given the account.
    segment: str | None = None
    # Keyed hash of the name (pseudonym); the name itself is not stored.
    name_hash: str | None = None
    # What market shocks (and the potential model) group by: the account's explicit `region`
    # when it has one, else the admin1 area it lies in (its country where there is none).
    region: str | None = None
    # Where the account's location is (monitor.regions): "DE", "DE-02", "DE-02-09162".
    country: str | None = None
    admin1: str | None = None
    admin2: str | None = None
    rep_id: str | None = None
    locked: bool = False
    closed: bool = False
    # True once an account.upserted arrived; events that come before it are held.
    known: bool = False
    profile_at: str | None = None
    owner_at: str | None = None
    closed_at: str | None = None
    monthly_sales: dict[str, float] = field(default_factory=dict)
    monthly_minutes: dict[str, float] = field(default_factory=dict)
    # opportunity id -> [event time, weighted open amount or None once won/lost] of its newest
    # update, then those of its newest update from an earlier month, if any (`opportunity_as_of`)
    opportunities: dict[str, list] = field(default_factory=dict)
    last_event_at: str | None = None
    # Events that arrived before the account itself, with their origin, to apply on
    # arrival or dead-letter after the hold expires.
    held: list[dict[str, Any]] = field(default_factory=list)
    # Input topic -> highest offset applied to (or held for) this account, in the same record as
    # its effect: a duplicate at or below it was read again, and its snapshot is sent again.
    applied_offsets: dict[str, int] = field(default_factory=dict)
    # The event ids applied to it (monitor.dedupe): duplicates are recognised from this row.
    seen: dict[str, str] = field(default_factory=dict)
    # At least the characters of this row's JSON (monitor.intake checks it against the record
    # limit); None: not measured yet.
    row_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        # The same plain, independent copy as dataclasses.asdict, without its generic
        # recursion (it was the intake's largest own cost: 2-3 copies per event).
        row = self.public_dict()
        row["held"] = _copy(self.held)
        row["applied_offsets"] = dict(self.applied_offsets)
        row["seen"] = dict(self.seen)
        row["row_bytes"] = self.row_bytes
        return row

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "AccountState":
        if "seen" in row:  # a table row: its ids may be in the layout before the flat one
            row = {**row, "seen": dedupe.flat(row["seen"])}
        return cls(**row)

    def copy(self) -> "AccountState":
        """An independent copy (what `from_dict(to_dict())` gives, faster)."""
        return AccountState(**self.to_dict())

    @property
    def open_pipeline(self) -> float:
        return sum(entry[1] for entry in self.opportunities.values() if entry[1] is not None)

    def public_fields(self) -> dict[str, Any]:
        """`public_dict` sharing its buckets with the state (a view to read, not a copy)."""
        return {name: getattr(self, name) for name in _PUBLIC_FIELDS}

    def __json__(self) -> dict[str, Any]:
        """What Faust writes to a table's changelog for it: the intake's and the planner's
        tables keep the state objects themselves (a row read back from a changelog or a
        RocksDB store is a dict again: `state_of`)."""
        return self.to_dict()

    def public_dict(self) -> dict[str, Any]:
        """The state without the held raw messages: what the planner needs."""
        return {
            "account_id": self.account_id,
            "lat": self.lat,
            "lon": self.lon,
            "industry": self.industry,
            "employees": self.employees,
            "segment": self.segment,
            "name_hash": self.name_hash,
            "region": self.region,
            "country": self.country,
            "admin1": self.admin1,
            "admin2": self.admin2,
            "rep_id": self.rep_id,
            "locked": self.locked,
            "closed": self.closed,
            "known": self.known,
            "profile_at": self.profile_at,
            "owner_at": self.owner_at,
            "closed_at": self.closed_at,
            # Month buckets hold numbers and opportunities [time, number]: one level to copy.
            "monthly_sales": dict(self.monthly_sales),
            "monthly_minutes": dict(self.monthly_minutes),
            "opportunities": {key: list(value) for key, value in self.opportunities.items()},
            "last_event_at": self.last_event_at,
        }


def state_of(row: AccountState | Mapping[str, Any]) -> AccountState:
    """An account's table value as its state: the object itself, or the row a changelog
    or a RocksDB store gave back, read into one (sharing its buckets)."""
    return row if isinstance(row, AccountState) else AccountState.from_dict(row)


#: One empty value, which cannot be changed, shared by every planner state for what is empty.
_EMPTY: Mapping[str, Any] = MappingProxyType({})
#: What only the intake fills (held events, input offsets, applied ids): always empty here.
_INTAKE_ONLY: dict[str, Any] = {"held": (), "applied_offsets": _EMPTY, "seen": _EMPTY}
#: Buckets many accounts have none of (no activity logged, no open opportunity).
_BUCKETS = ("monthly_sales", "monthly_minutes", "opportunities")


def planner_state(row: AccountState | Mapping[str, Any]) -> AccountState:
    """The planner's state of an account, from its snapshot or a row its changelog gave back
    (the state itself if it is one already), as `state_of` reads it, but with one shared empty
    value for the intake's fields and for empty buckets: the planner only reads them, and
    five empty containers an account cost about 300 bytes. Its changelog record (`__json__`)
    is unchanged.

    >>> state = planner_state({"account_id": "a1", "seen": {"t 2025-01-01": "ab12"}, "monthly_sales": {"2025-01": 3.0}})
    >>> state.seen, state.held, state.monthly_sales, state.to_dict()["seen"], state.to_dict()["monthly_minutes"]
    (mappingproxy({}), (), {'2025-01': 3.0}, {}, {})
    >>> state.monthly_minutes["2025-01"] = 5.0  # an update is a new state: changing one is a bug
    Traceback (most recent call last):
    TypeError: 'mappingproxy' object does not support item assignment
    """
    if isinstance(row, AccountState):  # the planner's table keeps the state object itself
        return row
    empty = {name: _EMPTY for name in _BUCKETS if not row.get(name)}
    return AccountState(**{**row, **empty, **_INTAKE_ONLY})


#: Fields whose values come from a small set (codes, ids of reps and industries).
_REPEATED_VALUES = ("industry", "segment", "region", "country", "admin1", "admin2", "rep_id")


def shared_strings(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` (an account's state or snapshot as decoded from JSON) holding the process's one
    copy of each field name, month key and code. A JSON decoder makes new strings for every
    document it reads: kept for each of a company's accounts, the field names alone came to
    1.5 kB an account.

    >>> import json
    >>> a, b = (shared_strings(json.loads('{"region": "DE-05", "monthly_sales": {"2025-03": 1.0}}')) for _ in "ab")
    >>> [x is y for x, y in zip([*a, a["region"], *a["monthly_sales"]], [*b, b["region"], *b["monthly_sales"]])]
    [True, True, True, True]
    """
    out = {sys.intern(key): value for key, value in row.items()}
    for name in _REPEATED_VALUES:
        if name in out:
            out[name] = _shared(out[name])
    for name in ("monthly_sales", "monthly_minutes"):
        months = out.get(name)
        if isinstance(months, dict):
            out[name] = {sys.intern(month): value for month, value in months.items()}
    return out


def _shared(value: Any) -> Any:
    """The process's one copy of a string (of a few values, kept for many accounts)."""
    return sys.intern(value) if type(value) is str else value


#: The fields of `AccountState.public_dict`, in its order.
_PUBLIC_FIELDS = tuple(AccountState("").public_dict())


def _copy(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, tuples of plain values), as asdict copies fields."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copy(item) for item in value)
    return value


@dataclass
class RepState:
    rep_id: str
    home_lat: float
    home_lon: float
    capacity_fte: float = 1.0
    active: bool = True
    max_travel_km: float | None = None
    updated_at: str = ""
    # The segments the rep serves (empty: every segment) and hard limits on the accounts a
    # proposal leaves them with.
    segments: list[str] = field(default_factory=list)
    min_accounts: int | None = None
    max_accounts: int | None = None
    # The rep's sales target for a calendar year (None: no quota, its pace is not judged).
    quota: float | None = None
    # What one straight-line km from home costs the rep (a city rep 1.3, say): travel objective only.
    travel_factor: float = 1.0
    # The sales district the rep belongs to (TERRITORY_REBALANCE_SCOPE=district balances each alone).
    district: str | None = None
    # Hard limits on the workload (minutes over the window) a proposal leaves the rep with.
    min_workload: float | None = None
    max_workload: float | None = None
    # The sales region the rep's district belongs to (per-region aggregates only).
    sales_region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "RepState":
        # The intake's row also keeps the rep's applied event ids (`seen`): not part of the rep.
        return cls(**{key: value for key, value in row.items() if key != "seen"})


def _newer(moment: str, than: str | None) -> bool:
    return than is None or moment >= than


def _updated(entry: list | None, moment: str, weighted: float | None) -> list:
    """An opportunity's entry after an update at `moment` (UTC ISO time), whatever the order
    the updates arrive in: the newest update, then the newest one of an earlier month."""
    if entry is None:
        return [moment, weighted]
    newest, earlier = entry[:2], entry[2:4]
    if _newer(moment, newest[0]):
        return [moment, weighted, *(newest if newest[0][:7] < moment[:7] else earlier)]
    if moment[:7] < newest[0][:7] and (not earlier or _newer(moment, earlier[0])):
        return [*newest, moment, weighted]  # a late update: it may be what the month started with
    return list(entry)


def opportunity_as_of(entry: Sequence[Any], month: str) -> tuple[str, float | None] | None:
    """The update of an opportunity known at the start of `month` ("YYYY-MM"): its time and
    weighted open amount (None once won or lost), or None if it was not known yet."""
    for at in (0, 2):
        if len(entry) > at + 1 and str(entry[at])[:7] < month:
            return str(entry[at]), entry[at + 1]
    return None


def apply_account_event(state: AccountState | None, event: Event, *, name_hash: str | None = None) -> AccountState:
    """Apply an account-keyed event to the account's state (a new object).

    Upserts, closes and overrides are last-writer-wins by event time; sales and minutes
    add into the month they happened; so the result does not depend on arrival order.
    """
    data = event.data
    current = state.copy() if state else AccountState(account_id=data["account_id"])
    moment = event.occurred_at.astimezone(timezone.utc).isoformat()
    month = month_key(event.occurred_at.astimezone(timezone.utc))
    if event.type == "account.upserted":
        current.known = True
        if _newer(moment, current.profile_at):
            current.profile_at = moment
            if (current.lat, current.lon) != (data["lat"], data["lon"]) or current.country is None:
                area = admin_area(data["lat"], data["lon"])
                current.country, current.admin1, current.admin2 = area.country, area.admin1, area.admin2
            # An explicit region wins over the lookup (held events parsed before it existed lack it).
            current.region = _shared(data.get("region") or current.admin1 or current.country)
            current.lat, current.lon = data["lat"], data["lon"]
            current.industry, current.employees = _shared(data["industry"]), data["employees"]
            current.segment = _shared(data.get("segment"))  # held events parsed before the field lack it
            current.name_hash = name_hash
        if data["rep_id"] is not None and _newer(moment, current.owner_at):
            current.owner_at = moment
            current.rep_id = _shared(data["rep_id"])
            if data["locked"] is not None:
                current.locked = data["locked"]
    elif event.type == "account.closed":
        if _newer(moment, current.closed_at):
            current.closed_at = moment
    elif event.type == "order.placed":
        current.monthly_sales[month] = round(current.monthly_sales.get(month, 0.0) + data["amount"], 2)
    elif event.type == "activity.logged":
        minutes = data["duration_min"] + data["travel_min"]
        current.monthly_minutes[month] = round(current.monthly_minutes.get(month, 0.0) + minutes, 4)
    elif event.type == "opportunity.updated":
        probability = data["probability"] if data["probability"] is not None else 0.5
        weighted = data["amount"] * probability if data["stage"] == "open" else None
        opportunity_id = data["opportunity_id"]
        current.opportunities[opportunity_id] = _updated(current.opportunities.get(opportunity_id), moment, weighted)
    elif event.type == "assignment.override":
        if _newer(moment, current.owner_at):
            current.owner_at = moment
            current.rep_id, current.locked = _shared(data["rep_id"]), data["locked"]
    else:
        raise ValueError(f"not an account event: {event.type}")
    # Closed only if the close is newer than the latest upsert (a re-opened account is open).
    current.closed = current.closed_at is not None and not _newer(current.profile_at or "", current.closed_at)
    current.monthly_sales = _prune(current.monthly_sales)
    current.monthly_minutes = _prune(current.monthly_minutes)
    if current.last_event_at is None or moment > current.last_event_at:
        current.last_event_at = moment
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
        updated_at=event.occurred_at.astimezone(timezone.utc).isoformat(),
        segments=list(data.get("segments") or []),
        min_accounts=data.get("min_accounts"),
        max_accounts=data.get("max_accounts"),
        quota=data.get("quota"),  # held events parsed before the field lack it
        travel_factor=data.get("travel_factor") or 1.0,
        district=data.get("district"),
        min_workload=data.get("min_workload"),
        max_workload=data.get("max_workload"),
        sales_region=data.get("sales_region"),
    )


def _prune(buckets: dict[str, float]) -> dict[str, float]:
    # Always relative to the newest month, so the kept set does not depend on arrival order.
    if not buckets:
        return buckets
    # Keys are "YYYY-MM" (month_key), so string order is month order: no parsing per key.
    newest = month_index(max(buckets))
    oldest_kept = newest - KEPT_MONTHS + 1
    cutoff = f"{oldest_kept // 12:04d}-{oldest_kept % 12 + 1:02d}"
    return {key: value for key, value in buckets.items() if key >= cutoff}


def trailing_sum(buckets: Mapping[str, float], watermark: datetime, months: int) -> float:
    """Sum of the `months` whole calendar months ending with the watermark's month."""
    if months <= 0:
        return 0.0  # an empty window; its first month could also lie past year 9999, where keys stop sorting
    newest = month_key(watermark)
    oldest = month_key_of_index(max(month_index(newest) - months + 1, 0))
    # "YYYY-MM" keys sort as their months: compared as strings (a judgement sums every account's).
    return sum(value for key, value in buckets.items() if oldest <= key <= newest)


@dataclass(frozen=True)
class RepAggregate:
    """A rep's accounts and figures; share, fair share and deviation as core.shares defines
    them (of what the active reps serve, so the rebalancer's balances read the same)."""

    rep_id: str
    accounts: int
    potential: float
    workload_min: float
    capacity_fte: float
    share: float
    fair_share: float
    deviation: float = 0.0  # share / fair_share - 1; 0 with nothing to share
    workload_share: float = 0.0  # workload_min / what the active reps' accounts take
    district: str | None = None
    sales_region: str | None = None  # the region of the rep's district


def territory_aggregates(
    accounts: Iterable[AccountState],
    reps: Iterable[RepState],
    *,
    watermark: datetime,
    window_months: int = 12,
    potentials: Mapping[str, float] | None = None,
    workloads: Mapping[str, float] | None = None,
    groups: Mapping[str, str | None] | None = None,
) -> dict[str, RepAggregate]:
    """Per active rep: accounts, trailing-window potential and workload, share, fair share.

    Potential is the learned model's value per account when `potentials` is given, else
    the trailing sales of the window; workload likewise `workloads` (already summed over the
    window), else the trailing activity minutes. Fair share
    is weighted by capacity: a 0.5 FTE rep should carry half of a full-time rep. Accounts
    without an active rep (a coverage gap) count in no share (see core.shares). With
    `groups` (rep id -> district or segment pool), shares and fair shares are of the rep's
    group (reps without one form a group of their own), as the rebalancer balances each
    group alone then.
    """
    active = {rep.rep_id: rep for rep in reps if rep.active}
    counts = {rep_id: 0 for rep_id in active}
    potential: list[tuple[str, float]] = []
    workload: list[tuple[str, float]] = []
    for account in accounts:
        if account.closed or not account.known or account.rep_id not in active:
            continue
        counts[account.rep_id] += 1
        potential.append(
            (
                account.rep_id,
                potentials.get(account.account_id, 0.0)
                if potentials is not None
                else trailing_sum(account.monthly_sales, watermark, window_months),
            )
        )
        workload.append(
            (
                account.rep_id,
                workloads.get(account.account_id, 0.0)
                if workloads is not None
                else trailing_sum(account.monthly_minutes, watermark, window_months),
            )
        )
    capacity_groups: dict[str | None, dict[str, float]] = {}
    for rep_id, rep in active.items():
        capacity_groups.setdefault(groups.get(rep_id) if groups else None, {})[rep_id] = rep.capacity_fte
    shares: dict[str, RepShare] = {}
    workload_shares: dict[str, RepShare] = {}
    for capacities in capacity_groups.values():
        shares |= rep_shares(potential, capacities)
        workload_shares |= rep_shares(workload, capacities)
    return {
        rep_id: RepAggregate(
            rep_id=rep_id,
            accounts=counts[rep_id],
            potential=shares[rep_id].amount,
            workload_min=workload_shares[rep_id].amount,
            capacity_fte=rep.capacity_fte,
            share=shares[rep_id].share,
            fair_share=shares[rep_id].fair_share,
            deviation=shares[rep_id].deviation,
            workload_share=workload_shares[rep_id].share,
            district=rep.district,
            sales_region=rep.sales_region,
        )
        for rep_id, rep in active.items()
    }
