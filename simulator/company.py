"""A simulated sales company: reps, accounts on real geography, and their true potential.

Everything is derived from one seed with numpy's PCG64 generator, so the same seed
gives the same company on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Sequence

import numpy as np

from simulator.clock import add_months, as_utc
from monitor.regions import default_admin_areas
from core.geo import haversine_array_km
from simulator.geography import City, load_cities

DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)

# Initial territories: each rep's share of true potential within this relative
# distance of the capacity-weighted fair share.
BALANCE_TOLERANCE = 0.05
# The greedy stops a little inside the promise so rounding and re-summing in another
# order can never push a rep over it.
_BALANCE_TARGET = 0.045
LOCKED_SHARE = 0.02


@dataclass(frozen=True)
class SimRep:
    rep_id: str
    home_lat: float
    home_lon: float
    home_city: str
    capacity_fte: float
    max_travel_km: float


@dataclass(frozen=True)
class SimAccount:
    account_id: str
    name: str
    lat: float
    lon: float
    city: str
    region: str  # GeoNames admin1 code; geography.region_name() makes it readable
    industry: str
    employees: int
    true_potential: float  # expected order value per year (EUR), before seasonality and shocks
    rep_id: str
    locked: bool


#: How a shock shows in the orders: fewer of them, or smaller ones.
SHOWS_AS = ("orders", "order_size")


@dataclass(frozen=True)
class Shock:
    """From `start` on, demand of every account in `region` is multiplied by `factor`.

    With `areas` (admin2 ids of `region`, "DE-01-08115") only the accounts lying in those
    counties / Landkreise are shocked: a local shock (`local_shock`), smaller than any region.
    `shows_as` says how the orders carry it: "orders" (fewer orders, each as large as before)
    or "order_size" (as many orders, each `factor` times as large).
    """

    region: str
    start: datetime
    factor: float
    areas: frozenset[str] = frozenset()
    shows_as: str = "orders"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "areas", frozenset(self.areas))
        if not self.factor > 0:
            raise ValueError(f"shock factor must be > 0, got {self.factor}")
        if self.shows_as not in SHOWS_AS:
            raise ValueError(f"shows_as must be one of {', '.join(SHOWS_AS)}, got {self.shows_as!r}")
        outside = sorted(a for a in self.areas if a.split("-")[1:2] != [self.region])
        if outside:
            raise ValueError(f"shock areas {outside} are not admin2 areas of region {self.region!r}")

    def covers(self, accounts: Sequence[SimAccount]) -> np.ndarray:
        """Per account: whether the shock hits it (its region, and one of `areas` if given)."""
        inside = np.array([a.region == self.region for a in accounts], dtype=bool)
        if self.areas and len(accounts):
            inside &= np.isin(admin2_of(accounts), sorted(self.areas))
        return inside


def admin2_of(accounts: Sequence[SimAccount]) -> np.ndarray:
    """The admin2 id ("DE-01-08115", "" where unknown) each account lies in, as the worker's
    region lookup gives it from the account's location."""
    found = default_admin_areas().lookup_many([a.lat for a in accounts], [a.lon for a in accounts])
    return np.array([area.admin2 or "" for area in found], dtype=object)


@dataclass(frozen=True)
class Company:
    reps: tuple[SimRep, ...]
    accounts: tuple[SimAccount, ...]
    start: datetime
    seed: int
    country: str = "DE"

    def rep(self, rep_id: str) -> SimRep:
        return self._reps_by_id[rep_id]

    def account(self, account_id: str) -> SimAccount:
        return self._accounts_by_id[account_id]

    # cached_property writes the instance __dict__ directly, which a frozen dataclass allows.
    @cached_property
    def _reps_by_id(self) -> dict[str, SimRep]:
        return {r.rep_id: r for r in self.reps}

    @cached_property
    def _accounts_by_id(self) -> dict[str, SimAccount]:
        return {a.account_id: a for a in self.accounts}


@dataclass(frozen=True)
class Industry:
    name: str
    weight: float  # how common among accounts
    base_potential: float  # EUR/year for an account of REFERENCE_EMPLOYEES
    median_employees: float


REFERENCE_EMPLOYEES = 50.0
# Potential grows sub-linearly with size: a 10x larger firm buys ~5x more.
SIZE_ELASTICITY = 0.7
POTENTIAL_NOISE_SIGMA = 0.35
EMPLOYEES_SIGMA = 1.0

INDUSTRIES: tuple[Industry, ...] = (
    Industry("manufacturing", 0.20, 42_000, 80),
    Industry("wholesale", 0.12, 34_000, 35),
    Industry("retail", 0.16, 14_000, 20),
    Industry("healthcare", 0.12, 26_000, 60),
    Industry("logistics", 0.10, 30_000, 45),
    Industry("construction", 0.12, 18_000, 25),
    Industry("it_services", 0.10, 24_000, 30),
    Industry("hospitality", 0.05, 9_000, 18),
    Industry("public_sector", 0.03, 30_000, 150),
)

_NAME_PREFIXES = (
    "Nord",
    "Süd",
    "Alpha",
    "Vita",
    "Rhein",
    "Linden",
    "Falken",
    "Stern",
    "Berg",
    "Eich",
    "Sonnen",
    "Kron",
    "Hansa",
    "Main",
    "Isar",
    "Elb",
)
_INDUSTRY_WORDS = {
    "manufacturing": "Werke",
    "wholesale": "Handel",
    "retail": "Markt",
    "healthcare": "Klinik",
    "logistics": "Logistik",
    "construction": "Bau",
    "it_services": "Systeme",
    "hospitality": "Hotel",
    "public_sector": "Stadtwerke",
}


# --- reps -------------------------------------------------------------------------


def _rep_home_cities(cities: list[City], n_reps: int, rng: np.random.Generator) -> list[City]:
    """Home bases in large cities, spread over the country and over the demand.

    Farthest-point choice among the top cities spreads the starting centres; a
    balanced, population-weighted k-means then moves them so that each centre's
    nearest cities hold about the same population (an additive offset per centre
    grows while its catchment is too small), which puts several reps into dense
    areas such as the Ruhr instead of one per corner of the map. Each centre finally
    snaps to a large city near it.
    """
    top = cities[: max(4 * n_reps, 40)]
    if len(top) < n_reps:
        raise ValueError(f"only {len(top)} cities available for {n_reps} reps")
    lat = np.array([c.lat for c in cities])
    lon = np.array([c.lon for c in cities])
    pop = np.array([c.population for c in cities], dtype=float)
    tlat, tlon = lat[: len(top)], lon[: len(top)]

    chosen = [int(rng.integers(0, min(3, len(top))))]
    nearest = haversine_array_km(tlat, tlon, tlat[chosen[0]], tlon[chosen[0]])
    while len(chosen) < n_reps:
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, haversine_array_km(tlat, tlon, tlat[pick], tlon[pick]))

    clat, clon = tlat[chosen].copy(), tlon[chosen].copy()
    offset_km = np.zeros(n_reps)
    target = pop.sum() / n_reps
    for _ in range(40):
        dist = haversine_array_km(lat[:, None], lon[:, None], clat[None, :], clon[None, :])
        owner = np.argmin(dist - offset_km[None, :], axis=1)
        load = np.bincount(owner, weights=pop, minlength=n_reps)
        offset_km += 30.0 * (target - load) / target
        for k in range(n_reps):
            members = owner == k
            if members.any():
                clat[k] = np.average(lat[members], weights=pop[members])
                clon[k] = np.average(lon[members], weights=pop[members])

    homes: list[int] = []
    for k in range(n_reps):
        # Prefer big cities close to the centre: population discounted by (distance / 30 km)².
        dist = haversine_array_km(tlat, tlon, clat[k], clon[k])
        score = pop[: len(top)] / (1.0 + (dist / 30.0) ** 2)
        score[homes] = -1.0
        homes.append(int(np.argmax(score)))
    return [top[i] for i in homes]


def _capacities(natural_load: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FTE per rep: mostly full-time, a part-timer or two so capacity weighting matters.

    The part-timers go where the nearest-rep territory is smallest, as a planner
    would staff it; otherwise balancing would have to push many accounts to far reps.
    """
    n_reps = len(natural_load)
    drawn = np.sort(rng.choice(np.array([1.0, 1.0, 1.0, 0.8, 0.6]), size=n_reps))[::-1]
    capacity = np.empty(n_reps)
    capacity[np.argsort(-natural_load, kind="stable")] = drawn
    return capacity


# --- accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class _AccountArrays:
    lat: np.ndarray
    lon: np.ndarray
    city: np.ndarray  # index into the city list
    industry: np.ndarray  # index into INDUSTRIES
    employees: np.ndarray
    potential: np.ndarray


def _place_accounts(
    cities: list[City], n: int, rng: np.random.Generator, country: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Cities weighted by population, then a jitter of a few km around the centre; and the
    admin1 code (GeoNames, "02") of the area each account lies in."""
    pop = np.array([c.population for c in cities], dtype=float)
    city = rng.choice(len(cities), size=n, p=pop / pop.sum())
    clat = np.array([c.lat for c in cities])[city]
    clon = np.array([c.lon for c in cities])[city]
    # Bigger cities spread wider: ~2.4 km for a town of 15k, 8 km for Berlin.
    sigma_km = np.clip(2.0 + np.sqrt(pop[city]) / 300.0, 2.0, 8.0)
    dx, dy = np.clip(rng.normal(0.0, 1.0, size=(2, n)), -2.0, 2.0) * sigma_km
    lat = clat + dy / 111.2
    lon = clon + dx / (111.2 * np.cos(np.radians(clat)))
    # Keep border towns' customers inside the country's extent.
    all_lat = np.array([c.lat for c in cities])
    all_lon = np.array([c.lon for c in cities])
    lat = np.clip(lat, all_lat.min() - 0.05, all_lat.max() + 0.05)
    lon = np.clip(lon, all_lon.min() - 0.05, all_lon.max() + 0.05)
    lat, lon, region = _inside_city_region(
        cities, city, country.upper(), clat, clon, np.round(lat, 5), np.round(lon, 5)
    )
    return lat, lon, city, region


def _inside_city_region(
    cities: list[City],
    city: np.ndarray,
    country: str,
    clat: np.ndarray,
    clon: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pull a customer jittered across a state (or national) border back towards its town until
    it lies in the town's admin1 area, and name the area each one lies in: the worker groups
    market shocks by that area, and the simulator's regional shock must hit the same accounts.
    (A few towns' centres lie across a border in the postal data: their customers keep the area
    they are in.) No random draws, so the rest of the company is unchanged."""
    wanted = np.array([f"{country}-{cities[c].region}" for c in city], dtype=object)
    for shrink in (0.5, 0.25, 0.0, None):
        found = np.array([a.admin1 for a in default_admin_areas().lookup_many(lat, lon)], dtype=object)
        outside = np.flatnonzero(found != wanted)
        if shrink is None or not len(outside):
            break
        lat[outside] = np.round(clat[outside] + shrink * (lat[outside] - clat[outside]), 5)
        lon[outside] = np.round(clon[outside] + shrink * (lon[outside] - clon[outside]), 5)
    prefix = f"{country}-"
    region = [
        str(area)[len(prefix) :] if str(area).startswith(prefix) else cities[c].region for area, c in zip(found, city)
    ]
    return lat, lon, region


def _firmographics(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Industry, employees (log-normal) and true yearly potential = f(industry, size) x noise."""
    weights = np.array([i.weight for i in INDUSTRIES])
    industry = rng.choice(len(INDUSTRIES), size=n, p=weights / weights.sum())
    median = np.array([i.median_employees for i in INDUSTRIES])[industry]
    employees = np.maximum(1, np.round(median * rng.lognormal(0.0, EMPLOYEES_SIGMA, size=n))).astype(int)
    base = np.array([i.base_potential for i in INDUSTRIES])[industry]
    size_factor = (employees / REFERENCE_EMPLOYEES) ** SIZE_ELASTICITY
    noise = rng.lognormal(-(POTENTIAL_NOISE_SIGMA**2) / 2, POTENTIAL_NOISE_SIGMA, size=n)  # mean 1
    potential = np.round(np.maximum(base * size_factor * noise, 500.0), 2)
    return industry, employees, potential


# --- initial territories ------------------------------------------------------------


def balance_assignment(
    potential: np.ndarray,
    distance_km: np.ndarray,
    capacity: np.ndarray,
    *,
    tolerance: float = _BALANCE_TARGET,
    max_moves: int | None = None,
) -> np.ndarray:
    """Initial owners: nearest rep, then greedy border moves until every rep is within
    `tolerance` of its capacity-weighted fair share of potential.

    This is a stand-in for "last year's planning", not the product's rebalancer: it only
    has to give the simulation a plausible, balanced, mostly-nearest starting point.

    Each step takes the rep farthest from its fair share. If it is over-served it gives
    one account away, if under-served it takes one, always the move with the smallest
    extra distance (distance to the new rep minus distance to the old) among moves that
    reduce sum((load - fair)² / fair). That sum strictly decreases, so the loop ends;
    load passes along chains of neighbours instead of jumping across the country.
    """
    n_accounts, n_reps = distance_km.shape
    owner = np.argmin(distance_km, axis=1)
    fair = capacity / capacity.sum() * potential.sum()
    load = np.bincount(owner, weights=potential, minlength=n_reps)
    rows = np.arange(n_accounts)
    limit = max_moves if max_moves is not None else 20 * n_accounts
    for _ in range(limit):
        dev = load / fair - 1.0
        order = np.argsort(-np.abs(dev))
        if abs(dev[order[0]]) <= tolerance:
            break
        move = None
        for rep in order:  # the worst rep first; the next one only if it has no useful move
            if abs(dev[rep]) <= tolerance:
                break
            move = _best_move(int(rep), owner, potential, distance_km, fair, dev, rows)
            if move is not None:
                break
        if move is None:
            break  # no move improves the balance any more
        account, target = move
        load[owner[account]] -= potential[account]
        load[target] += potential[account]
        owner[account] = target
    return owner


def _best_move(
    rep: int,
    owner: np.ndarray,
    potential: np.ndarray,
    distance_km: np.ndarray,
    fair: np.ndarray,
    dev: np.ndarray,
    rows: np.ndarray,
) -> tuple[int, int] | None:
    """Cheapest improving move that takes load off (over-served) or onto (under-served) `rep`."""
    if dev[rep] > 0:
        accounts = np.flatnonzero(owner == rep)
        # Candidate targets: every other rep, as a matrix accounts x reps.
        penalty = distance_km[accounts] - distance_km[accounts, rep][:, None]
        p = potential[accounts][:, None]
        improves = p * (1.0 / fair[rep] + 1.0 / fair[None, :]) < 2.0 * (dev[rep] - dev[None, :])
        improves[:, rep] = False
        if not improves.any():
            return None
        penalty = np.where(improves, penalty, np.inf)
        i, target = np.unravel_index(int(np.argmin(penalty)), penalty.shape)
        return int(accounts[i]), int(target)
    accounts = np.flatnonzero(owner != rep)
    source = owner[accounts]
    penalty = distance_km[accounts, rep] - distance_km[rows[accounts], source]
    improves = potential[accounts] * (1.0 / fair[source] + 1.0 / fair[rep]) < 2.0 * (dev[source] - dev[rep])
    if not improves.any():
        return None
    best = int(np.argmin(np.where(improves, penalty, np.inf)))
    return int(accounts[best]), rep


def _max_travel_km(owner: np.ndarray, distance_km: np.ndarray, n_reps: int) -> np.ndarray:
    # Generous enough that every initial assignment is allowed, rounded up to 50 km.
    farthest = np.zeros(n_reps)
    np.maximum.at(farthest, owner, distance_km[np.arange(len(owner)), owner])
    return np.ceil(np.maximum(250.0, 1.2 * farthest) / 50.0) * 50.0


def _locked(potential: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """~2% locked, biased to large accounts: key accounts are the ones planners pin."""
    n = len(potential)
    k = int(round(LOCKED_SHARE * n))
    locked = np.zeros(n, dtype=bool)
    if k:
        weights = np.sqrt(potential)
        locked[rng.choice(n, size=k, replace=False, p=weights / weights.sum())] = True
    return locked


# --- the company ------------------------------------------------------------------


def generate_company(
    *,
    seed: int = 7,
    n_reps: int = 8,
    n_accounts: int = 2000,
    country: str = "DE",
    start: datetime = DEFAULT_START,
    min_city_population: int = 15_000,
) -> Company:
    """A reproducible company: reps in large cities, accounts on real geography,
    balanced initial territories (see `balance_assignment`)."""
    if n_reps < 1 or n_accounts < n_reps:
        raise ValueError("need at least one rep and at least as many accounts as reps")
    rng = np.random.default_rng(seed)
    cities = load_cities(country, min_population=min_city_population)

    homes = _rep_home_cities(cities, n_reps, rng)
    lat, lon, city, region = _place_accounts(cities, n_accounts, rng, country)
    industry, employees, potential = _firmographics(n_accounts, rng)

    hlat = np.array([h.lat for h in homes])
    hlon = np.array([h.lon for h in homes])
    distance = haversine_array_km(lat[:, None], lon[:, None], hlat[None, :], hlon[None, :])
    natural_load = np.bincount(np.argmin(distance, axis=1), weights=potential, minlength=n_reps)
    capacity = _capacities(natural_load, rng)
    owner = balance_assignment(potential, distance, capacity)
    locked = _locked(potential, rng)
    travel = _max_travel_km(owner, distance, n_reps)

    rep_ids = [f"R{k + 1:02d}" for k in range(n_reps)]
    reps = tuple(
        SimRep(rep_ids[k], homes[k].lat, homes[k].lon, homes[k].name, float(capacity[k]), float(travel[k]))
        for k in range(n_reps)
    )
    width = max(5, len(str(n_accounts)))
    prefix = rng.integers(0, len(_NAME_PREFIXES), size=n_accounts)
    accounts = tuple(
        SimAccount(
            account_id=f"A{i + 1:0{width}d}",
            name=_account_name(int(prefix[i]), INDUSTRIES[industry[i]].name, cities[city[i]].name),
            lat=float(lat[i]),
            lon=float(lon[i]),
            city=cities[city[i]].name,
            region=region[i],
            industry=INDUSTRIES[industry[i]].name,
            employees=int(employees[i]),
            true_potential=float(potential[i]),
            rep_id=rep_ids[owner[i]],
            locked=bool(locked[i]),
        )
        for i in range(n_accounts)
    )
    return Company(reps=reps, accounts=accounts, start=as_utc(start), seed=seed, country=country.upper())


def _account_name(prefix: int, industry: str, city: str) -> str:
    return f"{_NAME_PREFIXES[prefix]}{_INDUSTRY_WORDS[industry].lower()} {city}"


# --- analysis helpers ---------------------------------------------------------------


def rep_potential(company: Company) -> dict[str, float]:
    """Each rep's total true potential under the company's (initial) assignment."""
    totals = {r.rep_id: 0.0 for r in company.reps}
    for a in company.accounts:
        totals[a.rep_id] += a.true_potential
    return totals


def fair_share_deviation(company: Company) -> dict[str, float]:
    """Per rep: share of potential / capacity-weighted fair share - 1 (0.03 = 3% over)."""
    totals = rep_potential(company)
    grand = sum(totals.values())
    capacity = sum(r.capacity_fte for r in company.reps)
    return {r.rep_id: totals[r.rep_id] / (grand * r.capacity_fte / capacity) - 1.0 for r in company.reps}


def pick_shock_region(company: Company, *, min_share: float = 0.08, max_share: float = 0.20) -> str:
    """The region where a demand shock unbalances territories most clearly.

    Among regions holding `min_share`..`max_share` of total potential, the one with
    the highest exposure: the largest fraction of any single rep's book that lies in
    the region (high when the region's accounts sit with few reps). Without such a
    region, the one whose share is closest to the range.
    """
    grand = sum(a.true_potential for a in company.accounts)
    by_region: dict[str, dict[str, float]] = {}
    for a in company.accounts:
        reps = by_region.setdefault(a.region, {})
        reps[a.rep_id] = reps.get(a.rep_id, 0.0) + a.true_potential
    book = rep_potential(company)

    def share(region: str) -> float:
        return sum(by_region[region].values()) / grand

    def exposure(region: str) -> float:
        return max(value / book[rep] for rep, value in by_region[region].items())

    def outside(region: str) -> float:
        s = share(region)
        return max(min_share - s, s - max_share, 0.0)

    # Sorted region codes first so ties resolve the same way every run.
    return min(sorted(by_region), key=lambda r: (outside(r), -exposure(r)))


def default_shock(company: Company, *, after_months: int = 14, factor: float = 0.4) -> Shock:
    """The demo's shock: demand in `pick_shock_region` drops to `factor`, starting on the
    15th of the month `after_months` after the start (2025-03-15 for the defaults)."""
    start = add_months(company.start, after_months) + timedelta(days=14)
    return Shock(region=pick_shock_region(company), start=start, factor=factor)


def local_shock(
    company: Company,
    *,
    after_months: int = 14,
    factor: float = 0.7,
    min_share: float = 0.05,
    max_share: float = 0.15,
    shows_as: str = "orders",
) -> Shock:
    """A shock of one county (admin2 area) and its neighbours: demand there drops to `factor`
    from the 15th of the month `after_months` after the start, as in `default_shock`, in
    fewer orders or smaller ones (`shows_as`, see `Shock`).

    Every county is a candidate centre; its area grows by the counties of the same region whose
    potential-weighted centres lie nearest to its own until it holds `min_share` of the total
    potential. Of the areas that then hold at most `max_share`, and at most half their region
    (a shock of most of a region is a regional one), the most compact wins: the smallest
    distance from its centre county to the farthest of its counties, then the centre's id.
    """
    if not 0 < min_share <= max_share < 1:
        raise ValueError(f"need 0 < min_share <= max_share < 1, got {min_share!r}, {max_share!r}")
    admin2 = admin2_of(company.accounts)
    potential = np.array([a.true_potential for a in company.accounts])
    lat = np.array([a.lat for a in company.accounts])
    lon = np.array([a.lon for a in company.accounts])
    grand = potential.sum()
    counties = sorted(str(k) for k in set(admin2.tolist()) - {""})
    members = {k: admin2 == k for k in counties}
    share = {k: potential[members[k]].sum() / grand for k in counties}
    centre = {
        k: (
            np.average(lat[members[k]], weights=potential[members[k]]),
            np.average(lon[members[k]], weights=potential[members[k]]),
        )
        for k in counties
    }
    # An admin2 id is "<country>-<admin1 code>-<county>": its region is the middle part.
    region = {k: k.split("-")[1] for k in counties}
    region_share: dict[str, float] = {}
    for k in counties:
        region_share[region[k]] = region_share.get(region[k], 0.0) + share[k]

    best: tuple[float, str, tuple[str, ...]] | None = None
    for seed in counties:
        same = [k for k in counties if region[k] == region[seed]]
        distance = {
            k: float(haversine_array_km(centre[seed][0], centre[seed][1], centre[k][0], centre[k][1])) for k in same
        }
        chosen: list[str] = []
        held = 0.0
        for k in sorted(same, key=lambda k: (distance[k], k)):
            chosen.append(k)
            held += share[k]
            if held >= min_share:
                break
        if not min_share <= held <= max_share or held > 0.5 * region_share[region[seed]]:
            continue
        candidate = (max(distance[k] for k in chosen), seed, tuple(chosen))
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    if best is None:
        raise ValueError(f"no county and its neighbours hold {min_share:.0%}..{max_share:.0%} of the potential")
    start = add_months(company.start, after_months) + timedelta(days=14)
    return Shock(region=region[best[1]], start=start, factor=factor, areas=frozenset(best[2]), shows_as=shows_as)


def nearest_rep_fraction(company: Company) -> float:
    """Fraction of accounts owned by their nearest rep (geographic sensibility)."""
    lat = np.array([a.lat for a in company.accounts])
    lon = np.array([a.lon for a in company.accounts])
    hlat = np.array([r.home_lat for r in company.reps])
    hlon = np.array([r.home_lon for r in company.reps])
    nearest = np.argmin(haversine_array_km(lat[:, None], lon[:, None], hlat[None, :], hlon[None, :]), axis=1)
    ids = np.array([r.rep_id for r in company.reps])
    return float(np.mean(ids[nearest] == np.array([a.rep_id for a in company.accounts])))


def distance_to_owner_km(company: Company) -> dict[str, float]:
    """Per account: km from its owner's home base."""
    reps = {r.rep_id: r for r in company.reps}
    return {
        a.account_id: float(haversine_array_km(a.lat, a.lon, reps[a.rep_id].home_lat, reps[a.rep_id].home_lon))
        for a in company.accounts
    }
