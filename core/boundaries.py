"""Administrative boundaries shipped offline in core/data/boundaries.zip, and which of them
hold a point.

The archive (built by `core/data/build_boundaries.py`; sources in core/data/README.md)
has GeoJSON FeatureCollections: `countries.geojson`, `admin1/CC.geojson` for the postal
data's countries and `admin2/US.geojson` (US counties). Every feature's properties:
`id`, `name`, `country`, `level`. US states are keyed `US-NC`, US counties `US-NC-037`
(state and FIPS code, as the postal data's ids); other admin1 features keep Natural
Earth's HASC-like ids (`DE.BY`).

>>> index = PolygonIndex([f for f, _ in load_layer("admin2/US.geojson")])
>>> [index.properties[i]["id"] for i in index.containing([35.72, 0.0], [-79.18, -30.0]) if i >= 0]
['US-NC-037']
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

#: The archive's name inside the core.data package.
ARCHIVE = "boundaries.zip"

Bounds = tuple[float, float, float, float]


def _open_archive() -> zipfile.ZipFile:
    return zipfile.ZipFile(resources.files("core.data").joinpath(ARCHIVE).open("rb"))


@lru_cache(maxsize=1)
def archive_names() -> frozenset[str]:
    """The members of the archive (`admin1/DE.geojson`, ...)."""
    with _open_archive() as archive:
        return frozenset(archive.namelist())


def load_layer(name: str) -> tuple[tuple[dict[str, Any], Bounds], ...]:
    """The features of one member, each with its bounds (west, south, east, north)."""
    with _open_archive() as archive:
        collection = json.loads(archive.read(name))
    return tuple((feature, shape(feature["geometry"]).bounds) for feature in collection["features"])


#: `load_layer`, kept for the maps that draw the same layers again and again. A point lookup
#: reads with `load_layer` instead: the parsed GeoJSON (a Python list per vertex) is ten
#: times the size of the polygons built from it, and would stay in a worker for good.
read_layer = lru_cache(maxsize=64)(load_layer)


class PolygonIndex:
    """Which of some polygon features holds each of many points: an STRtree over the
    features' bounding boxes, then an exact test against the prepared polygons.

    Thread-safe once built (nothing is written after the constructor).
    """

    def __init__(self, features: Sequence[dict[str, Any]]):
        # The properties only: the geometries live on as shapely's, not as GeoJSON.
        self.properties = [feature["properties"] for feature in features]
        self._geometries = np.array([shape(f["geometry"]) for f in features], dtype=object)
        shapely.prepare(self._geometries)  # repeated point tests: prepared geometries are much faster
        self._tree = shapely.STRtree(self._geometries)

    def holding(self, lats: Any, lons: Any) -> tuple[np.ndarray, np.ndarray]:
        """(point index, feature index) of every feature that holds a point, by point."""
        lats, lons = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        if not len(lats) or not len(self.properties):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # candidates by bounding box (vectorised), then the exact test on the candidates
        point_index, feature_index = self._tree.query(shapely.points(lons, lats))
        inside = shapely.contains_xy(self._geometries[feature_index], lons[point_index], lats[point_index])
        point_index, feature_index = point_index[inside], feature_index[inside]
        order = np.lexsort((feature_index, point_index))
        return point_index[order], feature_index[order]

    def containing(self, lats: Any, lons: Any) -> np.ndarray:
        """Per point the index of a feature that holds it, -1 for none. Where simplified
        neighbours overlap and both hold a point, the first feature of the list answers."""
        found = np.full(len(np.asarray(lats)), -1, dtype=np.int64)
        point_index, feature_index = self.holding(lats, lons)
        # pairs come sorted by feature within a point: assign in reverse so the lowest wins
        found[point_index[::-1]] = feature_index[::-1]
        return found

    def depth(self, feature: int, lat: float, lon: float) -> float:
        """How far (degrees) the point lies from the border of feature `feature`."""
        return float(shapely.distance(shapely.boundary(self._geometries[feature]), shapely.Point(lon, lat)))
