"""Turn a simulated company into the event stream of the contract (design/EVENTS.md).

`generate_events` returns (topic, key, envelope) triples sorted by `occurred_at`:
first a `rep.upserted` per rep and an `account.upserted` per account at the start,
then months of `order.placed`, `activity.logged` and `opportunity.updated`.

Orders follow the ground truth in `simulator.truth` exactly: per account and month
a Poisson number of orders whose expected total is potential / 12 x seasonality,
with gamma-distributed amounts, placed uniformly in business time; after the shock
starts, orders of accounts in the shock region are thinned to `factor` (a thinned
Poisson process is again Poisson, so the expectation stays exact), or, for a shock that
shows in order size, every order's amount is multiplied by `factor`.

Generation is vectorised with numpy; random streams for orders, activities and
opportunities are independent children of one seed, so changing one kind of event
does not reshuffle the others.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import numpy as np

from simulator.clock import add_months, as_utc, business_intervals, business_seconds, month_boundaries
from simulator.company import Company, Shock, SimRep
from core.geo import haversine_array_km
from simulator.truth import SEASONALITY

SimEvent = tuple[str, str, dict[str, Any]]

# Topic names of the contract (design/EVENTS.md).
TOPIC_REPS = "crm.reps"
TOPIC_ACCOUNTS = "crm.accounts"
TOPIC_ORDERS = "sales.orders"
TOPIC_ACTIVITIES = "sales.activities"
TOPIC_OPPORTUNITIES = "crm.opportunities"

SOURCE = "simulator"
CURRENCY = "EUR"

# Order frequency grows slowly with size: a 20k/year account orders ~10 times a year,
# a 400k/year account ~29 times. Amounts carry the rest of the value.
_ORDER_REFERENCE_POTENTIAL = 20_000.0
_ORDERS_PER_YEAR_AT_REFERENCE = 10.0
_ORDER_SIZE_ELASTICITY = 0.35
_ORDERS_PER_YEAR_BOUNDS = (2.0, 48.0)
_AMOUNT_GAMMA_SHAPE = 2.0  # coefficient of variation 0.7 per order

# Activities: about one a month for big accounts, one a quarter or less for small ones.
_ACTIVITY_REFERENCE_POTENTIAL = 60_000.0
_ACTIVITY_BOUNDS = (0.08, 1.2)
# Holidays thin out sales activity in August and December.
_ACTIVITY_SEASONALITY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 0.65, 1.0, 1.0, 1.0, 0.8)
_VISIT_SHARE_NEAR = 0.55  # visit share for an account next door; decays with distance
_VISIT_DECAY_KM = 150.0
_ROAD_FACTOR = 1.25  # road km per great-circle km
_DRIVING_KMH = 80.0

# Opportunities: a few per account and year, bigger accounts more.
_OPPORTUNITIES_PER_YEAR_AT_REFERENCE = 0.3
_OPPORTUNITY_BOUNDS = (0.05, 1.5)
_BUSINESS_DAY_S = 12 * 3600

_NAMESPACE = uuid.UUID("6f1d3c1e-8a0c-4c39-9a43-2a4a1b7f0e55")

# Event kinds while building, in the order ties at the same instant are emitted.
_REP, _ACCOUNT, _ORDER, _ACTIVITY, _OPP_OPEN, _OPP_CLOSE = range(6)


def rep_profile(rep: SimRep) -> dict[str, Any]:
    """The data of a `rep.upserted` for a simulated rep: an active rep with their home base,
    capacity and travel range."""
    return {
        "rep_id": rep.rep_id,
        "home_lat": rep.home_lat,
        "home_lon": rep.home_lon,
        "capacity_fte": rep.capacity_fte,
        "active": True,
        "max_travel_km": rep.max_travel_km,
    }


def orders_per_year(potential: np.ndarray) -> np.ndarray:
    """Expected number of orders a year for accounts of the given yearly potential."""
    rate = _ORDERS_PER_YEAR_AT_REFERENCE * (potential / _ORDER_REFERENCE_POTENTIAL) ** _ORDER_SIZE_ELASTICITY
    return np.clip(rate, *_ORDERS_PER_YEAR_BOUNDS)


def _activities_per_month(potential: np.ndarray) -> np.ndarray:
    return np.clip(np.sqrt(potential / _ACTIVITY_REFERENCE_POTENTIAL), *_ACTIVITY_BOUNDS)


class _BusinessTime:
    """The simulated period's business time as one axis, for uniform sampling.

    A position p in [0, total) maps to a real instant; month k covers positions
    [offset[k], offset[k] + length[k]).
    """

    def __init__(self, start: datetime, months: int):
        bounds = month_boundaries(start, months)
        self.starts, self.lengths = business_intervals(bounds[0], bounds[-1])
        self.cum_end = np.cumsum(self.lengths)
        self.cum_start = self.cum_end - self.lengths
        self.total = int(self.cum_end[-1]) if len(self.cum_end) else 0
        edges = np.array([int(b.timestamp()) for b in bounds])
        first = np.searchsorted(self.starts, edges)  # first interval at/after each boundary
        pos = np.append(self.cum_start, self.total)[first]
        self.offset = pos[:-1].astype(float)
        self.length = np.diff(pos).astype(float)
        # Share of the calendar month's business time inside the simulation (first month may be partial).
        whole = np.array([business_seconds(add_months(b, 0), add_months(b, 1)) for b in bounds[:-1]], dtype=float)
        self.cover = np.divide(self.length, whole, out=np.zeros_like(whole), where=whole > 0)
        self.calendar_month = np.array([b.month for b in bounds[:-1]])

    def instants(self, positions: np.ndarray) -> np.ndarray:
        """Epoch seconds, rounded down to the minute, of business-time positions."""
        idx = np.searchsorted(self.cum_end, positions, side="right")
        idx = np.minimum(idx, len(self.starts) - 1)
        seconds = self.starts[idx] + (positions - self.cum_start[idx]).astype(np.int64)
        return np.maximum(seconds - seconds % 60, self.starts[idx])


def _shock_arrays(company: Company, shock: Shock | None) -> tuple[np.ndarray, float, int]:
    """Per account whether it is shocked; the demand factor; the shock's start (epoch seconds)."""
    if shock is None:
        return np.zeros(len(company.accounts), dtype=bool), 1.0, 2**62
    shocked = shock.covers(company.accounts)
    return shocked, float(shock.factor), int(shock.start.timestamp())


def _orders(
    company: Company, clock: _BusinessTime, shock: Shock | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account index, epoch seconds, amount) of every order."""
    potential = np.array([a.true_potential for a in company.accounts])
    per_year = orders_per_year(potential)
    mean_amount = potential / per_year
    shocked, factor, shock_at = _shock_arrays(company, shock)
    in_size = shock is not None and shock.shows_as == "order_size"
    # Draw at the higher of the two rates, then thin: exact for booms (factor > 1) too.
    boost = np.where(shocked & (not in_size), max(1.0, factor), 1.0)
    season = np.array(SEASONALITY)[clock.calendar_month - 1]
    lam = (per_year * boost)[:, None] / 12.0 * (season * clock.cover)[None, :]
    counts = rng.poisson(lam)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    account, month = np.divmod(cell, counts.shape[1])
    when = clock.instants(clock.offset[month] + rng.random(len(cell)) * clock.length[month])
    hit = shocked[account] & (when >= shock_at)
    rate = np.where(hit & (not in_size), factor, 1.0)
    keep = rng.random(len(cell)) * boost[account] < rate
    amount = rng.gamma(_AMOUNT_GAMMA_SHAPE, mean_amount[account] / _AMOUNT_GAMMA_SHAPE)
    amount = np.maximum(np.round(amount * np.where(hit & in_size, factor, 1.0), 2), 1.0)
    return account[keep], when[keep], amount[keep]


def _owner_distance_km(company: Company) -> tuple[np.ndarray, np.ndarray]:
    reps = {r.rep_id: k for k, r in enumerate(company.reps)}
    owner = np.array([reps[a.rep_id] for a in company.accounts])
    hlat = np.array([r.home_lat for r in company.reps])[owner]
    hlon = np.array([r.home_lon for r in company.reps])[owner]
    lat = np.array([a.lat for a in company.accounts])
    lon = np.array([a.lon for a in company.accounts])
    return owner, haversine_array_km(lat, lon, hlat, hlon)


def _activities(company: Company, clock: _BusinessTime, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Visits, calls and video calls by each account's owner."""
    potential = np.array([a.true_potential for a in company.accounts])
    _, distance = _owner_distance_km(company)
    season = np.array(_ACTIVITY_SEASONALITY)[clock.calendar_month - 1]
    lam = _activities_per_month(potential)[:, None] * (season * clock.cover)[None, :]
    counts = rng.poisson(lam)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    account, month = np.divmod(cell, counts.shape[1])
    when = clock.instants(clock.offset[month] + rng.random(len(cell)) * clock.length[month])
    n = len(cell)
    # Far accounts get fewer visits and more calls: travel time is what territories cost.
    p_visit = _VISIT_SHARE_NEAR * np.exp(-distance[account] / _VISIT_DECAY_KM)
    draw = rng.random(n)
    kind = np.where(draw < p_visit, 0, np.where(draw < p_visit + (1 - p_visit) * 0.6, 1, 2))
    duration = np.select(
        [kind == 0, kind == 1],
        [rng.choice(np.array([45, 60, 60, 90, 120]), n), 5 * rng.integers(2, 7, n)],
        15 * rng.integers(2, 5, n),
    )
    # Round trip by road from the rep's home base; at least a short in-town drive.
    travel = np.where(kind == 0, np.maximum(10, np.round(2 * distance[account] * _ROAD_FACTOR / _DRIVING_KMH * 60)), 0)
    return {"account": account, "when": when, "kind": kind, "duration": duration, "travel": travel.astype(int)}


def _opportunities(
    company: Company, clock: _BusinessTime, shock: Shock | None, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Opened at a random business time; most close as won/lost 10-90 business days later."""
    potential = np.array([a.true_potential for a in company.accounts])
    years = clock.total / (_BUSINESS_DAY_S * 261.0)  # ~261 weekdays a year
    rate = np.clip(
        _OPPORTUNITIES_PER_YEAR_AT_REFERENCE * (potential / _ORDER_REFERENCE_POTENTIAL) ** 0.4, *_OPPORTUNITY_BOUNDS
    )
    counts = rng.poisson(rate * years)
    account = np.repeat(np.arange(len(potential)), counts)
    n = len(account)
    opened_pos = rng.random(n) * clock.total
    opened = clock.instants(opened_pos)
    shocked, factor, shock_at = _shock_arrays(company, shock)
    demand = np.where(shocked[account] & (opened >= shock_at), factor, 1.0)
    amount = np.maximum(100.0, np.round(potential[account] * demand * rng.uniform(0.1, 0.5, n), -2))
    probability = rng.choice(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), n)
    closed_pos = opened_pos + rng.integers(10, 91, n) * _BUSINESS_DAY_S
    closes = closed_pos < clock.total  # the rest is still open at the end
    closed = clock.instants(np.minimum(closed_pos, clock.total - 1))
    won = rng.random(n) < probability
    final_amount = np.round(amount * rng.uniform(0.85, 1.1, n), -2)
    return {
        "account": account,
        "opened": opened,
        "amount": amount,
        "probability": probability,
        "closes": closes,
        "closed": closed,
        "won": won,
        "final_amount": np.maximum(100.0, final_amount),
    }


def generate_events(
    company: Company, *, months: int = 24, shock: Shock | None = None, seed: int | None = None
) -> list[SimEvent]:
    """The company's event stream over `months` from `company.start`, sorted by occurred_at.

    `seed` defaults to the company's seed. Same company, shock and seed give the
    same events, event ids included.
    """
    if months < 1:
        raise ValueError("months must be >= 1")
    seed = company.seed if seed is None else seed
    order_rng, activity_rng, opportunity_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    clock = _BusinessTime(company.start, months)
    orders = _orders(company, clock, shock, order_rng)
    activities = _activities(company, clock, activity_rng)
    opps = _opportunities(company, clock, shock, opportunity_rng)

    start_s = int(as_utc(company.start).timestamp())
    n_reps, n_accounts = len(company.reps), len(company.accounts)
    closing = np.flatnonzero(opps["closes"])
    parts = [  # (kind, local index, epoch seconds)
        (np.full(n_reps, _REP), np.arange(n_reps), np.full(n_reps, start_s)),
        (np.full(n_accounts, _ACCOUNT), np.arange(n_accounts), np.full(n_accounts, start_s)),
        (np.full(len(orders[0]), _ORDER), np.arange(len(orders[0])), orders[1]),
        (np.full(len(activities["when"]), _ACTIVITY), np.arange(len(activities["when"])), activities["when"]),
        (np.full(len(opps["opened"]), _OPP_OPEN), np.arange(len(opps["opened"])), opps["opened"]),
        (np.full(len(closing), _OPP_CLOSE), closing, opps["closed"][closing]),
    ]
    kind = np.concatenate([p[0] for p in parts])
    local = np.concatenate([p[1] for p in parts])
    when = np.concatenate([p[2] for p in parts]).astype(np.int64)
    order = np.lexsort((local, kind, when))  # time, then kind, then index: fully deterministic
    stamps = np.datetime_as_string(when[order].astype("datetime64[s]"), unit="s")

    # Opportunity ids numbered by opening time, so OPP-000001 is the first one opened.
    opp_rank = np.empty(len(opps["opened"]), dtype=int)
    opp_rank[np.lexsort((np.arange(len(opps["opened"])), opps["opened"]))] = np.arange(len(opps["opened"]))
    builder = _EnvelopeBuilder(
        company, orders, activities, opps, opp_rank, run_tag=f"{company.seed}:{seed}:{months}:{_shock_tag(shock)}"
    )
    return [builder.build(int(k), int(i), str(s) + "+00:00") for k, i, s in zip(kind[order], local[order], stamps)]


def _shock_tag(shock: Shock | None) -> str:
    if shock is None:
        return "none"
    areas = f"[{','.join(sorted(shock.areas))}]" if shock.areas else ""  # a regional shock's tag as before
    shows = "" if shock.shows_as == "orders" else f"/{shock.shows_as}"  # and a shock in counts as before
    return f"{shock.region}{areas}@{shock.start.isoformat()}x{shock.factor:g}{shows}"


class _EnvelopeBuilder:
    """Builds contract envelopes one at a time, numbering business ids in time order."""

    _ACTIVITY_KINDS = ("visit", "call", "video")

    def __init__(
        self,
        company: Company,
        orders: tuple[np.ndarray, np.ndarray, np.ndarray],
        activities: dict[str, np.ndarray],
        opps: dict[str, np.ndarray],
        opp_rank: np.ndarray,
        run_tag: str,
    ):
        self.reps = company.reps
        self.accounts = company.accounts
        # Plain Python lists: indexing numpy scalars per event is several times slower.
        self.order_account, self.order_amount = orders[0].tolist(), orders[2].tolist()
        self.act = {k: v.tolist() for k, v in activities.items()}
        self.opp = {k: v.tolist() for k, v in opps.items()}
        self.opp_rank = opp_rank.tolist()
        self.run_tag = run_tag
        self.sequence = 0
        self.order_no = 0
        self.activity_no = 0

    def _envelope(self, event_type: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
        # Deterministic, unique per run and position; UUID-shaped like a CRM would send.
        event_id = str(uuid.uuid5(_NAMESPACE, f"{self.run_tag}:{self.sequence}"))
        self.sequence += 1
        return {"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "source": SOURCE, "data": data}

    def build(self, kind: int, i: int, occurred_at: str) -> SimEvent:
        if kind == _REP:
            r = self.reps[i]
            return (
                TOPIC_REPS,
                r.rep_id,
                self._envelope("rep.upserted", occurred_at, rep_profile(r)),
            )
        if kind == _ACCOUNT:
            a = self.accounts[i]
            return (
                TOPIC_ACCOUNTS,
                a.account_id,
                self._envelope(
                    "account.upserted",
                    occurred_at,
                    {
                        "account_id": a.account_id,
                        "lat": a.lat,
                        "lon": a.lon,
                        "industry": a.industry,
                        "employees": a.employees,
                        "rep_id": a.rep_id,
                        "locked": a.locked,
                        "name": a.name,
                    },
                ),
            )
        if kind == _ORDER:
            a = self.accounts[self.order_account[i]]
            self.order_no += 1
            return (
                TOPIC_ORDERS,
                a.account_id,
                self._envelope(
                    "order.placed",
                    occurred_at,
                    {
                        "order_id": f"ORD-{self.order_no:07d}",
                        "account_id": a.account_id,
                        "amount": self.order_amount[i],
                        "currency": CURRENCY,
                    },
                ),
            )
        if kind == _ACTIVITY:
            a = self.accounts[self.act["account"][i]]
            self.activity_no += 1
            return (
                TOPIC_ACTIVITIES,
                a.account_id,
                self._envelope(
                    "activity.logged",
                    occurred_at,
                    {
                        "activity_id": f"ACT-{self.activity_no:07d}",
                        "account_id": a.account_id,
                        "rep_id": a.rep_id,
                        "kind": self._ACTIVITY_KINDS[self.act["kind"][i]],
                        "duration_min": self.act["duration"][i],
                        "travel_min": self.act["travel"][i],
                    },
                ),
            )
        return self._opportunity(kind, i, occurred_at)

    def _opportunity(self, kind: int, i: int, occurred_at: str) -> SimEvent:
        a = self.accounts[self.opp["account"][i]]
        opp_id = f"OPP-{self.opp_rank[i] + 1:06d}"
        if kind == _OPP_OPEN:
            data = {
                "opportunity_id": opp_id,
                "account_id": a.account_id,
                "stage": "open",
                "amount": self.opp["amount"][i],
                "probability": self.opp["probability"][i],
            }
        else:
            won = self.opp["won"][i]
            data = {
                "opportunity_id": opp_id,
                "account_id": a.account_id,
                "stage": "won" if won else "lost",
                "amount": self.opp["final_amount"][i] if won else self.opp["amount"][i],
                "probability": 1.0 if won else 0.0,
            }
        return TOPIC_OPPORTUNITIES, a.account_id, self._envelope("opportunity.updated", occurred_at, data)


def event_counts(events: list[SimEvent]) -> dict[str, int]:
    """Number of events per type."""
    counts: dict[str, int] = {}
    for _, _, envelope in events:
        counts[envelope["type"]] = counts.get(envelope["type"], 0) + 1
    return counts
