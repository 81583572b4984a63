"""Extract real US state and county boundaries from the libpysal wheel for tests/test_regions.py.

Run from the repository root (needs PyPI at build time only; the wheel is read as an
archive, never installed, and none of its code runs):

    python tests/data/regions/extract.py                       # fetches libpysal==4.14.1
    python tests/data/regions/extract.py --wheel /tmp/libpysal-4.14.1-py3-none-any.whl

Writes `boundaries.json`: per layer the polygons as rings of [lon, lat] (WGS84, 5
decimals) with the id the region lookup should give inside them (`US-NC`, `US-NC-037`).
The Georgia counties ship in UTM zone 16N and are converted here (inverse transverse
Mercator on GRS80, exact to well below a metre at these latitudes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = "4.14.1"
SHA256 = "c2a7b2ea16978ed4c32c0898c0b352ddefd9ae3ea70adbab6fbeb3f21af63963"
PREFIX = "libpysal/examples/"


def read_dbf(blob: bytes) -> list[dict[str, str]]:
    count = struct.unpack("<I", blob[4:8])[0]
    header_length, record_length = struct.unpack("<HH", blob[8:12])
    fields = []
    for offset in range(32, header_length - 1, 32):
        name = blob[offset : offset + 11].split(b"\0")[0].decode("ascii")
        fields.append((name, blob[offset + 16]))
    rows = []
    for index in range(count):
        start = header_length + index * record_length + 1  # skip the deletion flag
        row, position = {}, start
        for name, width in fields:
            row[name] = blob[position : position + width].decode("latin-1").strip()
            position += width
        rows.append(row)
    return rows


def read_polygons(blob: bytes) -> list[list[list[tuple[float, float]]]]:
    """Polygon shapefile -> per record a list of rings of (x, y)."""
    shapes, position = [], 100
    while position < len(blob):
        _, length = struct.unpack(">ii", blob[position : position + 8])
        content = blob[position + 8 : position + 8 + 2 * length]
        position += 8 + 2 * length
        shape_type = struct.unpack("<i", content[:4])[0]
        if shape_type != 5:
            raise SystemExit(f"shape type {shape_type} is not a polygon")
        parts_count, points_count = struct.unpack("<ii", content[36:44])
        parts = list(struct.unpack(f"<{parts_count}i", content[44 : 44 + 4 * parts_count]))
        base = 44 + 4 * parts_count
        points = [struct.unpack("<2d", content[base + 16 * i : base + 16 * i + 16]) for i in range(points_count)]
        bounds = parts + [points_count]
        shapes.append([points[bounds[i] : bounds[i + 1]] for i in range(parts_count)])
    return shapes


def utm_to_lonlat(x: float, y: float, zone: int = 16) -> tuple[float, float]:
    """Inverse transverse Mercator (northern hemisphere, GRS80), Snyder's series."""
    a, f, k0 = 6378137.0, 1 / 298.257222101, 0.9996
    e2 = f * (2 - f)
    ep2 = e2 / (1 - e2)
    x -= 500000.0
    m = y / k0
    mu = m / (a * (1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256))
    e1 = (1 - math.sqrt(1 - e2)) / (1 + math.sqrt(1 - e2))
    phi1 = (
        mu
        + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu)
        + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
        + (151 * e1**3 / 96) * math.sin(6 * mu)
        + (1097 * e1**4 / 512) * math.sin(8 * mu)
    )
    c1 = ep2 * math.cos(phi1) ** 2
    t1 = math.tan(phi1) ** 2
    n1 = a / math.sqrt(1 - e2 * math.sin(phi1) ** 2)
    r1 = a * (1 - e2) / (1 - e2 * math.sin(phi1) ** 2) ** 1.5
    d = x / (n1 * k0)
    lat = phi1 - (n1 * math.tan(phi1) / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * ep2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * ep2 - 3 * c1**2) * d**6 / 720
    )
    lon = (
        d - (1 + 2 * t1 + c1) * d**3 / 6 + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * ep2 + 24 * t1**2) * d**5 / 120
    ) / math.cos(phi1)
    return math.degrees(lon) + (zone * 6 - 183), math.degrees(lat)


def _rings(shape, convert=None) -> list[list[list[float]]]:
    out = []
    for ring in shape:
        points = [convert(*p) if convert else p for p in ring]
        out.append([[round(lon, 5), round(lat, 5)] for lon, lat in points])
    return out


def fetch(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
        + ["--dest", str(into), f"libpysal=={VERSION}"],
        check=True,
    )
    return next(into.glob("libpysal-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel_path = args.wheel or fetch(Path(scratch))
        digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"{wheel_path.name}: sha256 {digest} is not the pinned {SHA256}")
        with zipfile.ZipFile(wheel_path) as wheel:

            def read(name: str) -> bytes:
                return wheel.read(PREFIX + name)

            layers = {}
            states = read_dbf(read("us_income/us48.dbf"))
            layers["us48_states"] = {
                "level": "admin1",
                "source": "us_income/us48.shp (lower 48 US states)",
                "features": [
                    {"id": f"US-{row['STATE_ABBR']}", "name": row["STATE_NAME"], "rings": _rings(shape)}
                    for row, shape in zip(states, read_polygons(read("us_income/us48.shp")))
                ],
            }
            nc = read_dbf(read("sids2/sids2.dbf"))
            layers["nc_counties"] = {
                "level": "admin2",
                "source": "sids2/sids2.shp (North Carolina counties, Cressie 1993)",
                "features": [
                    {"id": f"US-NC-{row['FIPS'][2:]}", "name": row["NAME"], "rings": _rings(shape)}
                    for row, shape in zip(nc, read_polygons(read("sids2/sids2.shp")))
                ],
            }
            georgia = read_dbf(read("georgia/G_utm.dbf"))
            layers["georgia_counties"] = {
                "level": "admin2",
                "source": "georgia/G_utm.shp (Georgia counties 1990, UTM 16N converted to WGS84)",
                "features": [
                    {"id": f"US-GA-{row['AreaKey'][2:]}", "name": "", "rings": _rings(shape, utm_to_lonlat)}
                    for row, shape in zip(georgia, read_polygons(read("georgia/G_utm.shp")))
                ],
            }
            virginia = read_dbf(read("virginia/virginia.dbf"))
            layers["virginia_counties"] = {
                "level": "admin2",
                "source": "virginia/virginia.shp (Virginia counties and independent cities)",
                "features": [
                    {"id": f"US-VA-{row['CNTY_FIPS']}", "name": row["NAME"], "rings": _rings(shape)}
                    for row, shape in zip(virginia, read_polygons(read("virginia/virginia.shp")))
                ],
            }
    document = {
        "source": f"libpysal=={VERSION} examples (wheel sha256 {digest})",
        "licence": "see README.md in this folder",
        "layers": layers,
    }
    out = HERE / "boundaries.json"
    out.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
