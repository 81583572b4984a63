"""What maps draw under and around the accounts: administrative boundaries, from
core/data/boundaries.zip (offline, read by `core.boundaries`), and the territories' areas.

Countries everywhere (Natural Earth 1:50m), admin1 areas of the postal data's countries
(Natural Earth 1:10m; US states from the Census Bureau) and US counties (admin2): see
core/data/README.md. :func:`boundaries_near` picks what a map of some accounts needs.

>>> shapes = boundaries_near([(48.14, 11.58), (52.52, 13.40)])     # Munich, Berlin
>>> sorted({f["properties"]["level"] for f in shapes["features"]})
['admin1', 'country']
>>> "Bayern" in {f["properties"]["name"] for f in shapes["features"]}
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shapely.geometry import MultiPoint, box, shape
from shapely.geometry.base import BaseGeometry

from core.boundaries import archive_names, read_layer

#: Margin around the accounts, degrees: neighbouring areas show at the map's edge.
MARGIN_DEG = 1.0
#: Admin2 areas (counties) are drawn while a map holds at most this many of them.
MAX_ADMIN2 = 600
#: How far a territory's area reaches beyond its outermost accounts, degrees (~3 km).
AREA_MARGIN_DEG = 0.03


def territory_areas(points: Iterable[tuple[str, float, float]]) -> dict[str, BaseGeometry]:
    """Rep id -> the area of their territory from (rep id, lat, lon) of its accounts: the
    convex hull, widened a little (the hull of one or two accounts is a point or a line).

    >>> areas = territory_areas([("A", 52.5, 13.4), ("A", 52.6, 13.5), ("B", 53.5, 10.0)])
    >>> sorted(areas), areas["A"].contains(shape({"type": "Point", "coordinates": [13.45, 52.55]}))
    (['A', 'B'], True)
    """
    by_rep: dict[str, list[tuple[float, float]]] = {}
    for rep_id, lat, lon in points:
        by_rep.setdefault(rep_id, []).append((lon, lat))
    return {
        rep_id: MultiPoint(coords).convex_hull.buffer(AREA_MARGIN_DEG, quad_segs=4).simplify(0.005)
        for rep_id, coords in sorted(by_rep.items())
    }


def _overlapping(name: str, area: Any) -> list[dict[str, Any]]:
    west, south, east, north = area.bounds
    return [
        feature
        for feature, (w, s, e, n) in read_layer(name)
        if w <= east and e >= west and s <= north and n >= south and shape(feature["geometry"]).intersects(area)
    ]


def boundaries_near(points: Iterable[tuple[float, float]], margin_deg: float = MARGIN_DEG) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the areas around `points` ((lat, lon) pairs): the
    countries, the admin1 areas of those countries, and US counties while there are at most
    MAX_ADMIN2 of them. Each feature's properties: `id`, `name`, `country`, `level`."""
    located = [(lat, lon) for lat, lon in points]
    if not located:
        return {"type": "FeatureCollection", "features": []}
    lats, lons = [p[0] for p in located], [p[1] for p in located]
    area = box(min(lons) - margin_deg, min(lats) - margin_deg, max(lons) + margin_deg, max(lats) + margin_deg)
    countries = _overlapping("countries.geojson", area)
    features = list(countries)
    names = archive_names()
    for member in sorted(names):
        if member.startswith("admin1/"):
            features += _overlapping(member, area)
    counties = _overlapping("admin2/US.geojson", area) if "admin2/US.geojson" in names else []
    if len(counties) <= MAX_ADMIN2:
        features += counties
    return {"type": "FeatureCollection", "features": features}
